"""The organization settings pick queues by name among the organization's (another
organization's queue is refused beside the field), and every destructive action asks
first: a POST without ``confirm`` answers the page that says what will be lost and
does nothing; nobody is offered, or allowed, to remove themselves."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import services
from projects.models import ApiKey, Destination, Invitation, Membership, QueueAlert
from projects.notifications import catalogue
from projects.notifications.destinations import destination_create
from tests.review.helpers import make_queue
from tests.traces.read_builders import make_score, make_trace

HOOK = "http://127.0.0.1:9/hook"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(tenant, name: str, **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": tenant.organization.slug} | kwargs)


@pytest.fixture
def hooks_allowed(settings):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1:9"]


def test_queues_are_offered_by_name_and_another_organizations_is_refused(
    tenant, other_tenant, hooks_allowed
):
    mine = make_queue(tenant, name="Triage")
    theirs = make_queue(other_tenant, name="Their secret queue")
    client = _client(tenant.admin)
    page = client.get(_url(tenant, "settings-destinations")).content.decode()
    assert f'<option value="{mine.pk}">Triage · {tenant.project.name}</option>' in page
    assert "Their secret queue" not in page
    assert not re.search(r'name="(filter_)?queue_id"[^>]*inputmode', page)

    # A destination filtered on another organization's queue: refused, nothing written.
    body = {
        "name": "hook",
        "kind": "webhook",
        "url": HOOK,
        "event_types": [catalogue.ITEM_COMPLETED],
        "filter_queue_id": str(theirs.pk),
    }
    refused = client.post(_url(tenant, "settings-destinations"), body)
    assert refused.status_code == 422
    assert refused.context["form"].errors["filter_queue_id"] == [
        "Choose one of this organization's queues."
    ]
    with tenant_scope(tenant.organization.pk):
        assert not Destination.objects.exists()
    # Its own queue is kept, and the list names it.
    assert client.post(
        _url(tenant, "settings-destinations"), {**body, "filter_queue_id": str(mine.pk)}
    ).status_code in (200, 302)
    with tenant_scope(tenant.organization.pk):
        destination = Destination.objects.get()
    assert destination.filter_queue_id == mine.pk
    listing = client.get(_url(tenant, "settings-destinations")).content.decode()
    assert f"all projects · Triage · {tenant.project.name}" in listing
    edit = client.get(_url(tenant, "settings-destination", destination_pk=destination.pk))
    assert f'<option value="{mine.pk}" selected>Triage' in edit.content.decode()

    # A backlog alert: another organization's queue refused; its own saved with its project.
    alerts = _url(tenant, "settings-queue-alerts")
    refused = client.post(alerts, {"queue_id": str(theirs.pk), "backlog_threshold": "5"})
    assert refused.status_code == 422
    assert "queue_id" in refused.context["alert_form"].errors
    assert (
        client.post(alerts, {"queue_id": str(mine.pk), "backlog_threshold": "5"}).status_code == 302
    )
    with tenant_scope(tenant.organization.pk):
        alert = QueueAlert.objects.get()
    assert (alert.queue_id, alert.project_id, alert.backlog_threshold) == (
        mine.pk,
        tenant.project.pk,
        5,
    )
    listing = client.get(_url(tenant, "settings-destinations")).content.decode()
    assert re.search(rf'id="alert-{mine.pk}"><td>Triage · {tenant.project.name}</td>', listing)


def test_score_names_are_offered_from_the_organization_only(tenant, other_tenant, hooks_allowed):
    make_score(make_trace(tenant.project, "t-1"), "faithfulness", 0.4)
    make_score(make_trace(other_tenant.project, "t-2"), "their_secret_score", 0.9)
    client = _client(tenant.admin)
    page = client.get(_url(tenant, "settings-destinations")).content.decode()
    assert 'list="destination-score-names"' in page
    assert '<datalist id="destination-score-names"><option value="faithfulness">' in page
    assert "their_secret_score" not in page
    with tenant_scope(tenant.organization.pk):
        destination, _secret = destination_create(
            actor=Actor(user=tenant.owner),
            name="hook",
            kind="webhook",
            url=HOOK,
            event_types=[catalogue.ITEM_COMPLETED],
        )
    edit = client.get(_url(tenant, "settings-destination", destination_pk=destination.pk))
    edit_page = edit.content.decode()
    assert '<datalist id="edit-score-names"><option value="faithfulness">' in edit_page
    assert "their_secret_score" not in edit_page


def _rows(tenant):
    actor = Actor(user=tenant.owner)
    queue = make_queue(tenant, name="Triage")
    with tenant_scope(tenant.organization.pk):
        owner = Membership.objects.get(user=tenant.owner)
        invitation, _token = services.invitation_create(
            actor=actor, acting_membership=owner, email="invited@example.com", role="reviewer"
        )
        destination, _secret = destination_create(
            actor=actor,
            name="Release hook",
            kind="webhook",
            url=HOOK,
            event_types=[catalogue.API_KEY_CREATED],
        )
        alert = QueueAlert.objects.create(
            project=tenant.project, queue_id=queue.pk, backlog_threshold=9
        )
        return {
            "reviewer": Membership.objects.get(user=tenant.reviewer),
            "invitation": invitation,
            "destination": destination,
            "alert": alert,
            "key": tenant.api_key("ingest"),
        }


def _state(tenant, rows) -> tuple:
    with tenant_scope(tenant.organization.pk):
        return (
            Membership.objects.filter(pk=rows["reviewer"].pk).exists(),
            Invitation.objects.get(pk=rows["invitation"].pk).status,
            ApiKey.objects.get(pk=rows["key"].pk).revoked_at is None,
            Destination.objects.filter(pk=rows["destination"].pk).exists(),
            QueueAlert.objects.filter(pk=rows["alert"].pk).exists(),
        )


def test_a_destructive_post_without_confirm_asks_first_and_does_nothing(tenant, hooks_allowed):
    rows = _rows(tenant)
    client = _client(tenant.owner)
    posts = [
        (
            _url(tenant, "settings-member", membership_pk=rows["reviewer"].pk),
            {"remove": "1"},
            f"Remove {tenant.reviewer.email} from {tenant.organization.name}? They lose access",
        ),
        (
            _url(tenant, "settings-invitation", invitation_pk=rows["invitation"].pk),
            {"action": "revoke"},
            "The link they were sent stops working",
        ),
        (
            _url(tenant, "settings-api-key-revoke", api_key_pk=rows["key"].pk),
            {},
            f"Revoke the key {rows['key'].prefix}… (ingest key, project {tenant.project.name})?",
        ),
        (
            _url(tenant, "settings-destination", destination_pk=rows["destination"].pk),
            {"action": "delete"},
            "Delete Release hook and its delivery log (0 deliveries)?",
        ),
        (
            _url(tenant, "settings-queue-alerts"),
            {"remove": str(rows["alert"].pk)},
            f"Remove the backlog alert of Triage · {tenant.project.name}?",
        ),
    ]
    before = _state(tenant, rows)
    assert before == (True, "pending", True, True, True)
    for url, body, lost in posts:
        for confirm in ({}, {"confirm": ""}, {"confirm": "false"}):
            response = client.post(url, {**body, **confirm})
            page = response.content.decode()
            assert response.status_code == 200, (url, confirm)
            assert lost in page, url
            assert 'id="confirm-page"' in page and 'name="confirm" value="1"' in page
            for name, value in body.items():
                assert f'name="{name}" value="{value}"' in page, (url, name)
        assert _state(tenant, rows) == before, url
    # Confirmed, each acts.
    for url, body, _lost in posts:
        assert client.post(url, {**body, "confirm": "1"}).status_code == 302, url
    assert _state(tenant, rows) == (False, "revoked", False, False, False)


def test_remove_is_not_offered_on_yourself_and_is_refused_with_a_reason(tenant):
    client = _client(tenant.admin)
    with tenant_scope(tenant.organization.pk):
        me = Membership.objects.get(user=tenant.admin)
        reviewer = Membership.objects.get(user=tenant.reviewer)
    page = client.get(_url(tenant, "settings-members")).content.decode()
    assert f'aria-label="Remove {tenant.reviewer.email}"' in page
    assert f'aria-label="Remove {tenant.admin.email}"' not in page
    assert f'data-confirm="Remove {tenant.reviewer.email} from' in page
    refused = client.post(
        _url(tenant, "settings-member", membership_pk=me.pk), {"remove": "1", "confirm": "1"}
    )
    assert refused.status_code == 400
    assert "You cannot remove yourself from the organization" in refused.content.decode()
    with tenant_scope(tenant.organization.pk):
        assert Membership.objects.filter(pk=me.pk).exists()
        assert Membership.objects.filter(pk=reviewer.pk).exists()
