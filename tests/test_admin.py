"""The Django admin for staff and auditors: scoped to their organizations, read-only."""

import re

import pytest
from django.test import Client

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects.models import Membership, Role
from tests.factories import add_member, make_user


@pytest.fixture
def auditor_client(tenant):
    auditor = make_user("auditor-staff@acme.example.com", is_staff=True)
    add_member(tenant.organization, auditor, Role.AUDITOR)
    client = Client()
    client.force_login(auditor)
    return client


def test_auditor_sees_only_their_organizations_rows(tenant, other_tenant, auditor_client):
    page = auditor_client.get("/admin/projects/project/")
    assert page.status_code == 200
    assert tenant.project.name.encode() in page.content
    assert other_tenant.project.name.encode() not in page.content
    members = auditor_client.get("/admin/projects/membership/").content
    assert tenant.reviewer.email.encode() in members
    assert other_tenant.reviewer.email.encode() not in members


def test_auditor_cannot_open_another_organizations_object(other_tenant, auditor_client):
    url = f"/admin/projects/project/{other_tenant.project.pk}/change/"
    response = auditor_client.get(url, follow=True)
    assert other_tenant.project.name.encode() not in response.content
    history = auditor_client.get(f"/admin/projects/project/{other_tenant.project.pk}/history/")
    assert history.status_code == 404


def test_auditor_reads_but_cannot_change(tenant, auditor_client):
    url = f"/admin/projects/project/{tenant.project.pk}/change/"
    page = auditor_client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = auditor_client.post(url, {"name": "renamed", "slug": "renamed"})
    assert response.status_code == 403
    assert auditor_client.get("/admin/projects/project/add/").status_code == 403
    with tenant_scope(tenant.organization.pk):
        tenant.project.refresh_from_db()
    assert tenant.project.name != "renamed"


def test_history_page_shows_who_and_what_changed(tenant, client_for, auditor_client):
    with tenant_scope(tenant.organization.pk):
        membership = Membership.objects.get(user=tenant.viewer)
    client_for(tenant.admin).patch(
        f"/api/orgs/{tenant.organization.slug}/members/{membership.pk}/",
        {"role": "reviewer"},
        format="json",
    )
    page = auditor_client.get(f"/admin/projects/membership/{membership.pk}/history/")
    assert page.status_code == 200
    body = page.content.decode()
    assert tenant.admin.email in body or tenant.admin.username in body
    assert "reviewer" in body and "viewer" in body
    changelog = auditor_client.get("/admin/changelog/?model=projects.membership").content.decode()
    assert "role: &#x27;viewer&#x27; → &#x27;reviewer&#x27;" in changelog


def test_history_records_the_api_key_behind_a_change(tenant):
    from hitl import audit
    from hitl.audit import Actor
    from projects import services

    api_key = tenant.api_key("all")
    actor = Actor(api_key_id=api_key.pk, api_key_prefix=api_key.prefix, source="api")
    with tenant_scope(tenant.organization.pk), audit.acting_as(actor):
        services.project_update(actor=actor, project=tenant.project, description="by key")
        latest = tenant.project.history.order_by("-history_date").first()
    assert latest.history_api_key_prefix == api_key.prefix
    assert latest.history_api_key_id == api_key.pk
    assert latest.history_source == "api"
    assert latest.history_user is None


def test_staff_without_a_role_sees_nothing(tenant):
    stranger = make_user("staff-nobody@example.com", is_staff=True)
    client = Client()
    client.force_login(stranger)
    assert client.get("/admin/projects/project/").status_code == 403
    index = client.get("/admin/")
    assert b"Projects" not in index.content


def test_superuser_can_change(tenant):
    root = make_user("root@example.com", is_staff=True)
    root.is_superuser = True
    root.save()
    client = Client()
    client.force_login(root)
    page = client.get(f"/admin/projects/project/{tenant.project.pk}/change/")
    assert b'name="_save"' in page.content


