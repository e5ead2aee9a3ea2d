"""Per-user preferences for mention and assignment messages: email (the default), a
Slack direct message through the organization's Slack bot (the Slack Web API played by
a real local HTTP receiver), or off; email instead when a direct message cannot be sent.
Each person reads and writes only their own, in their own organization."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from hitl.audit import Actor
from hitl.models import OutboxMessage
from hitl.tenancy import tenant_scope
from projects.models import Event, NotificationPreference
from projects.notifications import catalogue, event_emit
from projects.notifications.delivery import event_fan_out
from projects.notifications.destinations import destination_update
from projects.notifications.personal import PERSON_NOTIFY, preference_set
from review import services as review_services
from tests.factories import Tenant
from tests.projects.test_notifications import Receiver, make_destination, run_outbox
from tests.review.helpers import add_traces, make_queue, make_trace

BOT_TOKEN = "xoxb-1-test-bot-token"
SLACK_OK = (200, {"Content-Type": "application/json"}, b'{"ok":true,"channel":"D1","ts":"1.2"}')


@pytest.fixture(autouse=True)
def _log_outcomes(caplog):
    caplog.set_level(logging.INFO, logger="projects.notifications.personal")


@pytest.fixture
def slack_api(settings) -> Iterator[Receiver]:
    """The Slack Web API (and any Slack webhook), played by a local receiver."""
    server = Receiver()
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{server.port}"]
    settings.HITL_SLACK_API_URL = server.url("/api")
    yield server
    server.close()


def choose(tenant: Tenant, user, **fields) -> NotificationPreference:
    with tenant_scope(tenant.organization.pk):
        return preference_set(actor=Actor(user=user), **fields)


def mention(tenant: Tenant, *people) -> Event:
    """``review.comment.mentioned`` naming ``people``, as review writes it."""
    with tenant_scope(tenant.organization.pk), transaction.atomic():
        return event_emit(
            catalogue.COMMENT_MENTIONED,
            organization_id=tenant.organization.pk,
            project_id=tenant.project.pk,
            payload={
                "summary": f"owner mentioned {people[0].email} in {tenant.project.name}: look",
                "comment": {"id": 1, "author": tenant.owner.email, "excerpt": "look"},
                "mentioned": [{"id": p.pk, "email": p.email} for p in people],
                "project": {"id": tenant.project.pk, "name": tenant.project.name},
                "url": "http://testserver/comments/1/",
            },
        )


def bot_destination(tenant: Tenant, api: Receiver, token: str = BOT_TOKEN):
    destination, _ = make_destination(
        tenant,
        api.url("/services/T0/B0/x"),
        kind="slack",
        event_types=(catalogue.QUEUE_COMPLETED,),
        slack_bot_token=token,
    )
    return destination


def slack_calls(api: Receiver) -> list[dict]:
    return [r.json() for r in api.requests if r.path == "/api/chat.postMessage"]


def test_by_default_a_mention_is_emailed_without_any_destination(tenant):
    # No destination subscribes: the event is written anyway, for the person.
    event = mention(tenant, tenant.reviewer)
    assert event is not None
    run_outbox()
    (email,) = mail.outbox
    assert email.to == [tenant.reviewer.email]
    assert "mentioned you" in email.subject
    assert "http://testserver/comments/1/" in email.body


def test_off_sends_nothing_and_writes_no_message(tenant):
    choose(tenant, tenant.reviewer, mentions="off")
    mention(tenant, tenant.reviewer)
    run_outbox()
    assert mail.outbox == []
    assert not OutboxMessage.unscoped_across_tenants.filter(task=PERSON_NOTIFY).exists()


def test_each_person_mentioned_hears_by_their_own_choice(tenant, slack_api):
    bot_destination(tenant, slack_api)
    choose(tenant, tenant.reviewer, mentions="slack_dm", slack_member_id="u0123abcd")
    choose(tenant, tenant.admin, mentions="email")
    choose(tenant, tenant.auditor, mentions="off")
    slack_api.responses.append(SLACK_OK)
    mention(tenant, tenant.reviewer, tenant.admin, tenant.auditor)
    run_outbox()
    (direct,) = slack_calls(slack_api)
    assert direct["channel"] == "U0123ABCD"  # stored as Slack writes it
    assert "mentioned" in direct["text"] and "Open in hitl" in direct["text"]
    (call,) = [r for r in slack_api.requests if r.path == "/api/chat.postMessage"]
    assert call.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert [m.to for m in mail.outbox] == [[tenant.admin.email]]


def test_slack_without_a_bot_falls_back_to_email(tenant, slack_api, caplog):
    # An incoming webhook only: it posts to a channel, never to a person.
    make_destination(
        tenant,
        slack_api.url("/services/T0/B0/x"),
        kind="slack",
        event_types=(catalogue.QUEUE_COMPLETED,),
    )
    choose(tenant, tenant.reviewer, mentions="slack_dm", slack_member_id="U0123ABCD")
    mention(tenant, tenant.reviewer)
    run_outbox()
    assert "by email (no Slack bot)" in caplog.text
    assert slack_calls(slack_api) == []
    assert [m.to for m in mail.outbox] == [[tenant.reviewer.email]]


def test_slack_without_a_member_id_falls_back_to_email(tenant, slack_api, caplog):
    bot_destination(tenant, slack_api)
    choose(tenant, tenant.reviewer, mentions="slack_dm")
    mention(tenant, tenant.reviewer)
    run_outbox()
    assert "by email (no Slack member id)" in caplog.text
    assert slack_calls(slack_api) == [] and len(mail.outbox) == 1


def test_slack_refusing_falls_back_to_email_and_a_rate_limit_is_retried(tenant, slack_api, caplog):
    bot_destination(tenant, slack_api)
    choose(tenant, tenant.reviewer, mentions="slack_dm", slack_member_id="U0123ABCD")
    slack_api.responses.append((200, {}, b'{"ok":false,"error":"channel_not_found"}'))
    mention(tenant, tenant.reviewer)
    run_outbox()
    assert "by email (Slack refused)" in caplog.text
    assert len(mail.outbox) == 1

    # Slack is busy: the message is tried again later, then sent once, by Slack only.
    slack_api.responses.append((200, {}, b'{"ok":false,"error":"ratelimited"}'))
    slack_api.responses.append(SLACK_OK)
    mention(tenant, tenant.reviewer)
    assert "retry" in run_outbox()
    OutboxMessage.unscoped_across_tenants.filter(task=PERSON_NOTIFY, state="pending").update(
        available_at=timezone.now()
    )
    assert run_outbox() == ["done"]
    assert len(slack_calls(slack_api)) == 3
    assert len(mail.outbox) == 1


def test_assignments_follow_their_own_choice(tenant):
    choose(tenant, tenant.reviewer, mentions="off", assignments="email")
    queue = make_queue(tenant, reviewers=[tenant.reviewer], assignment_strategy="round_robin")
    add_traces(tenant, queue, 2)
    run_outbox()
    assert [m.to for m in mail.outbox] == [[tenant.reviewer.email]] * len(mail.outbox)
    assert mail.outbox and "assigned to you" in mail.outbox[0].subject

    choose(tenant, tenant.reviewer, assignments="off")
    mail.outbox.clear()
    add_traces(tenant, queue, 1)
    run_outbox()
    assert mail.outbox == []


def test_a_real_comment_mention_reaches_the_person(tenant):
    with tenant_scope(tenant.organization.pk):
        trace = make_trace(tenant)
        review_services.comment_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            body=f"@{tenant.reviewer.email} please look again",
            trace_id=trace.pk,
        )
    run_outbox()
    (email,) = mail.outbox
    assert email.to == [tenant.reviewer.email]
    assert "please look again" in email.body


def test_a_second_fan_out_sends_nothing_twice(tenant):
    event = mention(tenant, tenant.reviewer)
    run_outbox()
    with tenant_scope(tenant.organization.pk), transaction.atomic():
        event_fan_out(event_id=event.pk)
    run_outbox()
    assert len(mail.outbox) == 1


def test_people_outside_the_organization_are_never_written_to(tenant, other_tenant):
    mention(tenant, other_tenant.reviewer)
    run_outbox()
    assert mail.outbox == []


def test_preferences_are_validated_and_kept_in_history(tenant):
    from hitl.exceptions import DomainError

    with pytest.raises(DomainError):
        choose(tenant, tenant.reviewer, mentions="carrier pigeon")
    with pytest.raises(DomainError):
        choose(tenant, tenant.reviewer, slack_member_id="not an id")
    choose(tenant, tenant.reviewer, mentions="off")
    choose(tenant, tenant.reviewer, assignments="slack_dm", slack_member_id="W12345")
    with tenant_scope(tenant.organization.pk):
        preference = NotificationPreference.objects.get(user=tenant.reviewer)
        history = list(preference.history.order_by("history_id"))
    assert (preference.mentions, preference.assignments) == ("off", "slack_dm")
    assert [h.history_user_id for h in history] == [tenant.reviewer.pk] * 2


# --- API: one's own, in one's own organization ---------------------------------------------


def test_api_reads_and_writes_only_ones_own(tenant, other_tenant, client_for, slack_api):
    url = f"/api/orgs/{tenant.organization.slug}/notification-preferences/"
    reviewer = client_for(tenant.reviewer)
    response = reviewer.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["mentions"] == "email"
    assert response.json()["slack_dm_available"] is False

    response = reviewer.patch(
        url, {"mentions": "slack_dm", "slack_member_id": "U777"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["mentions"] == "slack_dm"
    # The owner's own preferences are untouched, and theirs are not the reviewer's.
    assert client_for(tenant.owner).get(url).json()["mentions"] == "email"
    with tenant_scope(tenant.organization.pk):
        assert list(NotificationPreference.objects.values_list("user_id", flat=True)) == [
            tenant.reviewer.pk
        ]

    bot_destination(tenant, slack_api)
    assert reviewer.get(url).json()["slack_dm_available"] is True

    # Invalid choices answer the error shape; nobody can name another user.
    bad = reviewer.patch(url, {"mentions": "fax"}, format="json")
    assert bad.status_code == 400
    smuggled = reviewer.patch(url, {"user": tenant.owner.pk}, format="json")
    assert smuggled.status_code == 400

    # Another organization's members get 404 here, read or write.
    stranger = client_for(other_tenant.reviewer)
    assert stranger.get(url).status_code == 404
    assert stranger.patch(url, {"mentions": "off"}, format="json").status_code == 404
    with tenant_scope(tenant.organization.pk):
        assert NotificationPreference.objects.get(user=tenant.reviewer).mentions == "slack_dm"


def test_bot_tokens_are_for_slack_and_never_shown(tenant, client_for, slack_api):
    from hitl.exceptions import DomainError

    destination = bot_destination(tenant, slack_api)
    owner = client_for(tenant.owner)
    body = owner.get(f"/api/orgs/{tenant.organization.slug}/destinations/").content.decode()
    assert BOT_TOKEN not in body and '"has_bot_token":true' in body.replace(" ", "")
    webhook, _ = make_destination(tenant, slack_api.url("/hooks"))
    with pytest.raises(DomainError), tenant_scope(tenant.organization.pk):
        destination_update(
            actor=Actor(user=tenant.owner), destination=webhook, slack_bot_token=BOT_TOKEN
        )
    with tenant_scope(tenant.organization.pk):
        destination_update(
            actor=Actor(user=tenant.owner), destination=destination, slack_bot_token=""
        )
        history = json.dumps(list(destination.history.values()), default=str)
    assert BOT_TOKEN not in history


# --- the page -------------------------------------------------------------------------------


def test_the_page_says_when_slack_cannot_be_used_and_saves(tenant, client, slack_api):
    client.force_login(tenant.reviewer)
    url = f"/orgs/{tenant.organization.slug}/preferences/notifications/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'id="mentions-email" checked' in page.content.replace(b"\n", b"")
    saved = client.post(
        url, {"mentions": "slack_dm", "assignments": "off", "slack_member_id": "U0123ABCD"}
    )
    assert saved.status_code == 302
    page = client.get(url).content.decode()
    assert 'id="slack-unavailable"' in page and "by email" in page
    bot_destination(tenant, slack_api)
    page = client.get(url).content.decode()
    assert 'id="slack-unavailable"' not in page
    refused = client.post(url, {"mentions": "email", "assignments": "off", "slack_member_id": "?"})
    assert refused.status_code == 422
    with tenant_scope(tenant.organization.pk):
        preference = NotificationPreference.objects.get(user=tenant.reviewer)
    assert (preference.mentions, preference.assignments) == ("slack_dm", "off")
