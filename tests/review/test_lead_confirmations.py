"""Deleting a routing rule asks first and says what will be lost: the rules page's
button carries the sentence for the browser's dialog, and a POST without ``confirm``
deletes nothing and answers the page that asks; confirmed, the rule is gone."""

from __future__ import annotations

from django.utils.html import escape

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import RoutingRule
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_queue


def test_deleting_a_rule_asks_first_and_says_what_is_lost(tenant):
    queue = make_queue(tenant, name="Refunds")
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Errors",
            signal="error",
            filter_params={"status": "error"},
        )
    page = signed_in(tenant.admin)
    rules = page.get(project_url(tenant, "lead-queue-rules", queue_pk=queue.pk))
    lost = "New traces that match it are no longer routed to “Refunds”"
    assert f'data-confirm="{escape("Delete the rule “Errors”? " + lost)}' in rules.content.decode()

    change = project_url(tenant, "lead-rule-change", queue_pk=queue.pk, rule_pk=rule.pk)
    asked = page.post(change, {"delete": "1"})
    assert asked.status_code == 200
    body = asked.content.decode()
    assert 'id="confirm-page"' in body and escape(lost) in body
    assert 'name="delete" value="1"' in body and 'name="confirm" value="1"' in body
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRule.objects.filter(pk=rule.pk).exists()

    deleted = page.post(change, {"delete": "1", "confirm": "1"})
    assert deleted.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not RoutingRule.objects.filter(pk=rule.pk).exists()


def test_switching_a_rule_off_needs_no_confirmation(tenant):
    queue = make_queue(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Errors",
            signal="error",
            filter_params={"status": "error"},
        )
    page = signed_in(tenant.admin)
    change = project_url(tenant, "lead-rule-change", queue_pk=queue.pk, rule_pk=rule.pk)
    assert page.post(change, {}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRule.objects.get(pk=rule.pk).enabled is False
