from hitl.tenancy import tenant_scope
from projects.models import Membership, Role


def _members_url(tenant, pk=None):
    base = f"/api/orgs/{tenant.organization.slug}/members/"
    return f"{base}{pk}/" if pk else base


def _membership(tenant, user) -> Membership:
    with tenant_scope(tenant.organization.pk):
        return Membership.objects.get(user=user)


def test_members_list_shows_roles(tenant, client_for):
    response = client_for(tenant.viewer).get(_members_url(tenant))
    assert response.status_code == 200
    roles = {m["email"]: m["role"] for m in response.json()["results"]}
    assert roles[tenant.owner.email] == "owner"
    assert roles[tenant.reviewer.email] == "reviewer"


def test_reviewer_calling_an_admin_endpoint_gets_403_and_nothing_changes(tenant, client_for):
    target = _membership(tenant, tenant.viewer)
    response = client_for(tenant.reviewer).patch(
        _members_url(tenant, target.pk), {"role": "admin"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": "Your role (reviewer) does not allow this action.",
        "request_id": response["X-Request-Id"],
    }
    assert _membership(tenant, tenant.viewer).role == Role.VIEWER


def test_admin_changes_a_role_and_history_records_who(tenant, client_for):
    target = _membership(tenant, tenant.viewer)
    response = client_for(tenant.admin).patch(
        _members_url(tenant, target.pk), {"role": "reviewer"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "reviewer"
    latest = target.history.order_by("-history_date").first()
    assert latest.role == "reviewer" and latest.history_user == tenant.admin
    assert latest.history_source == "web"
    assert latest.prev_record.role == "viewer"


def test_only_owners_grant_owner(tenant, client_for):
    target = _membership(tenant, tenant.reviewer)
    response = client_for(tenant.admin).patch(
        _members_url(tenant, target.pk), {"role": "owner"}, format="json"
    )
    assert response.status_code == 403
    response = client_for(tenant.owner).patch(
        _members_url(tenant, target.pk), {"role": "owner"}, format="json"
    )
    assert response.status_code == 200


def test_the_last_owner_cannot_step_down_or_leave(tenant, client_for):
    owner = _membership(tenant, tenant.owner)
    client = client_for(tenant.owner)
    response = client.patch(_members_url(tenant, owner.pk), {"role": "admin"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "last_owner"
    assert client.delete(_members_url(tenant, owner.pk)).status_code == 400
    assert _membership(tenant, tenant.owner).role == Role.OWNER


def test_bulk_role_change_records_history_for_every_member(tenant, client_for):
    targets = [_membership(tenant, u) for u in (tenant.viewer, tenant.auditor)]
    response = client_for(tenant.admin).post(
        _members_url(tenant) + "bulk-role/",
        {"member_ids": [m.pk for m in targets], "role": "reviewer"},
        format="json",
    )
    assert response.status_code == 200, response.content
    for membership in targets:
        latest = membership.history.order_by("-history_date").first()
        assert latest.role == "reviewer"
        assert latest.history_type == "~"
        assert latest.history_user == tenant.admin


def test_bulk_role_change_is_all_or_nothing(tenant, other_tenant, client_for):
    mine = _membership(tenant, tenant.viewer)
    foreign = _membership(other_tenant, other_tenant.viewer)
    response = client_for(tenant.admin).post(
        _members_url(tenant) + "bulk-role/",
        {"member_ids": [mine.pk, foreign.pk], "role": "reviewer"},
        format="json",
    )
    assert response.status_code == 404
    assert _membership(tenant, tenant.viewer).role == Role.VIEWER
    assert _membership(other_tenant, other_tenant.viewer).role == Role.VIEWER


def test_narrowed_member_sees_only_their_projects(tenant, client_for):
    from hitl.audit import Actor
    from projects import services

    with tenant_scope(tenant.organization.pk):
        hidden = services.project_create(actor=Actor(user=tenant.owner), name="Hidden")
    membership = _membership(tenant, tenant.reviewer)
    response = client_for(tenant.admin).patch(
        _members_url(tenant, membership.pk), {"project_ids": [tenant.project.pk]}, format="json"
    )
    assert response.status_code == 200 and response.json()["project_ids"] == [tenant.project.pk]
    reviewer = client_for(tenant.reviewer)
    listed = reviewer.get(f"/api/orgs/{tenant.organization.slug}/projects/").json()["results"]
    assert [p["slug"] for p in listed] == [tenant.project.slug]
    hidden_url = f"/api/orgs/{tenant.organization.slug}/projects/{hidden.slug}/whoami/"
    assert reviewer.get(hidden_url).status_code == 404
    # The m2m change is in the history too.
    latest = membership.history.order_by("-history_date").first()
    assert [p.project_id for p in latest.projects.all()] == [tenant.project.pk]


def test_user_in_two_organizations_lists_both(tenant, other_tenant, client_for):
    from tests.factories import add_member

    add_member(other_tenant.organization, tenant.reviewer, Role.VIEWER)
    response = client_for(tenant.reviewer).get("/api/orgs/")
    roles = {o["slug"]: o["role"] for o in response.json()}
    assert roles == {
        tenant.organization.slug: "reviewer",
        other_tenant.organization.slug: "viewer",
    }


def test_creating_an_organization_makes_the_caller_owner(tenant, client_for):
    client = client_for(tenant.reviewer)
    response = client.post("/api/orgs/", {"name": "New Clinic"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "owner"
    again = client.post("/api/orgs/", {"name": "New Clinic"}, format="json")
    assert again.status_code == 409


def test_bulk_role_answers_the_members_changed_and_removal_answers_nothing(tenant, client_for):
    client = client_for(tenant.owner)
    viewer, reviewer = _membership(tenant, tenant.viewer), _membership(tenant, tenant.reviewer)
    response = client.post(
        _members_url(tenant) + "bulk-role/",
        {"member_ids": [viewer.pk, reviewer.pk], "role": Role.AUDITOR},
        format="json",
    )
    assert response.status_code == 200, response.content
    answered = {member["id"]: member for member in response.json()}
    assert set(answered) == {viewer.pk, reviewer.pk}
    assert {member["role"] for member in answered.values()} == {Role.AUDITOR}
    assert answered[viewer.pk]["email"] == tenant.viewer.email

    removed = client.delete(_members_url(tenant, viewer.pk))
    assert removed.status_code == 204 and removed.content == b""
    with tenant_scope(tenant.organization.pk):
        assert not Membership.objects.filter(pk=viewer.pk).exists()
