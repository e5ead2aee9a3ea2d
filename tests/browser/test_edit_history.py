"""A lead reads the edit history the edit pages load after themselves: the queue's on its
edit page, a rule's when its History is opened on the rules page, and, without a
script, at the history's own address."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl import tenancy
from hitl.audit import Actor
from review import services
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_queue, make_rule

pytestmark = pytest.mark.browser


def test_a_lead_reads_the_histories_the_edit_pages_load(page, live_server, transactional_db):
    tenant = make_tenant("Clinic")
    org, project = tenant.organization.slug, tenant.project.slug
    queue = make_queue(tenant, name="Billing")
    rule = make_rule(tenant, queue)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.routing_rule_update(actor=Actor(user=tenant.admin), rule=rule, item_priority=4)
    sign_in(page, live_server, tenant.admin)
    base = f"{live_server.url}/orgs/{org}/projects/{project}/queues/{queue.pk}"

    # The queue's edit page: the history card arrives after the page, with the lead's save.
    page.goto(f"{base}/edit/")
    page.fill("input[name=name]", "Billing errors")
    page.click("#save-queue")
    page.goto(f"{base}/edit/")
    expect(page.locator("#history li").first).to_contain_text("name: 'Billing' → 'Billing errors'")
    expect(page.locator("#history li").first).to_contain_text(tenant.admin.email)
    # Saved with its pool and questions as they were: none of them deleted and re-added.
    expect(page.locator("#history > li", has_text="Deleted")).to_have_count(0)
    expect(page.locator("#history-link")).to_have_count(0)
    shot(page, "queue-edit-history-loaded")

    # The rules page: a rule's history is read when its History is opened.
    page.goto(f"{base}/rules/")
    history = page.locator("details", has=page.locator("summary", has_text="History")).first
    expect(history.locator(".history-entries")).to_have_count(0)
    history.locator("summary").click()
    expect(history.locator(".history-entries li").first).to_contain_text("item priority: 0 → 4")
    # The entries alone: the details is already headed "History".
    expect(history.locator("h2")).to_have_count(0)
    expect(page.locator("#history-heading")).to_have_count(0)
    shot(page, "rules-history-opened")

    # Without a script: the link opens the history as a page of its own.
    page.goto(f"{base}/rules/{rule.pk}/history/")
    expect(page.locator("h1")).to_contain_text("Edit history of the rule “Errors”")
    expect(page.locator("#history > li")).to_have_count(2)
