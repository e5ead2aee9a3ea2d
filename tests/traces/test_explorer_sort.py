"""The trace explorer's order (start time by default, duration, tokens, cost, a score's
average, both ways, traces without a value last), its pages under each order, the count
of matches with its cap, and a refused sort answered beside its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from tests.review.helpers import make_trace
from traces import selectors
from traces import views as trace_views
from traces.filters import parse_sort, parse_sort_cursor, sort_cursor
from traces.models import Score, Trace

DAY = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _explorer(tenant, **params) -> str:
    url = reverse(
        "traces-explorer",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


def _score(trace, name: str, value: float) -> None:
    with tenancy.tenant_scope(trace.organization_id):
        Score.objects.create(
            project_id=trace.project_id,
            trace=trace,
            name=name,
            data_type="numeric",
            value=value,
            source="llm_judge",
        )


@pytest.fixture
def runs(tenant):
    """Five traces arriving in an order unlike their start times; ties and missing
    values on purpose: (name, started days after DAY, latency, tokens, cost, score)."""
    rows = [
        ("r-a", 3, 120.0, 40, Decimal("0.002"), 0.9),
        ("r-b", 0, None, 10, None, None),
        ("r-c", 5, 900.0, 40, Decimal("0.010"), 0.1),
        ("r-d", None, 120.0, 0, Decimal("0.002"), 0.5),
        ("r-e", 1, 15.5, 75, Decimal("0.001"), 0.5),
    ]
    made = {}
    for name, day, latency, tokens, cost, score in rows:
        trace = make_trace(
            tenant,
            name=name,
            start_time=None if day is None else DAY + timedelta(days=day),
            latency_ms=latency,
            total_tokens=tokens,
            cost=cost,
        )
        if score is not None:
            _score(trace, "faithfulness", score)
        made[name] = trace
    return made


def _names(body: str) -> list[str]:
    found = [n for n in ("r-a", "r-b", "r-c", "r-d", "r-e") if f">{n}<" in body]
    return sorted(found, key=lambda n: body.index(f">{n}<"))


def _walk(client, url: str) -> list[str]:
    """Every page of the list from ``url``, following "Next page"."""
    seen: list[str] = []
    for _ in range(10):
        page = client.get(url)
        assert page.status_code == 200
        seen += _names(page.content.decode())
        url = page.context["next_url"]
        if not url:
            return seen
    raise AssertionError("the pages never end")


EXPECTED = {
    "": ["r-c", "r-a", "r-e", "r-b", "r-d"],  # newest first, no start time last
    "start_time": ["r-b", "r-e", "r-a", "r-c", "r-d"],
    "-latency_ms": ["r-c", "r-d", "r-a", "r-e", "r-b"],  # a tie by id, newest id first
    "latency_ms": ["r-e", "r-a", "r-d", "r-c", "r-b"],
    "-total_tokens": ["r-e", "r-c", "r-a", "r-b", "r-d"],
    "total_tokens": ["r-d", "r-b", "r-a", "r-c", "r-e"],
    "-cost": ["r-c", "r-d", "r-a", "r-e", "r-b"],
    "cost": ["r-e", "r-a", "r-d", "r-c", "r-b"],
    "-score:faithfulness": ["r-a", "r-e", "r-d", "r-c", "r-b"],
    "score:faithfulness": ["r-c", "r-d", "r-e", "r-a", "r-b"],
}


@pytest.mark.parametrize("sort", list(EXPECTED))
def test_every_order_pages_through_every_trace_once(tenant, runs, monkeypatch, sort):
    monkeypatch.setattr(trace_views, "PAGE_SIZE", 2)
    client = _client(tenant.admin)
    url = _explorer(tenant, sort=sort) if sort else _explorer(tenant)
    assert _walk(client, url) == EXPECTED[sort]


def test_the_default_is_start_time_not_arrival(tenant, runs):
    page = _client(tenant.admin).get(_explorer(tenant))
    body = page.content.decode()
    assert _names(body) == EXPECTED[""]
    assert 'aria-sort="descending"' in body  # the Started heading says so
    assert "5 matches" in body and "newest first" in body


def test_a_refused_sort_is_the_fields_error_not_a_failure(tenant, runs):
    for bad in ("name", "-score:", "latency_ms;drop", "score:" + "x" * 400):
        page = _client(tenant.admin).get(_explorer(tenant, sort=bad))
        assert page.status_code == 200
        body = page.content.decode()
        assert "The filter has errors" in body
        assert 'id="sort-errors"' in body
        assert _names(body) == []


def test_a_cursor_of_another_order_is_refused_beside_the_page(tenant, runs):
    page = _client(tenant.admin).get(
        _explorer(tenant, sort="total_tokens", after="2026-12-03T09:00:00+00:00|5")
    )
    assert page.status_code == 200
    assert "Not a page of this list" in page.content.decode()


def test_the_count_is_exact_up_to_the_cap(tenant, runs, monkeypatch):
    client = _client(tenant.admin)
    body = client.get(_explorer(tenant, name_contains="r-")).content.decode()
    assert "5 matches" in body
    monkeypatch.setattr(selectors, "MATCH_COUNT_CAP", 3)
    monkeypatch.setattr(trace_views, "PAGE_SIZE", 2)
    body = client.get(_explorer(tenant)).content.decode()
    assert "more than 3 matches" in body
    one = client.get(_explorer(tenant, name="r-c")).content.decode()
    assert "1 match ·" in one


def test_score_sort_reads_only_scores_the_reader_may_see(tenant, runs):
    """The sort control offers the scores the page shows; a score name nobody gave
    sorts every trace as "no value" (by id), which is still a valid order."""
    page = _client(tenant.admin).get(_explorer(tenant))
    assert ("-score:faithfulness", "score “faithfulness”, highest first") in page.context[
        "sort_choices"
    ]
    other = _client(tenant.admin).get(_explorer(tenant, sort="-score:nobody"))
    assert _names(other.content.decode()) == ["r-e", "r-d", "r-c", "r-b", "r-a"]


def test_a_count_past_its_time_budget_is_not_shown_and_leaves_the_session_as_it_was(tenant, runs):
    with tenancy.tenant_scope(tenant.organization.pk):
        slow = Trace.objects.filter(project=tenant.project).extra(
            where=["pg_sleep(0.02) IS NOT NULL"]
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            before = cursor.fetchone()[0]
        assert selectors.trace_list_count(slow, budget_ms=10) is None
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            assert cursor.fetchone()[0] == before
        # The transaction goes on: the next count is exact.
        assert selectors.trace_list_count(Trace.objects.filter(project=tenant.project)) == 5


def _api(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/traces/"


@pytest.mark.parametrize("sort", ["-latency_ms", "cost", "-score:faithfulness"])
def test_the_api_list_takes_the_same_sort_and_pages_forwards(tenant, runs, client_for, sort):
    client = client_for(key=tenant.keys["read"])
    url = f"{_api(tenant)}?{urlencode({'sort': sort, 'page_size': 2})}"
    seen = []
    for _ in range(5):
        body = client.get(url).json()
        assert body["previous"] is None
        seen += [row["name"] for row in body["results"]]
        url = body["next"]
        if not url:
            break
    assert seen == EXPECTED[sort]


def test_the_api_refuses_a_bad_sort_or_cursor_with_a_reason(tenant, runs, client_for):
    client = client_for(key=tenant.keys["read"])
    bad = client.get(_api(tenant), {"sort": "name"})
    assert bad.status_code == 400 and "sort" in str(bad.json())
    cursor = client.get(_api(tenant), {"sort": "cost", "cursor": "bm90IGEgY3Vyc29y"})
    assert cursor.status_code == 400 and "cursor" in str(cursor.json())
    # Without sort, the list stays newest first by arrival.
    plain = client.get(_api(tenant)).json()
    assert [row["name"] for row in plain["results"]] == ["r-e", "r-d", "r-c", "r-b", "r-a"]


@pytest.mark.parametrize("key", [k for k in EXPECTED if k])
def test_pages_read_by_index_equal_the_plain_order(tenant, runs, key):
    """``trace_list_page`` (two index-shaped reads) against ``trace_list_sorted`` (one
    ORDER BY), from the start and from every row's cursor."""
    sort = parse_sort(key)
    with tenancy.tenant_scope(tenant.organization.pk):
        traces = Trace.objects.filter(project=tenant.project)
        plain = list(selectors.trace_list_sorted(traces, sort=sort))
        assert [t.name for t in plain] == EXPECTED[key]
        for n, row in enumerate([None, *plain]):
            after = None if row is None else (row.sort_value, row.pk)
            if after is not None:  # the cursor as a page writes and reads it
                after = parse_sort_cursor(sort, sort_cursor(sort, row.sort_value, row.pk))
            page = selectors.trace_list_page(
                traces, sort=sort, limit=2, after=after, project=tenant.project
            )
            assert [t.pk for t in page] == [t.pk for t in plain[n : n + 2]]