def test_history_of_a_change_made_by_a_task_names_the_task(tenant):
    from hitl import audit
    from hitl.audit import Actor
    from projects import services

    actor = Actor.system("task")
    with tenant_scope(tenant.organization.pk), audit.acting_as(actor):
        services.memberships_set_role(
            actor=actor,
            acting_membership=None,
            membership_ids=[Membership.objects.get(user=tenant.viewer).pk],
            role="reviewer",
        )
        latest = Membership.history.filter(user=tenant.viewer).order_by("-history_date").first()
    assert latest.role == "reviewer"
    assert latest.history_source == "task" and latest.history_user is None


def test_another_organizations_object_is_a_plain_404(other_tenant, auditor_client):
    for suffix in ("change/", "history/", "delete/"):
        url = f"/admin/projects/project/{other_tenant.project.pk}/{suffix}"
        assert auditor_client.get(url).status_code == 404, url


def test_foreign_key_filters_work_and_offer_only_the_users_organizations(
    tenant, other_tenant, auditor_client
):
    from tests.review.helpers import make_queue

    own = make_queue(tenant, name="Cardiology second opinion")
    make_queue(other_tenant, name="Oncology tumour board")
    page = auditor_client.get("/admin/review/annotation/")
    assert page.status_code == 200
    filtered = auditor_client.get(f"/admin/review/annotation/?queue__id__exact={own.pk}")
    assert filtered.status_code == 200
    members = auditor_client.get("/admin/projects/membership/").content.decode()
    assert tenant.organization.name in members
    assert other_tenant.organization.name not in members  # the organization filter


def test_annotation_history_reads_as_people_and_answers(tenant, auditor_client):
    from review import services
    from tests.review.helpers import make_config, make_queue, make_trace

    config = make_config(tenant, name="Dosage accuracy")
    queue = make_queue(tenant, configs=[config], name="Cardiology second opinion")
    reviewer = Actor(user=tenant.reviewer)
    with tenant_scope(tenant.organization.pk):
        trace = make_trace(tenant)
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        assignment = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer, assignment_id=assignment.pk, values={str(config.pk): 0.25}
        )
        services.annotation_update(
            actor=reviewer,
            annotation_id=annotation.pk,
            expected_version=annotation.version,
            values={str(config.pk): 0.75},
        )

    page = auditor_client.get(f"/admin/review/annotation/{annotation.pk}/history/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Cardiology second opinion" in body  # the queue, named
    assert f"{tenant.reviewer.email} (web)" in body  # who, and from where
    assert "Dosage accuracy:</strong>\n                    0.25" in body
    assert "0.75" in body
    changelog = auditor_client.get("/admin/changelog/?model=review.annotation").content.decode()
    assert "values: Dosage accuracy: 0.25 → 0.75" in changelog
    assert "created" in changelog and "queue: Cardiology second opinion" in changelog
    assert f"reviewer: {tenant.reviewer.email}" in changelog
    assert re.search(r"values: Dosage accuracy: 0\.25(?! →)", changelog)  # as first given


def test_history_names_the_api_key_behind_a_change(tenant, auditor_client):
    from hitl import audit
    from projects import services

    api_key = tenant.api_key("all")
    actor = Actor(api_key_id=api_key.pk, api_key_prefix=api_key.prefix, source="api")
    with tenant_scope(tenant.organization.pk), audit.acting_as(actor):
        services.project_update(actor=actor, project=tenant.project, description="by key")
    page = auditor_client.get(f"/admin/projects/project/{tenant.project.pk}/history/")
    assert f"API key {api_key.prefix}… (api)" in page.content.decode()
    changelog = auditor_client.get("/admin/changelog/?model=projects.project").content.decode()
    assert f"API key {api_key.prefix}… (api)" in changelog
    assert "description: — → &#x27;by key&#x27;" in changelog
