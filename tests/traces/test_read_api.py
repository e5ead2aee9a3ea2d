"""The trace list and thread endpoints: lean filtered rows, pagination, who may read,
tenant isolation, the error shape of a bad filter, and the OpenAPI schema."""

from __future__ import annotations

import pytest

from tests.traces.read_builders import (
    at,
    make_feedback,
    make_score,
    make_span,
    make_thread,
    make_trace,
)


def traces_url(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/traces/"


def threads_url(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/threads/"


@pytest.fixture
def listed(tenant):
    """Five traces arriving one after another; two in a thread."""
    thread = make_thread(tenant.project, "conversation-1", metadata={"channel": "web"})
    traces = []
    for i in range(5):
        trace = make_trace(
            tenant.project,
            f"trace-{i}",
            name="answer" if i % 2 == 0 else "lookup",
            thread=thread if i in (1, 3) else None,
            tags=["prod"],
            input={"secret_payload": "x" * 100},
            output={"secret_payload": "y"},
            start_time=at(i * 60),
            end_time=at(i * 60 + 2),
            latency_ms=2000,
            total_tokens=10 * i,
            created_at=at(i * 60 + 5),
        )
        make_span(trace, f"s{i}", model="gpt-4o", input={"secret_payload": "z"})
        make_span(trace, f"s{i}b", parent=f"s{i}")
        traces.append(trace)
    make_score(traces[4], "correctness", 0.25)
    make_score(traces[4], "correctness", 0.75)
    make_score(traces[4], "helpful", 1.0, source="human")
    make_feedback(traces[4], "thumbs", -1)
    make_feedback(traces[4], "thumbs", 1)
    make_feedback(traces[4], "rating", 3)
    return tenant


def test_list_is_newest_first_with_lean_rows_and_summaries(listed, client_for):
    response = client_for(listed.viewer).get(traces_url(listed))
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["trace_id"] for row in rows] == [f"trace-{i}" for i in (4, 3, 2, 1, 0)]
    newest = rows[0]
    assert "secret_payload" not in response.content.decode()
    assert newest["span_count"] == 2
    assert newest["thread_id"] is None
    assert rows[1]["thread_id"] == "conversation-1"
    assert newest["total_tokens"] == 40
    assert newest["score_summary"] == [
        {"name": "correctness", "source": "llm_judge", "count": 2, "average": 0.5},
        {"name": "helpful", "source": "human", "count": 1, "average": 1.0},
    ]
    assert newest["feedback_summary"] == {
        "count": 3,
        "thumbs_up": 1,
        "thumbs_down": 1,
        "average_rating": 3.0,
    }
    assert rows[1]["score_summary"] == []
    assert rows[1]["feedback_summary"]["count"] == 0


def test_list_rows_never_select_payload_columns(listed, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client_for(listed.owner).get(traces_url(listed)).status_code == 200
    trace_selects = [q["sql"] for q in queries if 'FROM "traces_trace"' in q["sql"]]
    assert trace_selects
    for sql in trace_selects:
        assert '"traces_trace"."input"' not in sql
        assert '"traces_trace"."output"' not in sql


def test_list_filters_through_the_query_string(listed, client_for):
    client = client_for(listed.viewer)
    response = client.get(traces_url(listed), {"name": "lookup", "total_tokens_min": "20"})
    assert [row["trace_id"] for row in response.json()["results"]] == ["trace-3"]
    response = client.get(traces_url(listed) + "?score=correctness<0.5&thread=conversation-1")
    assert response.json()["results"] == []
    response = client.get(traces_url(listed) + "?score=correctness<0.5&feedback=thumbs_down")
    assert [row["trace_id"] for row in response.json()["results"]] == ["trace-4"]


def test_list_paginates_with_a_cursor(listed, client_for):
    client = client_for(listed.viewer)
    first = client.get(traces_url(listed), {"page_size": 2, "tags": "prod"}).json()
    assert [row["trace_id"] for row in first["results"]] == ["trace-4", "trace-3"]
    second = client.get(first["next"]).json()
    assert [row["trace_id"] for row in second["results"]] == ["trace-2", "trace-1"]
    third = client.get(second["next"]).json()
    assert [row["trace_id"] for row in third["results"]] == ["trace-0"]
    assert third["next"] is None


def test_invalid_filter_answers_400_with_reasons_per_parameter(listed, client_for):
    response = client_for(listed.viewer).get(
        traces_url(listed) + "?score=correctness<<1&latency_ms_min=slow&colour=red"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"] == "Invalid trace filter."
    assert set(error["details"]) == {"score", "latency_ms_min", "colour"}
    assert error["details"]["colour"] == ["Unknown filter."]


def test_every_role_and_a_read_key_may_list_but_an_ingest_key_may_not(listed, client_for):
    for user in (listed.owner, listed.admin, listed.reviewer, listed.auditor, listed.viewer):
        assert client_for(user).get(traces_url(listed)).status_code == 200
    assert client_for(key=listed.key("read")).get(traces_url(listed)).status_code == 200
    response = client_for(key=listed.key("ingest")).get(traces_url(listed))
    assert response.status_code == 403
    assert client_for().get(traces_url(listed)).status_code in (401, 403)


def test_another_organizations_traces_are_not_found(listed, other_tenant, client_for):
    trace_id = "trace-4"
    mine = f"/api/orgs/{other_tenant.organization.slug}/projects/{other_tenant.project.slug}"
    victims = f"/api/orgs/{listed.organization.slug}/projects/{listed.project.slug}"
    for client in (client_for(other_tenant.owner), client_for(key=other_tenant.key("all"))):
        # The victim's slugs: the organization or project is not found.
        for path in ("/traces/", f"/traces/{trace_id}/", f"/traces/{trace_id}/spans/s4/"):
            assert client.get(victims + path).status_code == 404
        assert client.get(victims + "/threads/conversation-1/").status_code == 404
        # Our own slugs with the victim's ids: not found either; the list is empty.
        assert client.get(mine + f"/traces/{trace_id}/").status_code == 404
        assert client.get(mine + f"/traces/{trace_id}/spans/s4/").status_code == 404
        assert client.get(mine + "/threads/conversation-1/").status_code == 404
        assert client.get(mine + "/traces/").json()["results"] == []
        assert client.get(mine + "/threads/").json()["results"] == []


def test_thread_list_and_thread_traces_in_order(listed, client_for):
    client = client_for(listed.viewer)
    make_thread(listed.project, "conversation-2")
    rows = client.get(threads_url(listed)).json()["results"]
    assert [row["thread_id"] for row in rows] == ["conversation-2", "conversation-1"]
    assert rows[1]["trace_count"] == 2
    assert rows[1]["first_start_time"] == "2026-01-01T10:01:00Z"
    assert rows[1]["last_start_time"] == "2026-01-01T10:03:00Z"
    assert rows[0]["trace_count"] == 0

    # A late trace that started first comes first; one without a start time comes last.
    thread = make_thread(listed.project, "conversation-3")
    make_trace(listed.project, "late", thread=thread, start_time=at(300), created_at=at(900))
    make_trace(listed.project, "early", thread=thread, start_time=at(100), created_at=at(950))
    make_trace(listed.project, "unknown", thread=thread, created_at=at(10))
    body = client.get(threads_url(listed) + "conversation-3/").json()
    assert body["thread"]["thread_id"] == "conversation-3"
    assert body["thread"]["trace_count"] == 3
    assert body["count"] == 3
    assert [row["trace_id"] for row in body["results"]] == ["early", "late", "unknown"]

    page = client.get(threads_url(listed) + "conversation-3/", {"limit": 2, "offset": 2}).json()
    assert [row["trace_id"] for row in page["results"]] == ["unknown"]
    assert client.get(threads_url(listed) + "missing/").status_code == 404


def test_schema_documents_the_read_endpoints_without_warnings(db):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    GENERATOR_STATS.enable_trace_lineno()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ours = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        # The API key authenticator is shared by every endpoint, not part of these.
        if "could not resolve authenticator" not in message
        and any(
            ours in message
            for ours in (
                "read_views",
                "read_serializers",
                "traces/filters",
                "TraceViewSet",
                "ThreadViewSet",
            )
        )
    ]
    assert ours == []
    paths = schema["paths"]
    base = "/api/orgs/{org_slug}/projects/{project_slug}"
    list_parameters = {p["name"] for p in paths[f"{base}/traces/"]["get"]["parameters"]}
    assert {
        "cursor", "start_time_from", "start_time_to", "name", "name_contains", "tags",
        "thread", "model", "status", "has_error", "latency_ms_min", "latency_ms_max",
        "cost_min", "cost_max", "total_tokens_min", "input_tokens_max", "output_tokens_min",
        "metadata", "score", "feedback", "feedback_rating_min", "reviewed", "q",
    } <= list_parameters  # fmt: skip
    score = next(p for p in paths[f"{base}/traces/"]["get"]["parameters"] if p["name"] == "score")
    assert score["schema"]["type"] == "array"
    for path in (
        f"{base}/traces/{{trace_external_id}}/",
        f"{base}/traces/{{trace_external_id}}/spans/{{span_external_id}}/",
        f"{base}/threads/",
        f"{base}/threads/{{thread_external_id}}/",
    ):
        assert "get" in paths[path]


def test_browsable_pages_render_with_the_filter_form(listed, client_for):
    client = client_for(listed.viewer)
    page = client.get(
        traces_url(listed) + "?tags=prod&score=correctness<0.5", HTTP_ACCEPT="text/html"
    )
    assert page.status_code == 200
    assert b"trace-4" in page.content
    detail = client.get(traces_url(listed) + "trace-4/", HTTP_ACCEPT="text/html")
    assert detail.status_code == 200
    assert b"secret_payload" in detail.content  # the spliced payloads, in the page
