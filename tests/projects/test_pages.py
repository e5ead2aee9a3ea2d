from django.test import Client

from projects.models import Role
from tests.factories import add_member


def test_switching_organizations(tenant, other_tenant):
    add_member(other_tenant.organization, tenant.reviewer, Role.VIEWER)
    client = Client()
    client.force_login(tenant.reviewer)
    home = client.get("/")
    assert home.status_code == 200
    assert tenant.organization.name.encode() in home.content
    assert other_tenant.organization.name.encode() in home.content
    switched = client.post("/orgs/switch/", {"organization": other_tenant.organization.slug})
    assert switched["Location"] == f"/orgs/{other_tenant.organization.slug}/"
    page = client.get(switched["Location"])
    assert b"Viewer" in page.content
    # The choice sticks: the home page now opens that organization.
    assert client.get("/")["Location"] == f"/orgs/{other_tenant.organization.slug}/"


def test_switching_to_a_foreign_organization_is_refused(tenant, other_tenant):
    client = Client()
    client.force_login(tenant.reviewer)
    response = client.post(
        "/orgs/switch/", {"organization": other_tenant.organization.slug}, follow=True
    )
    assert b"not a member" in response.content
    assert client.get(f"/orgs/{other_tenant.organization.slug}/").status_code == 404


def test_members_table_only_for_managers(tenant):
    reviewer, admin = Client(), Client()
    reviewer.force_login(tenant.reviewer)
    admin.force_login(tenant.admin)
    url = f"/orgs/{tenant.organization.slug}/"
    # As a table cell: "viewer1@..." is also a substring of "reviewer1@...".
    cell = f"<td>{tenant.viewer.email}</td>".encode()
    assert cell not in reviewer.get(url).content
    assert cell in admin.get(url).content


def test_pages_need_a_login(tenant):
    response = Client().get(f"/orgs/{tenant.organization.slug}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_page_of_the_same_organization_does_not_save_the_session_again(tenant, other_tenant):
    """Opening a page remembers its organization in the session; the next page of the
    same organization leaves the session row as it is (no write per page view), and a
    page of another organization remembers that one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    add_member(other_tenant.organization, tenant.reviewer, Role.VIEWER)
    client = Client()
    client.force_login(tenant.reviewer)

    def session_writes(url: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "django_session"')]

    mine, theirs = f"/orgs/{tenant.organization.slug}/", f"/orgs/{other_tenant.organization.slug}/"
    session_writes(mine)
    assert session_writes(mine) == []
    assert len(session_writes(theirs)) == 1
    assert client.get("/")["Location"] == theirs
    assert session_writes(theirs) == []
