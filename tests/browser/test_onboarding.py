"""An invited SME follows the link in a real browser, signs up and lands on My work in
the organization with the invited role."""

import pytest

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import services
from projects.models import Membership
from tests.factories import PASSWORD, make_tenant

pytestmark = pytest.mark.browser


@pytest.fixture
def invited(transactional_db):
    tenant = make_tenant("Clinic")
    with tenant_scope(tenant.organization.pk):
        _invitation, token = services.invitation_create(
            actor=Actor(user=tenant.admin),
            acting_membership=None,
            email="dr.okafor@clinic.example.com",
            role="reviewer",
        )
    return tenant, token


def test_invitee_signs_up_in_the_browser_and_lands_in_the_organization(page, live_server, invited):
    tenant, token = invited
    page.goto(f"{live_server.url}/invitations/{token}/")
    assert page.get_by_role("heading", name=f"Join {tenant.organization.name}").is_visible()
    page.click("#signup-link")
    assert page.input_value("input[name=email]") == "dr.okafor@clinic.example.com"
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    # A reviewer lands where the work is: My work.
    page.wait_for_url(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    assert page.get_by_text(f"You joined {tenant.organization.name}.").is_visible()
    assert page.locator(".badge").inner_text() == "Reviewer"
    with tenant_scope(tenant.organization.pk):
        assert Membership.objects.get(user__email="dr.okafor@clinic.example.com").role == "reviewer"
    page.screenshot(path="/tmp/hitl-onboarding.png")


def test_expired_link_shows_a_clear_page_in_the_browser(page, live_server, invited):
    tenant, token = invited
    with tenant_scope(tenant.organization.pk):
        services.invitation_revoke(
            actor=Actor(user=tenant.admin),
            invitation=services.invitation_by_token(token),
        )
    page.goto(f"{live_server.url}/invitations/{token}/")
    assert page.locator("#invitation-reason").inner_text() == (
        "This invitation was revoked by an administrator."
    )
