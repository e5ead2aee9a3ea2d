"""Values PostgreSQL cannot store or compare are refused at the edge, naming where they
were, and nothing already accepted is lost: filters (hitl.filtering), query strings and
form fields (the middleware), JSON bodies (the API parser) and ingestion (per event)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl.tenancy import tenant_scope
from projects.models import ApiKey
from review.models import RoutingRule
from tests.review.helpers import make_queue
from tests.traces.ingest_helpers import event, ingest_url, trace
from traces.models import Score, Trace


def _project_api(tenant, path: str) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/{path}"


def _assert_400_naming(response, name: str) -> dict:
    assert response.status_code == 400, (response.status_code, response.content)
    error = response.json()["error"]
    assert name in error.get("details", {}) or name in error["message"], error
    return error


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("cost_min", "1e-999999"),
        ("cost_max", "1e400"),
        ("latency_ms_min", "NaN"),
        ("latency_ms_max", "-Infinity"),
        ("total_tokens_min", "9" * 400),
        ("feedback_rating_min", "Infinity"),
        ("start_time_from", "2026-01-01T00:00:00+16:00"),
        ("start_time_to", "2026-01-01T00:00:00-15:00"),
        ("score", "faithfulness<1e400"),
    ],
)
def test_trace_filter_values_past_the_columns_are_400_naming_them(
    tenant, client_for, parameter, value
):
    client = client_for(key=tenant.key("read"))
    _assert_400_naming(client.get(_project_api(tenant, "traces/"), {parameter: value}), parameter)


def test_a_thread_time_with_an_offset_no_zone_has_is_400(tenant, client_for):
    client = client_for(key=tenant.key("read"))
    response = client.get(
        _project_api(tenant, "threads/"), {"created_from": "2026-01-01T00:00:00+16:00"}
    )
    error = _assert_400_naming(response, "created_from")
    assert "14:00" in str(error["details"])


def test_real_offsets_and_tiny_floats_still_filter(tenant, client_for):
    client = client_for(key=tenant.key("read"))
    url = _project_api(tenant, "traces/")
    for params in (
        {"start_time_from": "2026-01-01T00:00:00+14:00"},
        {"start_time_to": "2026-01-01T00:00:00-12:00"},
        {"latency_ms_min": "1e-999999"},
        {"cost_min": "0.00000001"},
    ):
        assert client.get(url, params).status_code == 200, params


def test_a_metadata_value_spelling_nan_matches_that_text(tenant, client_for):
    """NaN and 1e999 are no JSON numbers: the condition compares the text, exactly."""
    ingest = client_for(key=tenant.key("ingest"))
    response = ingest.post(
        ingest_url(tenant),
        {"events": [trace("nan-text", metadata={"k": "NaN"}), trace("other", metadata={"k": 1})]},
        format="json",
    )
    assert response.status_code == 200, response.content
    reader = client_for(key=tenant.key("read"))
    cases = {"NaN": ["nan-text"], "1e999": [], "-Infinity": [], "1": ["other"]}
    for value, expected in cases.items():
        listed = reader.get(_project_api(tenant, "traces/"), {"metadata": f"k:{value}"})
        assert listed.status_code == 200, (value, listed.content)
        assert [t["trace_id"] for t in listed.json()["results"]] == expected, value


def test_a_routing_rule_with_a_bad_filter_is_refused_when_saved(tenant, client_for):
    queue = make_queue(tenant)
    client = client_for(tenant.admin)
    url = _project_api(tenant, "routing-rules/")
    for params in (
        {"start_time_from": "2026-01-01T00:00:00+16:00"},
        {"cost_min": "1e-999999"},
        {"latency_ms_min": "NaN"},
    ):
        response = client.post(
            url,
            {"name": "r", "queue_id": queue.pk, "signal": "other", "filter_params": params},
            format="json",
        )
        error = _assert_400_naming(response, "filter_params")
        assert next(iter(params)) in str(error["details"]), error
    with tenant_scope(tenant.organization.pk):
        assert not RoutingRule.objects.exists()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"name": "k", "scopes": ["read"], "x": "\\ud800"}', "x"),
        ('{"name": "\\udfff", "scopes": ["read"]}', "name"),
        ('{"name": "k", "scopes": ["\\ud800"]}', "scopes[0]"),
        ('{"name": "k", "scopes": ["read"], "n": 1e400}', "n"),
        ('{"name": "k", "scopes": ["read"], "big": [' + "9" * 400 + "]}", "big[0]"),
        ('{"name": "k", "scopes": ["read"], "m": {"\\ud800": 1}}', "m: A key"),
    ],
)
def test_json_bodies_with_what_postgresql_cannot_store_are_400_with_the_path(
    tenant, client_for, body, where
):
    response = client_for(tenant.admin).post(
        _project_api(tenant, "api-keys/"), data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "parse_error" and error["message"].startswith(where), error
    with tenant_scope(tenant.organization.pk):
        assert not ApiKey.objects.filter(name="k").exists()


def test_a_page_form_with_nul_is_a_400_page_and_changes_nothing(tenant):
    client = Client()
    client.force_login(tenant.admin)
    url = reverse("settings-api-keys", kwargs={"org_slug": tenant.organization.slug})
    response = client.post(
        url,
        {"name": "ci\x00", "project": tenant.project.pk, "scopes": ["read"]},
        HTTP_ACCEPT="text/html",
        HTTP_REFERER=f"http://testserver{url}",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Form field &#x27;name&#x27;" in page and "NUL" in page
    assert f'href="http://testserver{url}"' in page
    with tenant_scope(tenant.organization.pk):
        assert not ApiKey.objects.filter(name__startswith="ci").exists()


def test_an_ingest_batch_refuses_only_the_events_it_cannot_store(tenant, client_for):
    """1e400 and a lone surrogate are valid JSON that orjson refuses: the batch is read
    by the standard library and each such event is rejected alone, named by its index
    and id; the others are stored."""
    body = (
        '{"events": ['
        '{"type": "trace", "body": {"id": "good", "name": "ok"}},'
        '{"type": "trace", "body": {"id": "huge", "metadata": {"n": 1e400}}},'
        '{"type": "trace", "body": {"id": "surrogate", "name": "a\\ud800b"}},'
        '{"type": "span", "body": {"id": "s1", "trace_id": "good", "name": "fine"}}'
        "]}"
    )
    client = client_for(key=tenant.key("ingest"))
    response = client.post(ingest_url(tenant), data=body, content_type="application/json")
    assert response.status_code == 207, response.content
    result = response.json()
    assert result["accepted"] == 2
    rejected = {r["index"]: r for r in result["rejected"]}
    assert set(rejected) == {1, 2}
    assert rejected[1]["id"] == "huge" and rejected[1]["reason"].startswith("body.metadata.n")
    assert rejected[2]["id"] == "surrogate" and "surrogate" in rejected[2]["reason"]
    with tenant_scope(tenant.organization.pk):
        assert list(Trace.objects.values_list("external_id", flat=True)) == ["good"]


def test_ingest_bodies_that_are_not_json_are_still_refused_whole(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))
    for body in ('{"events": [NaN]}', '{"events": [', b'{"events": ["\xff"]}'):
        response = client.post(ingest_url(tenant), data=body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert "Malformed JSON" in response.json()["error"]["message"]


def test_a_single_score_with_an_unstorable_value_is_400(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))
    ingest = client.post(
        ingest_url(tenant), {"events": [event("trace", {"id": "t"})]}, format="json"
    )
    assert ingest.status_code == 200
    response = client.post(
        _project_api(tenant, "ingest/scores/"),
        data='{"id": "s", "trace_id": "t", "name": "x\\ud800", "value": 1}',
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert "surrogate" in str(response.json()["error"])
    with tenant_scope(tenant.organization.pk):
        assert not Score.objects.exists()
