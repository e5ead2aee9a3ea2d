"""The lead's destructive actions ask first and say what will be lost: deleting a
routing rule, archiving a queue or a rubric. The button carries the sentence for the
browser's dialog, and a POST without ``confirm`` changes nothing and answers the page
that asks; confirmed, the action is taken."""

from __future__ import annotations

from django.utils.html import escape

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import ReviewQueue, RoutingRule, ScoreConfig
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_config, make_queue


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


def test_archiving_a_queue_asks_first_and_says_what_is_lost(tenant):
    queue = make_queue(tenant, name="Refunds")
    page = signed_in(tenant.admin)
    url = project_url(tenant, "lead-queue-edit", queue_pk=queue.pk)
    lost = "Reviewers can no longer claim its items"
    assert 'id="archive-queue" data-confirm="' in page.get(url).content.decode()
    asked = page.post(url, {"archive": "1"})
    assert asked.status_code == 200 and 'id="confirm-page"' in asked.content.decode()
    assert lost in asked.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert ReviewQueue.objects.get(pk=queue.pk).archived_at is None
    assert page.post(url, {"archive": "1", "confirm": "1"}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert ReviewQueue.objects.get(pk=queue.pk).archived_at is not None


def test_archiving_a_rubric_asks_first_and_says_what_is_lost(tenant):
    config = make_config(tenant, name="Correct")
    page = signed_in(tenant.admin)
    url = project_url(tenant, "lead-rubric", config_pk=config.pk)
    lost = "It can no longer be edited or put in a queue&#x27;s form"
    assert f'data-confirm="Archive “Correct”? {lost}' in page.get(url).content.decode()
    asked = page.post(url, {"archive": "1"})
    assert asked.status_code == 200 and 'id="confirm-page"' in asked.content.decode()
    assert lost in asked.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert ScoreConfig.objects.get(pk=config.pk).archived_at is None
    assert page.post(url, {"archive": "1", "confirm": "1"}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert ScoreConfig.objects.get(pk=config.pk).archived_at is not None
