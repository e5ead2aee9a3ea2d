from hitl.tenancy import tenant_scope
from projects.models import Project


def test_admin_creates_renames_and_deletes_a_project(tenant, client_for):
    client = client_for(tenant.admin)
    base = f"/api/orgs/{tenant.organization.slug}/projects/"
    created = client.post(base, {"name": "Triage bot", "description": "ER triage"}, format="json")
    assert created.status_code == 201, created.content
    slug = created.json()["slug"]
    assert slug == "triage-bot"
    renamed = client.patch(f"{base}{slug}/", {"name": "Triage assistant"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Triage assistant"
    assert client.delete(f"{base}{slug}/").status_code == 204
    with tenant_scope(tenant.organization.pk):
        assert not Project.objects.filter(slug=slug).exists()
        history = Project.history.filter(slug=slug).order_by("history_date")
        assert [h.history_type for h in history] == ["+", "~", "-"]
        assert {h.history_user_id for h in history} == {tenant.admin.pk}


def test_duplicate_project_slug_conflicts(tenant, client_for):
    client = client_for(tenant.admin)
    base = f"/api/orgs/{tenant.organization.slug}/projects/"
    response = client.post(base, {"name": tenant.project.name}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"slug": ["taken"]}


def test_viewer_cannot_create_projects(tenant, client_for):
    response = client_for(tenant.viewer).post(
        f"/api/orgs/{tenant.organization.slug}/projects/", {"name": "x"}, format="json"
    )
    assert response.status_code == 403


def test_renaming_the_organization_answers_it_renamed_and_deleting_a_project_answers_nothing(
    tenant, client_for
):
    client = client_for(tenant.owner)
    org_url = f"/api/orgs/{tenant.organization.slug}/"
    renamed = client.patch(org_url, {"name": "Acme Health"}, format="json")
    assert renamed.status_code == 200, renamed.content
    body = renamed.json()
    assert body["name"] == "Acme Health" and body["slug"] == tenant.organization.slug
    assert body["id"] == tenant.organization.pk
    spare = client.post(f"{org_url}projects/", {"name": "Spare"}, format="json").json()
    deleted = client.delete(f"{org_url}projects/{spare['slug']}/")
    assert deleted.status_code == 204 and deleted.content == b""
    with tenant_scope(tenant.organization.pk):
        assert not Project.objects.filter(pk=spare["id"]).exists()
