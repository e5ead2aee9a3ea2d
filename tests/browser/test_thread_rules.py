"""A lead makes a thread rule in Chromium: choosing "Threads" shows the thread conditions
(and hides the trace strategies), the live preview lists the conversations they match,
and the saved rule reads in words."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl import tenancy
from review.models import RoutingRule
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_queue, make_trace
from traces.models import Feedback, Thread

pytestmark = pytest.mark.browser


@pytest.fixture
def support(transactional_db):
    tenant = make_tenant("Support")
    with tenancy.tenant_scope(tenant.organization.pk):
        unhappy = Thread.objects.create(project=tenant.project, external_id="conv-unhappy")
        Thread.objects.create(project=tenant.project, external_id="conv-fine")
    first = make_trace(
        tenant,
        thread=unhappy,
        input={"messages": [{"role": "user", "content": "My card was charged twice"}]},
    )
    make_trace(tenant, thread=unhappy)
    make_trace(tenant, thread=unhappy)
    with tenancy.tenant_scope(tenant.organization.pk):
        Feedback.objects.create(project=tenant.project, trace=first, kind="thumbs", value=-1)
        fine = Thread.objects.get(external_id="conv-fine")
    make_trace(tenant, thread=fine)
    return tenant


def test_a_lead_makes_a_thread_rule_and_sees_its_conversations(page, live_server, support):
    tenant = support
    base = f"{live_server.url}/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    queue = make_queue(tenant, name="Conversations")
    sign_in(page, live_server, tenant.admin)
    page.goto(f"{base}/queues/{queue.pk}/rules/")

    # A trace rule by default: the thread conditions are hidden, the strategy shown.
    expect(page.locator("#rule-thread-min-turns")).to_be_hidden()
    expect(page.locator("#rule-strategy")).to_be_visible()
    page.fill("#rule-name", "Unhappy conversations")
    page.select_option("#rule-target", "thread")
    expect(page.locator("#rule-thread-min-turns")).to_be_visible()
    expect(page.locator("#rule-strategy")).to_be_hidden()

    page.check("#rule-thread-thumbs-down")
    page.fill("#rule-thread-min-turns", "3")
    preview = page.locator("#rule-preview")
    expect(preview.locator("#preview-matched")).to_have_text("1")
    expect(preview).to_contain_text("conv-unhappy")
    expect(preview).to_contain_text("My card was charged twice")
    expect(preview).not_to_contain_text("conv-fine")
    expect(preview.locator("#preview-words")).to_contain_text(
        "threads with a thumbs-down in any turn and at least 3 turns"
    )
    shot(page, "thread-rule-1-preview")

    # A number the rule cannot take is refused beside its field, nothing lost.
    page.fill("#rule-thread-idle-minutes", "-5")
    page.click("#save-rule")
    expect(page.locator("#rule-thread-idle-minutes-error")).to_contain_text("At least 1")
    expect(page.locator("#rule-thread-min-turns")).to_have_value("3")
    expect(page.locator("#rule-thread-min-turns")).to_be_visible()

    page.fill("#rule-thread-idle-minutes", "30")
    page.click("#save-rule")
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(queue=queue)
    expect(page.locator(f"#rule-words-{rule.pk}")).to_have_text(
        "threads with a thumbs-down in any turn and at least 3 turns, ended after 30 minutes idle"
    )
    assert rule.thread_conditions == {"thumbs_down": True, "min_turns": 3, "idle_minutes": 30}
    shot(page, "thread-rule-2-saved")
