"""The organization settings at 200% zoom (a 683 px wide viewport, as a 1366 px screen
zoomed twice) never scroll sideways; a destructive action asks first, saying what will
be lost, and Remove is not offered on yourself. Without the script's dialog (the
button's ``data-confirm`` gone), the server answers a page that asks, and acts only
when that page is confirmed."""

from __future__ import annotations

import pytest

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from projects.models import Invitation, Membership, QueueAlert
from projects.notifications import catalogue
from projects.notifications.destinations import destination_create
from tests.browser.pages import assert_no_sideways_scroll, shot, sign_in, wider_than_viewport
from tests.factories import make_tenant
from tests.review.helpers import make_queue

pytestmark = pytest.mark.browser

LONG = "x" * 90


@pytest.fixture
def org(transactional_db, settings):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1:9"]
    tenant = make_tenant("Zoom", project_name="Discharge summaries assistant")
    queue = make_queue(tenant, name="Discharge summaries, second reading")
    actor = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        owner = Membership.objects.get(user=tenant.owner)
        services.invitation_create(
            actor=actor,
            acting_membership=owner,
            email=f"a.very.long.name.of.a.clinician.{LONG[:20]}@hospital.example.com",
            role="reviewer",
            project_ids=[tenant.project.pk],
        )
        services.api_key_create(
            actor=actor,
            project=tenant.project,
            name="production ingest from the discharge summaries service",
            scopes=["ingest", "read", "write"],
        )
        destination, _secret = destination_create(
            actor=actor,
            name="Release bot",
            kind="webhook",
            url=f"http://127.0.0.1:9/hooks/{LONG}/reviews",
            event_types=sorted(catalogue.EVENT_TYPES)[:4],
            filter_queue_id=queue.pk,
        )
        QueueAlert.objects.create(project=tenant.project, queue_id=queue.pk, backlog_threshold=25)
    tenant.destination = destination
    return tenant


def test_every_settings_page_fits_683px_and_removing_asks_first(page, live_server, org):
    slug = org.organization.slug
    base = f"{live_server.url}/orgs/{slug}"
    page.set_viewport_size({"width": 683, "height": 768})
    sign_in(page, live_server, org.owner)
    too_wide = []
    for name, path in [
        ("home", "/"),
        ("members", "/settings/"),
        ("api-keys", "/settings/api-keys/"),
        ("notifications", "/settings/notifications/"),
        ("destination", f"/settings/notifications/{org.destination.pk}/"),
        ("preferences", "/preferences/notifications/"),
    ]:
        assert page.goto(base + path).status == 200, name
        shot(page, f"zoom-{name}")
        wide = wider_than_viewport(page)
        if wide:
            too_wide.append(f"{name}: {wide}")
    assert not too_wide, too_wide

    # Members: no Remove on yourself; Remove on another asks, saying what is lost.
    page.goto(f"{base}/settings/")
    assert page.get_by_role("button", name=f"Remove {org.owner.email}").count() == 0
    remove = page.get_by_role("button", name=f"Remove {org.reviewer.email}")
    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    remove.click()
    assert "lose access" in asked[0] and org.reviewer.email in asked[0]
    with tenancy.tenant_scope(org.organization.pk):
        assert Membership.objects.filter(user=org.reviewer).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    remove.click()
    page.wait_for_selector(".messages li.success")
    assert f"{org.reviewer.email} was removed." in page.locator(".messages").inner_text()
    with tenancy.tenant_scope(org.organization.pk):
        assert not Membership.objects.filter(user=org.reviewer).exists()

    # Without the dialog, the server asks on its own page (which fits too).
    page.evaluate(
        "() => document.querySelectorAll('[data-confirm]')"
        ".forEach(b => b.removeAttribute('data-confirm'))"
    )
    page.locator("#invitations").get_by_role("button", name="Revoke the invitation").click()
    page.wait_for_selector("#confirm-page")
    assert "The link they were sent stops working" in page.locator("#confirm-lost").inner_text()
    shot(page, "zoom-confirm")
    assert_no_sideways_scroll(page, "confirm")
    with tenancy.tenant_scope(org.organization.pk):
        assert Invitation.objects.get().status == "pending"
    page.click("#confirm-button")
    page.wait_for_selector(".messages li.success")
    with tenancy.tenant_scope(org.organization.pk):
        assert Invitation.objects.get().status == "revoked"
