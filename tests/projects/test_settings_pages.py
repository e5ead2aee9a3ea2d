"""Settings pages: members and roles with project narrowing, invitations (send, resend,
revoke, status), API keys (shown once, revoke, last use), owner protection in words."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from projects.models import ApiKey, Invitation, Membership, Role


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(tenant, name: str, **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": tenant.organization.slug} | kwargs)


def test_an_admin_invites_resends_and_revokes(tenant):
    client = _client(tenant.admin)
    sent = client.post(
        _url(tenant, "settings-members"),
        {"email": "new.reviewer@example.com", "role": "reviewer", "projects": [tenant.project.pk]},
    )
    assert sent.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        invitation = Invitation.objects.get(email="new.reviewer@example.com")
        assert list(invitation.projects.all()) == [tenant.project]
        first_token = invitation.hashed_token
    page = client.get(_url(tenant, "settings-members")).content.decode()
    assert "new.reviewer@example.com" in page and ">pending<" in page
    # Inviting the same person again says what to do instead.
    again = client.post(
        _url(tenant, "settings-members"), {"email": "new.reviewer@example.com", "role": "reviewer"}
    )
    assert again.status_code == 422
    assert "already has a pending invitation; resend or revoke it" in again.content.decode()
    resend = _url(tenant, "settings-invitation", invitation_pk=invitation.pk)
    assert client.post(resend, {"action": "resend"}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        invitation.refresh_from_db()
    assert invitation.hashed_token != first_token
    client.post(resend, {"action": "revoke", "confirm": "1"})
    page = client.get(_url(tenant, "settings-members")).content.decode()
    assert ">revoked<" in page


def test_roles_and_narrowing_are_changed_and_owner_protection_reads_as_words(tenant):
    client = _client(tenant.admin)
    with tenancy.tenant_scope(tenant.organization.pk):
        reviewer = Membership.objects.get(user=tenant.reviewer)
        owner = Membership.objects.get(user=tenant.owner)
    url = _url(tenant, "settings-member", membership_pk=reviewer.pk)
    assert client.post(url, {"role": "auditor", "projects": [tenant.project.pk]}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        reviewer.refresh_from_db()
        assert reviewer.role == Role.AUDITOR
        assert list(reviewer.projects.all()) == [tenant.project]
    # An admin cannot demote the owner; the page says why.
    refused = client.post(
        _url(tenant, "settings-member", membership_pk=owner.pk), {"role": "viewer"}, follow=True
    )
    assert "Only an owner can grant or change the owner role." in refused.content.decode()
    # The last owner cannot step down, even by themselves.
    last = _client(tenant.owner).post(
        _url(tenant, "settings-member", membership_pk=owner.pk), {"role": "admin"}, follow=True
    )
    assert "An organization needs at least one owner." in last.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_an_api_key_is_shown_once_and_revoked(tenant):
    client = _client(tenant.admin)
    created = client.post(
        _url(tenant, "settings-api-keys"),
        {"name": "ci", "project": tenant.project.pk, "scopes": ["ingest", "read"]},
    )
    assert created.status_code == 200
    raw = created.context["new_key"]
    assert raw.startswith("hitl_") and raw in created.content.decode()
    assert created["Cache-Control"] == "no-store"
    assert 'data-copy="#new-key"' in created.content.decode()
    listing = client.get(_url(tenant, "settings-api-keys")).content.decode()
    assert raw not in listing and raw[:13] in listing
    with tenancy.tenant_scope(tenant.organization.pk):
        key = ApiKey.objects.get(prefix=raw[:13])
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    whoami = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/whoami/"
    assert api.get(whoami).status_code == 200
    assert (
        "never"
        not in client.get(_url(tenant, "settings-api-keys"))
        .content.decode()
        .split(raw[:13])[1]
        .split("</tr>")[0]
    )
    revoke = client.post(
        _url(tenant, "settings-api-key-revoke", api_key_pk=key.pk), {"confirm": "1"}
    )
    assert revoke.status_code == 302
    assert api.get(whoami).status_code == 401
    assert "revoked" in client.get(_url(tenant, "settings-api-keys")).content.decode()


def test_the_admin_link_is_for_staff(tenant):
    page = _client(tenant.admin).get(_url(tenant, "settings-members")).content.decode()
    assert 'id="admin-link"' not in page
    tenant.admin.is_staff = True
    tenant.admin.save()
    page = _client(tenant.admin).get(_url(tenant, "settings-members")).content.decode()
    assert 'id="admin-link"' in page


@pytest.mark.parametrize("role", ["reviewer", "auditor", "viewer"])
def test_settings_are_for_managers(tenant, role):
    client = _client(getattr(tenant, role))
    assert client.get(_url(tenant, "settings-members")).status_code == 403
    assert client.get(_url(tenant, "settings-api-keys")).status_code == 403
    with tenancy.tenant_scope(tenant.organization.pk):
        _key, raw = services.api_key_create(
            actor=Actor(user=tenant.owner), project=tenant.project, name="x", scopes=["read"]
        )
        key = ApiKey.objects.get(prefix=raw[:13])
    assert (
        client.post(_url(tenant, "settings-api-key-revoke", api_key_pk=key.pk)).status_code == 403
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        key.refresh_from_db()
    assert key.revoked_at is None
