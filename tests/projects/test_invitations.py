"""Onboarding an SME team: invite by email, follow the link, sign up or sign in, land in
the organization with the invited role."""

import datetime as dt
import re
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from hitl.tenancy import tenant_scope
from projects.models import Invitation, Membership, Role
from tests.factories import PASSWORD, make_user

LINK = re.compile(r"https?://\S+/invitations/(?P<token>[\w-]+)/")


def _invite(client, tenant, email, role="reviewer", **extra):
    return client.post(
        f"/api/orgs/{tenant.organization.slug}/invitations/",
        {"email": email, "role": role, **extra},
        format="json",
    )


def _wait_for_mail(count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(mail.outbox) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mail.outbox) >= count, "the worker did not send the invitation email"


def _token_from_mail(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group("token")


@pytest.fixture
def invitation_email(tenant, client_for, celery_worker):
    """An invitation created through the API and emailed by the real Celery worker."""
    response = _invite(client_for(tenant.admin), tenant, "dr.lee@clinic.example.com")
    assert response.status_code == 201, response.content
    _wait_for_mail(1)
    message = mail.outbox[0]
    return message, _token_from_mail(message)


@pytest.mark.worker
def test_invitation_email_sent_by_the_worker_and_signup_joins_the_organization(
    tenant, invitation_email
):
    message, token = invitation_email
    assert message.to == ["dr.lee@clinic.example.com"]
    assert tenant.organization.name in message.subject
    browser = Client()
    page = browser.get(f"/invitations/{token}/")
    assert page.status_code == 200
    assert b"Create an account" in page.content
    signup = browser.post(
        "/accounts/signup/",
        {"email": "dr.lee@clinic.example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    # The link proved the address: no separate verification, straight into the org.
    assert signup.status_code == 302, signup.content
    home = browser.get(signup["Location"], follow=True)
    assert home.status_code == 200
    assert tenant.organization.name.encode() in home.content
    with tenant_scope(tenant.organization.pk):
        membership = Membership.objects.get(user__email="dr.lee@clinic.example.com")
        invitation = Invitation.objects.get(email="dr.lee@clinic.example.com")
    assert membership.role == Role.REVIEWER
    assert invitation.status == "accepted" and invitation.accepted_by == membership.user


@pytest.mark.worker
def test_used_link_gives_a_clear_page(tenant, invitation_email):
    _message, token = invitation_email
    user = make_user("dr.lee@clinic.example.com")
    client = Client()
    client.force_login(user)
    accepted = client.post(f"/invitations/{token}/")
    assert accepted.status_code == 302
    again = Client().get(f"/invitations/{token}/")
    assert again.status_code == 410
    assert b"already been used" in again.content


@pytest.mark.worker
def test_existing_user_signs_in_from_the_link(tenant, invitation_email):
    _message, token = invitation_email
    make_user("dr.lee@clinic.example.com")
    browser = Client()
    browser.get(f"/invitations/{token}/")
    login = browser.post(
        "/accounts/login/", {"login": "dr.lee@clinic.example.com", "password": PASSWORD}
    )
    assert login.status_code == 302
    with tenant_scope(tenant.organization.pk):
        assert Membership.objects.filter(user__email="dr.lee@clinic.example.com").exists()


def _make_invitation(tenant, client_for, email="nurse@clinic.example.com"):
    response = _invite(client_for(tenant.admin), tenant, email)
    assert response.status_code == 201, response.content
    with tenant_scope(tenant.organization.pk):
        invitation = Invitation.objects.get(pk=response.json()["id"])
    # The link as emailed: issue a fresh token we can see (resend rotates it).
    from hitl.audit import Actor
    from projects import services

    with tenant_scope(tenant.organization.pk):
        invitation, token = services.invitation_resend(
            actor=Actor(user=tenant.admin), invitation=invitation
        )
    return invitation, token


def test_expired_link_gives_a_clear_page(tenant, client_for):
    invitation, token = _make_invitation(tenant, client_for)
    with tenant_scope(tenant.organization.pk):
        invitation.expires_at = timezone.now() - timedelta(minutes=1)
        invitation.save()
    response = Client().get(f"/invitations/{token}/")
    assert response.status_code == 410
    assert b"has expired" in response.content


def test_revoked_link_gives_a_clear_page(tenant, client_for):
    invitation, token = _make_invitation(tenant, client_for)
    url = f"/api/orgs/{tenant.organization.slug}/invitations/{invitation.pk}/revoke/"
    assert client_for(tenant.admin).post(url).json()["status"] == "revoked"
    response = Client().get(f"/invitations/{token}/")
    assert response.status_code == 410
    assert b"revoked" in response.content


def test_unknown_link_gives_a_clear_page(db):
    response = Client().get("/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert b"not valid" in response.content


def test_resend_rotates_the_link(tenant, client_for):
    from hitl.audit import Actor
    from projects import services

    invitation, old_token = _make_invitation(tenant, client_for)
    with tenant_scope(tenant.organization.pk):
        services.invitation_resend(actor=Actor(user=tenant.admin), invitation=invitation)
    assert Client().get(f"/invitations/{old_token}/").status_code == 404


def test_signed_in_as_someone_else_is_refused(tenant, client_for):
    _invitation, token = _make_invitation(tenant, client_for)
    stranger = make_user("stranger@example.com")
    client = Client()
    client.force_login(stranger)
    response = client.post(f"/invitations/{token}/", follow=True)
    assert b"sign in with that address" in response.content
    with tenant_scope(tenant.organization.pk):
        assert not Membership.objects.filter(user=stranger).exists()


def test_inviting_twice_or_a_member_conflicts(tenant, client_for):
    client = client_for(tenant.admin)
    assert _invite(client, tenant, "twice@example.com").status_code == 201
    second = _invite(client, tenant, "TWICE@example.com")
    assert second.status_code == 409 and second.json()["error"]["code"] == "already_invited"
    member = _invite(client, tenant, tenant.reviewer.email)
    assert member.status_code == 409 and member.json()["error"]["code"] == "already_member"


def test_only_owners_invite_owners_and_reviewers_cannot_invite(tenant, client_for):
    assert _invite(client_for(tenant.admin), tenant, "o@example.com", "owner").status_code == 403
    assert _invite(client_for(tenant.owner), tenant, "o@example.com", "owner").status_code == 201
    assert _invite(client_for(tenant.reviewer), tenant, "r@example.com").status_code == 403


def test_invitation_with_bad_input(tenant, client_for):
    client = client_for(tenant.admin)
    response = _invite(client, tenant, "not-an-email", role="emperor", colour="blue")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert set(details) == {"colour"}
    response = _invite(client, tenant, "not-an-email", role="emperor")
    assert set(response.json()["error"]["details"]) == {"email", "role"}


def test_resending_through_the_api_answers_the_invitation_with_a_later_expiry(tenant, client_for):
    created = _invite(client_for(tenant.admin), tenant, "resent@clinic.example.com").json()
    with tenant_scope(tenant.organization.pk):
        Invitation.objects.filter(pk=created["id"]).update(
            expires_at=timezone.now() + timedelta(hours=1)
        )
    url = f"/api/orgs/{tenant.organization.slug}/invitations/{created['id']}/resend/"
    response = client_for(tenant.admin).post(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == created["id"] and body["email"] == "resent@clinic.example.com"
    assert body["status"] == "pending" and body["role"] == "reviewer"
    expires_at = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires_at > timezone.now() + timedelta(hours=2)
