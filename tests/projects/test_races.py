"""Races on memberships and on names, with two real threads and two connections.

Two owners who demote, remove or leave at the same moment must never leave the
organization without an owner: exactly one request wins, the other answers 4xx in the
error shape. Two requests creating the same name at once: one 201, the other 409.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hitl.tenancy import tenant_scope
from projects.models import Invitation, Membership, Organization, Project, Role
from tests.concurrency import assert_one_created_one_conflict, at_once, send_at_once
from tests.factories import Tenant, add_member, make_tenant, make_user

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 3


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _members(tenant: Tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/members/"


def _membership(tenant: Tenant, user) -> Membership:
    with tenant_scope(tenant.organization.pk):
        return Membership.objects.get(user=user)


def _owners(tenant: Tenant) -> list[int]:
    with tenant_scope(tenant.organization.pk):
        return list(Membership.objects.filter(role=Role.OWNER).values_list("user_id", flat=True))


def _assert_error_shape(response, statuses: set[int]) -> None:
    assert response.status_code in statuses, (response.status_code, response.content)
    error = response.json()["error"]
    assert error["code"] and error["message"] and error["request_id"] == response["X-Request-Id"]


# Each: how owner ``a`` (through ``client``) takes the owner role away from ``target``.
def _demote(tenant, client, target):
    url = f"{_members(tenant)}{_membership(tenant, target).pk}/"
    return lambda: client.patch(url, {"role": "admin"}, format="json")


def _bulk_demote(tenant, client, target):
    body = {"member_ids": [_membership(tenant, target).pk], "role": "viewer"}
    return lambda: client.post(f"{_members(tenant)}bulk-role/", body, format="json")


def _remove(tenant, client, target):
    url = f"{_members(tenant)}{_membership(tenant, target).pk}/"
    return lambda: client.delete(url)


OPERATIONS = {"demote": _demote, "bulk-role": _bulk_demote, "remove": _remove}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("whom", ["each other", "themselves"])
def test_two_owners_taking_the_owner_role_away_at_once_leave_one_owner(operation, whom):
    build = OPERATIONS[operation]
    for _round in range(ROUNDS):
        tenant = make_tenant("Race")
        second_owner = make_user()
        add_member(tenant.organization, second_owner, Role.OWNER)
        first, second = _client(tenant.owner), _client(second_owner)
        if whom == "each other":
            calls = (build(tenant, first, second_owner), build(tenant, second, tenant.owner))
        else:  # both step down (or leave) at once
            calls = (build(tenant, first, tenant.owner), build(tenant, second, second_owner))

        responses = at_once(*calls)

        statuses = sorted(r.status_code for r in responses)
        assert sum(1 for s in statuses if s < 300) == 1, [r.content for r in responses]
        [loser] = [r for r in responses if r.status_code >= 300]
        # 400 last_owner or 409 role_changed when the two met in the database; 403 (no
        # longer an owner) or 404 (no longer a member) when the loser arrived after the
        # winner had committed.
        _assert_error_shape(loser, {400, 403, 404, 409})
        assert len(_owners(tenant)) == 1


def test_an_owner_demoted_meanwhile_cannot_act_on_the_role_it_lost():
    """Three owners: A demotes B while B demotes A. Both would keep an owner (C), but
    B's request was authorized as an owner that, once it runs, it no longer is."""
    tenant = make_tenant("Race")
    b, c = make_user(), make_user()
    add_member(tenant.organization, b, Role.OWNER)
    add_member(tenant.organization, c, Role.OWNER)
    responses = at_once(
        _demote(tenant, _client(tenant.owner), b), _demote(tenant, _client(b), tenant.owner)
    )
    statuses = sorted(r.status_code for r in responses)
    # 409 role_changed when the two met in the database; 403 when B arrived after A's
    # change had committed.
    assert statuses in ([200, 409], [200, 403]), [r.content for r in responses]
    [loser] = [r for r in responses if r.status_code != 200]
    expected_code = "role_changed" if loser.status_code == 409 else "permission_denied"
    assert loser.json()["error"]["code"] == expected_code
    assert len(_owners(tenant)) == 2


# --- names -------------------------------------------------------------------------------


def test_two_projects_with_one_slug_at_once_make_one_project():
    tenant = make_tenant("Race")
    url = f"/api/orgs/{tenant.organization.slug}/projects/"
    clients = (_client(tenant.owner), _client(tenant.admin))
    for n in range(ROUNDS):
        body = {"name": f"Checkout bot {n}"}
        responses = send_at_once(*((c, "post", url, body) for c in clients))
        assert_one_created_one_conflict(responses, "slug")
        with tenant_scope(tenant.organization.pk):
            assert Project.objects.filter(slug=f"checkout-bot-{n}").count() == 1


def test_two_invitations_of_one_address_at_once_make_one_invitation():
    tenant = make_tenant("Race")
    url = f"/api/orgs/{tenant.organization.slug}/invitations/"
    clients = (_client(tenant.owner), _client(tenant.admin))
    for n in range(ROUNDS):
        body = {"email": f"expert{n}@example.com", "role": "reviewer"}
        responses = send_at_once(*((c, "post", url, body) for c in clients))
        assert_one_created_one_conflict(responses, "email")
        with tenant_scope(tenant.organization.pk):
            assert Invitation.objects.filter(email=body["email"]).count() == 1


def test_two_organizations_with_one_slug_at_once_make_one_organization():
    clients = (_client(make_user()), _client(make_user()))
    for n in range(ROUNDS):
        body = {"name": f"Clinic {n}", "slug": f"clinic-race-{n}"}
        responses = send_at_once(*((c, "post", "/api/orgs/", body) for c in clients))
        assert_one_created_one_conflict(responses, "slug")
        assert Organization.objects.filter(slug=body["slug"]).count() == 1
