import hashlib

from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from projects.api.bases import ProjectScopedViewSet
from projects.models import ApiKey


def _keys_url(tenant):
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/api-keys/"


def _whoami_url(tenant, project=None):
    project = project or tenant.project
    return f"/api/orgs/{tenant.organization.slug}/projects/{project.slug}/whoami/"


def _members_url(tenant):
    return f"/api/orgs/{tenant.organization.slug}/members/"


def test_key_is_shown_once_and_stored_hashed_with_a_visible_prefix(tenant, client_for):
    client = client_for(tenant.admin)
    response = client.post(_keys_url(tenant), {"name": "ci", "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    raw = created["key"]
    assert raw.startswith(created["prefix"]) and created["prefix"].startswith("hitl_")
    stored = ApiKey.unscoped_across_tenants.get(pk=created["id"])
    assert stored.hashed_secret == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(stored.__dict__)
    # Never shown again: neither in the list nor in the detail.
    listed = client.get(_keys_url(tenant)).content.decode()
    detail = client.get(f"{_keys_url(tenant)}{created['id']}/").content.decode()
    assert raw not in listed and raw not in detail
    assert created["prefix"] in listed


def test_key_authenticates_and_records_last_use(tenant, client_for):
    api_key = tenant.api_key("read")
    assert api_key.last_used_at is None
    response = client_for(key=tenant.key("read")).get(_whoami_url(tenant))
    assert response.status_code == 200, response.content
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert (timezone.now() - api_key.last_used_at).total_seconds() < 60


def test_revocation_takes_effect_immediately(tenant, client_for):
    key_client = client_for(key=tenant.key("read"))
    assert key_client.get(_whoami_url(tenant)).status_code == 200
    api_key = tenant.api_key("read")
    response = client_for(tenant.admin).delete(f"{_keys_url(tenant)}{api_key.pk}/")
    assert response.status_code == 200 and response.json()["is_active"] is False
    denied = key_client.get(_whoami_url(tenant))
    assert denied.status_code == 401
    assert denied.json()["error"]["message"] == "This API key has been revoked."


def test_whoami_names_the_key_and_its_scopes(tenant, client_for):
    response = client_for(key=tenant.key("ingest")).get(_whoami_url(tenant))
    assert response.status_code == 200
    assert response.json()["caller"] == {
        "type": "api_key",
        "prefix": tenant.api_key("ingest").prefix,
        "scopes": ["ingest"],
    }
    assert response.json()["project"]["slug"] == tenant.project.slug


def test_malformed_and_unknown_keys_are_rejected(tenant, client_for):
    for header in ("Bearer nope", "Bearer hitl_deadbeef_" + "x" * 40, "Bearer a b"):
        client = client_for()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(_whoami_url(tenant))
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "authentication_failed"


def test_missing_credentials_answer_401(tenant, client_for):
    response = client_for().get(_whoami_url(tenant))
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_blank_authorization_headers_read_as_no_credentials(tenant, client_for):
    # A header of whitespace alone (a non-breaking space splits to nothing) is no key.
    for header in ("\u00a0", " ", "\t"):
        client = client_for()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(_whoami_url(tenant))
        assert response.status_code in (401, 403), repr(header)
        assert response.json()["error"]["code"] == "not_authenticated"


def test_keys_cannot_manage_keys_or_members(tenant, client_for):
    client = client_for(key=tenant.key("all"))
    assert client.get(_keys_url(tenant)).status_code == 403
    assert client.get(f"/api/orgs/{tenant.organization.slug}/members/").status_code == 403


def test_a_key_of_one_project_cannot_reach_another_project(tenant, client_for):
    from hitl.audit import Actor
    from hitl.tenancy import tenant_scope
    from projects import services

    with tenant_scope(tenant.organization.pk):
        second = services.project_create(actor=Actor(user=tenant.owner), name="Second")
    url = _whoami_url(tenant, second)
    assert client_for(key=tenant.key("all")).get(url).status_code == 404
    assert client_for(tenant.owner).get(url).status_code == 200


def test_unknown_scope_is_refused(tenant, client_for):
    response = client_for(tenant.admin).post(
        _keys_url(tenant), {"name": "x", "scopes": ["admin"]}, format="json"
    )
    assert response.status_code == 400
    assert "scopes" in response.json()["error"]["details"]


def test_reviewer_cannot_create_keys(tenant, client_for):
    response = client_for(tenant.reviewer).post(
        _keys_url(tenant), {"name": "x", "scopes": ["read"]}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


class _ScopeProbeViewSet(ProjectScopedViewSet):
    """A minimal endpoint on the real base class, called without a URL conf."""

    scoped_model = ApiKey

    def list(self, request, **kwargs):
        return Response({"count": self.get_queryset().count()})

    def create(self, request, **kwargs):
        return Response({"ok": True}, status=201)


def _probe(tenant, method: str, key: str):
    view = _ScopeProbeViewSet.as_view({"get": "list", "post": "create"})
    request = getattr(APIRequestFactory(), method)(
        "/probe/", HTTP_AUTHORIZATION=f"Bearer {key}", format="json"
    )
    return view(request, org_slug=tenant.organization.slug, project_slug=tenant.project.slug)


def test_scopes_are_enforced_per_method(tenant):
    assert _probe(tenant, "get", tenant.key("read")).status_code == 200
    denied = _probe(tenant, "get", tenant.key("ingest"))
    assert denied.status_code == 403
    assert "'read' scope" in denied.data["error"]["message"]
    assert _probe(tenant, "post", tenant.key("read")).status_code == 403
    assert _probe(tenant, "post", tenant.key("write")).status_code == 201
