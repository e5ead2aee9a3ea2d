"""A lead sorts the trace explorer, walks its rows from the keyboard, opens a trace and
adds it to a review queue from the trace page, in Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from hitl.tenancy import tenant_scope
from review.models import QueueItem
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_queue, make_span, make_trace

pytestmark = pytest.mark.browser

DAY = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_sort_walk_the_rows_and_add_a_trace_to_a_queue(page, live_server, transactional_db):
    tenant = make_tenant("Sorted")
    org, project = tenant.organization, tenant.project
    # Arrival order unlike the start times; latency unlike both.
    for name, day, latency in (("dec-6", 3, 50.0), ("dec-3", 0, 900.0), ("dec-4", 1, 10.0)):
        trace = make_trace(
            tenant, name=name, start_time=DAY + timedelta(days=day), latency_ms=latency
        )
        make_span(trace, kind="llm", name=f"{name} call", input={"q": name})
    queue = make_queue(tenant, name="Slow answers")

    sign_in(page, live_server, tenant.owner)
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/")
    names = page.locator("#trace-table tbody tr td:nth-child(2)")
    expect(names).to_have_text(["dec-6", "dec-4", "dec-3"])  # newest first
    expect(page.locator("#match-count")).to_contain_text("3 matches")

    page.select_option("#sort-choice", "-latency_ms")
    page.locator("#apply-filter").click()
    expect(names).to_have_text(["dec-3", "dec-6", "dec-4"])
    expect(page.locator("#match-count")).to_contain_text("duration, highest first")

    # j, j, k, down: the second row is selected; down, up: back to it; Enter opens it.
    page.locator("#results-heading").click()
    for key in ("j", "j", "k", "ArrowDown"):
        page.keyboard.press(key)
    selected = page.locator("#trace-table tbody tr.selected")
    expect(selected).to_have_count(1)
    expect(selected.locator("td:nth-child(2)")).to_have_text("dec-6")
    page.keyboard.press("ArrowDown")
    expect(selected.locator("td:nth-child(2)")).to_have_text("dec-4")
    page.keyboard.press("ArrowUp")
    expect(selected.locator("td:nth-child(2)")).to_have_text("dec-6")
    shot(page, "explorer-sorted-selected")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/traces/t/" in url)
    expect(page.locator("h1")).to_have_text("dec-6")

    # The span's detail opens beside the tree.
    page.locator("#span-tree a.span-row").first.click()
    expect(page.locator("#span-panel-0")).to_be_visible()
    expect(page.locator("#span-panel-0")).to_contain_text("dec-6 call")

    page.get_by_label("Queue").select_option(label="Slow answers")
    page.locator("#action-queue button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text("Added this trace to “Slow answers”.")
    shot(page, "trace-page-added-to-queue")
    with tenant_scope(org.pk):
        assert QueueItem.objects.filter(queue=queue, trace__name="dec-6").count() == 1
