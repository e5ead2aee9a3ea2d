"""A lead builds a filter on the trace explorer with its controls (a score picked among
the project's names, an operator, a value; a feedback choice), the list narrows, the
address is the API's filter, a saved view brings back the filter and the order; and the
same page works with the script off, in Chromium."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from hitl.tenancy import tenant_scope
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_trace
from traces.models import Feedback, Score

pytestmark = pytest.mark.browser


def _judged(tenant) -> None:
    for name, value, thumbs, latency in (
        ("low and disliked", 0.2, -1, 30.0),
        ("low and slow disliked", 0.1, -1, 900.0),
        ("low but liked", 0.3, 1, 40.0),
        ("high", 0.9, None, 50.0),
    ):
        trace = make_trace(tenant, name=name, latency_ms=latency)
        with tenant_scope(tenant.organization.pk):
            Score.objects.create(
                project=tenant.project,
                trace=trace,
                name="faithfulness",
                data_type="numeric",
                value=value,
                source="llm_judge",
            )
            if thumbs is not None:
                Feedback.objects.create(
                    project=tenant.project, trace=trace, kind="thumbs", value=thumbs
                )


def test_build_a_filter_sort_save_it_and_open_it_again(page, live_server, transactional_db):
    tenant = make_tenant("Builder")
    _judged(tenant)
    org, project = tenant.organization, tenant.project
    sign_in(page, live_server, tenant.owner)
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/")
    expect(page.locator("#filter-builder")).to_have_attribute("data-ready", "true")
    names = page.locator("#trace-table tbody tr td:nth-child(2)")
    expect(names).to_have_count(4)

    # A score condition: the field, then the project's score names in a picker.
    row = page.locator("#conditions .condition").last
    row.locator(".cond-field").select_option("score")
    expect(row.locator("select.cond-key option")).to_have_text(["faithfulness"])
    row.locator(".cond-op").select_option("lt")
    row.locator(".cond-value").fill("0.5")
    # A second condition added in place: feedback, its choices in a picker.
    page.click("#add-condition")
    row = page.locator("#conditions .condition").last
    row.locator(".cond-field").select_option("feedback")
    row.locator("select.cond-value").select_option(label="thumbs down")
    page.select_option("#sort-choice", "-latency_ms")
    shot(page, "builder-two-conditions")
    page.click("#apply-filter")

    expect(names).to_have_text(["low and slow disliked", "low and disliked"])
    query = parse_qs(urlsplit(page.url).query)
    assert query == {
        "score": ["faithfulness<0.5"],
        "feedback": ["thumbs_down"],
        "sort": ["-latency_ms"],
    }
    expect(page.locator("#filter-chips li")).to_have_text(
        ["faithfulness < 0.5 \u00d7", "thumbs down \u00d7"]  # each with its remove link
    )
    shot(page, "builder-applied")

    # Saved with its order; opened from a clean page, the same list in the same order.
    page.fill("#save-view-name", "Unfaithful and disliked")
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_text("Saved the view “Unfaithful and disliked”.")).to_be_visible()
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/")
    expect(names).to_have_count(4)
    page.get_by_role("link", name="Unfaithful and disliked").click()
    expect(names).to_have_text(["low and slow disliked", "low and disliked"])
    expect(page.locator("#sort-choice")).to_have_value("-latency_ms")
    # The rows shown are the filter: applying them again changes nothing.
    page.click("#apply-filter")
    expect(names).to_have_text(["low and slow disliked", "low and disliked"])

    # A chip's remove link drops its condition.
    page.get_by_role("link", name="Remove the condition thumbs down").click()
    expect(names).to_have_text(["low and slow disliked", "low but liked", "low and disliked"])

    # Deleting the shared view asks first, saying it is gone for everyone.
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete the view Unfaithful and disliked").click()
    expect(page.get_by_text("Deleted the view “Unfaithful and disliked”.")).to_be_visible()
    assert "gone for everyone in the project" in asked[0]


def test_without_the_script_the_rows_still_build_the_filter(page, live_server, transactional_db):
    tenant = make_tenant("Scriptless")
    _judged(tenant)
    org, project = tenant.organization, tenant.project
    page.route("**/filter_builder.js", lambda route: route.abort())  # without the builder script
    sign_in(page, live_server, tenant.owner)
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/")
    # The blank row takes any field; its value is typed (the label of a choice will do).
    row = page.locator("#new-condition")
    row.locator(".cond-field").select_option("feedback")
    row.locator(".cond-value").fill("thumbs down")
    page.click("#apply-filter")
    names = page.locator("#trace-table tbody tr td:nth-child(2)")
    expect(names).to_have_count(2)
    assert parse_qs(urlsplit(page.url).query) == {"feedback": ["thumbs_down"]}
    # The condition comes back as its own row with the field's controls; a new blank row.
    row = page.locator("#new-condition")
    row.locator(".cond-field").select_option("score")
    row.locator(".cond-key").fill("faithfulness")
    row.locator(".cond-op").select_option("lt")
    row.locator(".cond-value").fill("0.15")
    page.click("#apply-filter")
    expect(names).to_have_text(["low and slow disliked"])
    # A row that is not a condition is said beside it, nothing searched.
    page.locator("#new-condition .cond-field").select_option("duration")
    page.locator("#new-condition .cond-op").select_option("contains")
    page.locator("#new-condition .cond-value").fill("3")
    page.click("#apply-filter")
    expect(page.get_by_text("Duration takes “≥”, “≤”.")).to_be_visible()
    expect(page.locator("#trace-table")).to_have_count(0)
