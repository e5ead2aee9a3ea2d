"""A lead builds a routing rule with the explorer's condition rows in Chromium: the
preview is quiet before anything is chosen, the signal starts its condition, each
trace in the preview is named by external id, start time and input; an unknown score
name is refused beside its row; the saved rule is the filter built. Then the matching
traces are added to a queue with the same rows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from hitl import tenancy
from review.models import RoutingRule
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_queue, make_trace
from tests.traces.read_builders import make_score

pytestmark = pytest.mark.browser


@pytest.fixture
def shop(transactional_db):
    tenant = make_tenant("Shop")
    now = timezone.now()
    for n in range(5):
        failing = n % 2 == 0
        trace = make_trace(
            tenant,
            external_id=f"order-{n}",
            name="checkout",
            status="error" if failing else "ok",
            tags=["billing"] if n < 2 else ["search"],
            input={"messages": [{"role": "user", "content": f"Where is my refund {n}?"}]},
            start_time=now - timedelta(minutes=n),
        )
        make_score(trace, "faithfulness", 0.2 if failing else 0.9)
    return tenant


def test_a_lead_builds_a_rule_with_rows_and_sees_the_preview(page, live_server, shop):
    tenant = shop
    base = f"{live_server.url}/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    queue = make_queue(tenant, name="Refunds")
    sign_in(page, live_server, tenant.admin)
    page.goto(f"{base}/queues/{queue.pk}/rules/")
    preview = page.locator("#rule-preview")
    expect(preview.locator("#preview-empty")).to_be_visible()
    expect(preview.locator(".errorlist")).to_have_count(0)
    shot(page, "rule-builder-1-empty")

    # The signal starts its condition: a low score on the project's score, below 0.5.
    page.fill("#rule-name", "Unfaithful refunds")
    page.select_option("#rule-signal", "low_score")
    row = page.locator("#conditions .condition").first
    expect(row.locator(".cond-field")).to_have_value("score")
    expect(row.locator("select.cond-key")).to_have_value("faithfulness")
    expect(row.locator(".cond-value")).to_have_value("0.5")
    summary = page.locator("#preview-summary")
    expect(summary).to_have_text(
        "3 of the 5 newest traces match; at 100 % the rule would take 3"
        " (an example draw: a saved rule draws its own)."
    )
    expect(preview).to_contain_text("order-0")
    expect(preview).to_contain_text("Where is my refund 0?")

    # A second row: the tag, a value typed.
    page.click("#add-condition")
    second = page.locator("#conditions .condition").nth(1)
    second.locator(".cond-field").select_option("tags")
    second.locator(".cond-value").fill("billing")
    expect(summary).to_contain_text("1 of the 5 newest traces match")
    rows = page.locator("#preview-rows tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(re.compile(r"order-0 · \d{4}-\d\d-\d\d \d\d:\d\d"))
    shot(page, "rule-builder-2-preview")

    page.click("#save-rule")
    expect(page.get_by_text("Created the rule “Unfaithful refunds”.")).to_be_visible()
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(name="Unfaithful refunds")
    assert rule.filter_params == {"score": ["faithfulness<0.5"], "tags": ["billing"]}
    assert rule.signal == "low_score"
    expect(page.locator(f"#rule-words-{rule.pk}")).to_have_text(
        "faithfulness < 0.5 and tag billing"
    )

    # On the edit page: a score name the project has no score of is refused beside its row.
    page.click(f"#edit-rule-{rule.pk}")
    expect(page.locator("#rule-chips")).to_contain_text("faithfulness < 0.5")
    page.click("#rule-advanced summary")
    page.fill("#rule-filter", "score=faithfulnes<0.3")
    expect(preview.locator(".errorlist")).to_contain_text("no score named “faithfulnes”")
    page.click("#save-rule")
    expect(page.locator("#rule-filter-error")).to_contain_text("faithfulnes")
    shot(page, "rule-builder-3-unknown-score")

    # Bulk add: the same rows, counted, then added.
    page.goto(f"{base}/traces/add-to-queue/?filter=tags%3Dbilling")
    expect(page.locator("#conditions .condition").first.locator(".cond-value")).to_have_value(
        "billing"
    )
    page.click("#add-condition")
    last = page.locator("#conditions .condition").last
    last.locator(".cond-field").select_option("status")
    last.locator("select.cond-value").select_option("error")
    page.click("#count-matches")
    expect(page.locator("#matched-count")).to_have_text("1")
    expect(page.locator("#bulk-chips")).to_contain_text("status is error")
    shot(page, "rule-builder-4-bulk-add")
    page.select_option("#bulk-queue", label="Refunds")
    page.click("#confirm-add")
    expect(page.get_by_text("Added 1 of 1 matching traces")).to_be_visible()

    # Deleting the rule asks first, saying what stops and what stays.
    page.goto(f"{base}/queues/{queue.pk}/rules/")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete the rule Unfaithful refunds").click()
    expect(page.get_by_text("Deleted the rule “Unfaithful refunds”.")).to_be_visible()
    assert "no longer routed to “Refunds”" in asked[0]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not RoutingRule.objects.filter(name="Unfaithful refunds").exists()
