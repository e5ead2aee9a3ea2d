"""A lead sees a failing routing rule in Chromium: marked in the rule list with its error,
explained on its page, and cleared by fixing its filter there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import RoutingRule
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_queue, make_trace

pytestmark = pytest.mark.browser


def test_a_lead_sees_a_failing_rule_and_fixes_it(page, live_server, transactional_db):
    tenant = make_tenant("Clinic")
    org, project = tenant.organization.slug, tenant.project.slug
    queue = make_queue(tenant, name="Billing")
    with tenancy.tenant_scope(tenant.organization.pk):
        broken, fine = (
            services.routing_rule_create(
                actor=Actor(user=tenant.owner),
                project=tenant.project,
                queue_id=queue.pk,
                name=name,
                signal="error",
                filter_params={"status": "error"},
            )
            for name in ("Broken", "Fine")
        )
        # Stored behind the services' back: a filter the trace filter no longer takes.
        RoutingRule.objects.filter(pk=broken.pk).update(filter_params={"no_such_parameter": "1"})
        services.routing_apply(
            project_id=tenant.project.pk, trace_ids=[make_trace(tenant, status="error").pk]
        )
        error = RoutingRule.objects.get(pk=broken.pk).last_error
    assert "no_such_parameter" in error
    sign_in(page, live_server, tenant.admin)

    page.goto(f"{live_server.url}/orgs/{org}/projects/{project}/queues/{queue.pk}/rules/")
    expect(page.locator(f"#failing-{broken.pk}")).to_have_text("failing")
    expect(page.locator(f"#rule-error-{broken.pk}")).to_contain_text(error)
    expect(page.locator(f"#failing-{fine.pk}")).to_have_count(0)
    shot(page, "routing-rule-failing-list")

    page.click(f"#edit-rule-{broken.pk}")
    expect(page.locator(f"#rule-error-{broken.pk}")).to_contain_text("Failing since")
    # The stored parameter is no condition the builder knows: typed anew (advanced).
    page.click("#rule-advanced summary")
    page.fill("#rule-filter", "status=error")
    page.click("#save-rule")
    expect(page.get_by_text("Saved the rule “Broken”.")).to_be_visible()
    expect(page.locator(f"#failing-{broken.pk}")).to_have_count(0)
    expect(page.locator(f"#rule-error-{broken.pk}")).to_have_count(0)
    expect(page.locator("#history li").first).to_contain_text("last error")
    shot(page, "routing-rule-fixed")
    with tenancy.tenant_scope(tenant.organization.pk):
        fixed = RoutingRule.objects.get(pk=broken.pk)
    assert (fixed.failing_since, fixed.last_error, fixed.filter_params) == (
        None,
        "",
        {"status": "error"},
    )
