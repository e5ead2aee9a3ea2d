"""An admin wires notifications in Chromium: creates a signed webhook (the secret shown
once, with a copy button), chooses its events, sends a test event and reads the
attempt in the delivery log (refreshed by htmx), redelivers after a failure, rotates
the secret, disables and enables the destination, sets a queue backlog alert; a
reviewer is refused. A reviewer chooses how they hear of mentions and assignments."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import transaction
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from hitl import tenancy
from projects.models import Delivery, Destination, NotificationPreference
from projects.notifications import catalogue, event_emit
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.projects.test_notifications import Receiver, run_outbox
from tests.review.helpers import make_queue

pytestmark = pytest.mark.browser


@pytest.fixture
def org(transactional_db):
    return make_tenant("Notify")


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{server.port}"]
    yield server
    server.close()


def test_an_admin_wires_a_webhook_and_reads_its_log(page, live_server, org, receiver):
    slug = org.organization.slug
    queue = make_queue(org)
    sign_in(page, live_server, org.owner)
    page.goto(f"{live_server.url}/orgs/{slug}/settings/")
    page.get_by_role("link", name="Notifications", exact=True).click()
    page.wait_for_url(f"**/orgs/{slug}/settings/notifications/")

    # 1. Create: the secret is shown once, with a copy button.
    page.fill("#destination-name", "Release bot")
    page.select_option("#destination-kind", "webhook")
    page.fill("#destination-url", receiver.url("/hitl"))
    page.check(f"input[value='{catalogue.ITEM_COMPLETED}']")
    page.check(f"input[value='{catalogue.QUEUE_BACKLOG}']")
    page.click("#create-destination")
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("whsec_")
    page.click("#copy-secret")
    expect(page.locator("#copy-status")).to_contain_text(re.compile("Copied|Selected"))
    shot(page, "1-secret-shown-once")
    page.goto(f"{live_server.url}/orgs/{slug}/settings/notifications/")
    assert secret not in page.content()
    assert page.locator("#destinations tr", has_text="Release bot").count() == 1

    # 2. Edit the events: one more, one fewer.
    page.get_by_role("link", name="Release bot").click()
    page.check(f"input[value='{catalogue.QUEUE_COMPLETED}']")
    page.uncheck(f"input[value='{catalogue.QUEUE_BACKLOG}']")
    page.click("#save")
    with tenancy.tenant_scope(org.organization.pk):
        destination = Destination.objects.get(name="Release bot")
    assert destination.event_types == sorted([catalogue.ITEM_COMPLETED, catalogue.QUEUE_COMPLETED])
    assert page.locator(f"input[value='{catalogue.QUEUE_COMPLETED}']").is_checked()

    # 3. A test event, delivered, signed with the secret shown; the log refreshes in place.
    page.click("#send-test")
    assert page.locator("#deliveries .delivery").count() == 1
    assert page.locator("#deliveries .attempt").count() == 0
    run_outbox()
    page.click("#refresh-log")
    page.locator("#deliveries .attempt .status", has_text="200").wait_for()
    assert "ok" in page.locator("#deliveries .attempt .excerpt").first.inner_text()
    assert page.locator("#deliveries .state").first.inner_text() == "succeeded"
    (request,) = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == catalogue.TEST
    shot(page, "2-test-delivered")

    # 4. Redeliver while the receiver fails: a second attempt, its status and error shown.
    receiver.responses.append((500, {}, b"receiver broke"))
    page.get_by_role("button", name="Redeliver").first.click()
    run_outbox()
    page.reload()
    attempts = page.locator("#deliveries .attempt")
    assert attempts.count() == 2
    assert "500" in attempts.nth(1).locator(".status").inner_text()
    assert "receiver broke" in attempts.nth(1).inner_text()
    assert request.headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    shot(page, "3-redelivered-failed")

    # 5. Rotate: a new secret shown once; both sign during the overlap.
    page.click("#rotate-secret")
    rotated = page.locator("#new-secret").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret
    assert "two secrets sign" in page.content()
    shot(page, "4-rotated")

    # 6. Disable, then enable.
    page.click("#disable")
    assert page.locator("#destination-state").inner_text() == "disabled"
    assert "disabled by a person" in page.locator("#disabled-reason").inner_text()
    page.click("#enable")
    assert page.locator("#destination-state").inner_text() == "enabled"

    # 7. A backlog alert for the queue.
    page.goto(f"{live_server.url}/orgs/{slug}/settings/notifications/")
    page.select_option("#alert-queue", str(queue.pk))
    page.fill("#alert-threshold", "25")
    page.click("#save-alert")
    assert page.locator(f"#alert-{queue.pk} td").nth(1).inner_text() == "25"
    shot(page, "5-destinations")
    with tenancy.tenant_scope(org.organization.pk):
        assert Delivery.objects.filter(destination=destination).count() == 1


def test_a_reviewer_cannot_open_notification_settings(page, live_server, org):
    sign_in(page, live_server, org.reviewer)
    response = page.goto(f"{live_server.url}/orgs/{org.organization.slug}/settings/notifications/")
    assert response.status == 403


def test_a_reviewer_chooses_how_they_hear_of_mentions(page, live_server, org):
    slug = org.organization.slug
    sign_in(page, live_server, org.reviewer)
    page.goto(f"{live_server.url}/orgs/{slug}/")
    page.get_by_role("link", name="My notifications").click()
    page.wait_for_url(f"**/orgs/{slug}/preferences/notifications/")
    mentions = page.get_by_role("group", name="A comment mentions me")
    assignments = page.get_by_role("group", name="Items are assigned to me")
    expect(mentions.get_by_label("Email")).to_be_checked()  # the default
    # From the keyboard: the radio group moves with the arrow keys.
    mentions.get_by_label("Email").focus()
    page.keyboard.press("ArrowDown")
    expect(mentions.get_by_label("Slack direct message")).to_be_checked()
    assignments.get_by_label("Off").check()
    page.get_by_label("Your Slack member id (optional)").fill("U0123ABCD")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Preferences saved.")
    # Only incoming webhooks (none here): the page says Slack falls back to email.
    expect(page.locator("#slack-unavailable")).to_contain_text("by email")
    expect(assignments.get_by_label("Off")).to_be_checked()
    shot(page, "6-my-notifications")
    with tenancy.tenant_scope(org.organization.pk):
        preference = NotificationPreference.objects.get(user=org.reviewer)
        assert (preference.mentions, preference.assignments) == ("slack_dm", "off")
        assert preference.slack_member_id == "U0123ABCD"

    # A mention now reaches the reviewer by email, as the page said.
    with tenancy.tenant_scope(org.organization.pk), transaction.atomic():
        event_emit(
            catalogue.COMMENT_MENTIONED,
            organization_id=org.organization.pk,
            project_id=org.project.pk,
            payload={
                "summary": "owner mentioned you: look",
                "mentioned": [{"id": org.reviewer.pk, "email": org.reviewer.email}],
                "url": f"{live_server.url}/",
            },
        )
    run_outbox()
    assert [m.to for m in mail.outbox] == [[org.reviewer.email]]
