"""The trace page in Chromium, for a lead: a question's scores by people and by an
automated judge side by side in one row, then the trace added to a queue and to a
dataset from the page (its expected output left empty)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from datasets.models import DatasetItem
from hitl.tenancy import tenant_scope
from review.models import QueueItem
from tests.browser.pages import shot, sign_in
from tests.datasets.helpers import make_dataset
from tests.factories import make_tenant
from tests.review.helpers import make_queue, make_trace
from tests.traces.read_builders import make_score

pytestmark = pytest.mark.browser


def test_scores_side_by_side_and_the_trace_added_to_a_queue_and_a_dataset(
    page, live_server, transactional_db
):
    tenant = make_tenant("Judged")
    org, project = tenant.organization, tenant.project
    trace = make_trace(
        tenant, external_id="refund-7", name="refund question", output={"answer": "In 5 days."}
    )
    make_score(trace, "correct", 0.2, source="llm_judge")
    make_score(trace, "correct", 1.0, source="human", author=tenant.reviewer)
    make_score(trace, "faithfulness", 0.9, source="llm_judge")
    queue = make_queue(tenant, name="Refunds")
    dataset = make_dataset(tenant, name="Refund cases")

    sign_in(page, live_server, tenant.admin)
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/t/refund-7/")
    expect(page.locator("h1")).to_have_text("refund question")

    # One row a question: the people's answers beside the judge's.
    correct = page.locator("#score-table tbody tr", has_text="correct")
    expect(correct.locator("td").first.locator(".score.human")).to_have_text("1")
    expect(correct.locator("td").last.locator(".score.auto")).to_have_text("0.2")
    judged_only = page.locator("#score-table tbody tr", has_text="faithfulness")
    expect(judged_only.locator("td").first).to_have_text("—")
    shot(page, "trace-page-scores")

    page.get_by_label("Queue").select_option(label="Refunds")
    page.locator("#action-queue button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text("Added this trace to “Refunds”.")

    page.get_by_label("Dataset").select_option(label="Refund cases")
    page.locator("#action-dataset button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text("this trace to “Refund cases”")
    shot(page, "trace-page-added")
    with tenant_scope(org.pk):
        assert QueueItem.objects.filter(queue=queue, trace=trace).count() == 1
        item = DatasetItem.objects.get(dataset=dataset)
    assert item.trace_id == trace.pk and item.needs_expected_output
