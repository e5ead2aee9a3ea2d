"""One error shape for every 4xx/5xx, and bad input never half-writes."""

from django.test import override_settings

from hitl.tenancy import tenant_scope
from projects.models import Project


def _assert_error_shape(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response["X-Request-Id"]


def test_malformed_json(tenant, client_for):
    response = client_for(tenant.admin).post(
        f"/api/orgs/{tenant.organization.slug}/projects/",
        data='{"name": ',
        content_type="application/json",
    )
    _assert_error_shape(response, 400, "parse_error")


def test_wrong_types_and_unknown_fields(tenant, client_for):
    client = client_for(tenant.admin)
    url = f"/api/orgs/{tenant.organization.slug}/projects/"
    response = client.post(url, {"name": ["a", "list"]}, format="json")
    _assert_error_shape(response, 400, "invalid")
    assert "name" in response.json()["error"]["details"]
    response = client.post(url, {"name": "ok", "owner_id": 7}, format="json")
    _assert_error_shape(response, 400, "invalid")
    assert response.json()["error"]["details"] == {"owner_id": ["Unknown field."]}
    with tenant_scope(tenant.organization.pk):
        assert Project.objects.count() == 1


def test_body_not_an_object(tenant, client_for):
    response = client_for(tenant.admin).post(
        f"/api/orgs/{tenant.organization.slug}/projects/",
        data="[1, 2]",
        content_type="application/json",
    )
    _assert_error_shape(response, 400, "invalid")


@override_settings(HITL_MAX_BODY_BYTES=1000)
def test_oversize_body_answers_413_naming_the_limit(tenant, client_for):
    response = client_for(tenant.admin).post(
        f"/api/orgs/{tenant.organization.slug}/projects/",
        {"name": "x", "description": "y" * 5000},
        format="json",
    )
    _assert_error_shape(response, 413, "request_too_large")
    assert response.json()["error"]["details"] == {"limit_bytes": 1000}
    assert "1000 bytes" in response.json()["error"]["message"]


def test_unknown_api_route_is_json_404(db, client_for):
    response = client_for().get("/api/nothing-here/")
    _assert_error_shape(response, 404, "not_found")


def test_other_organization_answers_404_like_a_missing_one(tenant, other_tenant, client_for):
    client = client_for(tenant.owner)
    foreign = client.get(f"/api/orgs/{other_tenant.organization.slug}/projects/")
    missing = client.get("/api/orgs/does-not-exist/projects/")
    _assert_error_shape(foreign, 404, "not_found")
    _assert_error_shape(missing, 404, "not_found")
    assert foreign.json()["error"]["message"] == missing.json()["error"]["message"]


def test_method_not_allowed(tenant, client_for):
    response = client_for(tenant.owner).put(
        f"/api/orgs/{tenant.organization.slug}/members/", {}, format="json"
    )
    _assert_error_shape(response, 405, "method_not_allowed")


def test_throttled_calls_answer_429_with_retry_after(tenant, client_for, settings):
    from hitl.api.throttling import CallerRateThrottle

    rates = {**CallerRateThrottle.THROTTLE_RATES, "user": "3/min"}
    original = CallerRateThrottle.THROTTLE_RATES
    CallerRateThrottle.THROTTLE_RATES = rates
    try:
        client = client_for(tenant.viewer)
        url = f"/api/orgs/{tenant.organization.slug}/members/"
        statuses = [client.get(url).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = client.get(url)
        _assert_error_shape(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
        assert response.json()["error"]["details"]["retry_after_seconds"] > 0
    finally:
        CallerRateThrottle.THROTTLE_RATES = original


def test_request_id_is_echoed(db, client_for):
    response = client_for().get("/api/nothing/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-Id"] == "abc-123"
    assert response.json()["error"]["request_id"] == "abc-123"


def test_secrets_never_reach_the_logs(tenant, client_for, caplog):
    client = client_for(tenant.admin)
    url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/api-keys/"
    created = client.post(url, {"name": "ci", "scopes": ["read"]}, format="json").json()
    bad = client_for()
    bad.credentials(HTTP_AUTHORIZATION=f"Bearer {created['key']}x")
    with caplog.at_level("DEBUG"):
        bad.get(f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/whoami/")
        client_for(key=created["key"]).get(
            f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/whoami/"
        )
    assert created["key"] not in caplog.text


def test_nul_in_a_query_parameter_is_refused(tenant, client_for):
    response = client_for(tenant.viewer).get(
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/comments/?q=a%00b"
    )
    _assert_error_shape(response, 400, "invalid")
    assert "NUL" in response.json()["error"]["message"]


def test_nul_in_a_json_body_is_refused_and_nothing_is_written(tenant, client_for):
    response = client_for(tenant.admin).post(
        f"/api/orgs/{tenant.organization.slug}/projects/",
        data='{"name": "ok", "description": "a\\u0000b"}',
        content_type="application/json",
    )
    _assert_error_shape(response, 400, "parse_error")
    with tenant_scope(tenant.organization.pk):
        assert Project.objects.count() == 1


def test_deeply_nested_json_is_refused(tenant, client_for):
    url = f"/api/orgs/{tenant.organization.slug}/projects/"
    for depth in (65, 100_000):
        response = client_for(tenant.admin).post(
            url, data="[" * depth + "]" * depth, content_type="application/json"
        )
        _assert_error_shape(response, 400, "parse_error")
        assert "nested deeper than 64" in response.json()["error"]["message"]
