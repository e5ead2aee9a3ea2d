"""The explorer's filter builder: rows of field, operator and value become the trace
filter's own parameters (the API's), so the address after applying is the filter a
client would send; the page shows them back as rows and chips; pickers offer the
project's score names and people; saved views keep the order."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from tests.review.helpers import make_trace
from traces import filter_builder
from traces.filters import TraceFilter
from traces.models import Feedback, SavedView, Score


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(tenant, name: str = "traces-explorer") -> str:
    return reverse(
        name, kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    )


def _score(tenant, trace, name: str, value: float, **fields) -> None:
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project,
            trace=trace,
            name=name,
            data_type="numeric",
            value=value,
            source=fields.pop("source", "llm_judge"),
            **fields,
        )


def _rows(*rows: tuple[str, str, str, str]) -> dict[str, list[str]]:
    """The query a page posts for these (field, key, operator, value) rows, plus the
    blank row every page has."""
    rows = (*rows, ("", "", "is", ""))
    return {name: [row[i] for row in rows] for i, name in enumerate(filter_builder.ROW_PARAMS)}


def test_every_filter_parameter_has_a_field_in_the_builder():
    written = {param for spec in filter_builder.FIELDS.values() for param in spec.params.values()}
    assert written == set(TraceFilter.base_filters)


@pytest.fixture
def judged(tenant):
    bad = make_trace(tenant, name="bad answer", status="ok")
    good = make_trace(tenant, name="good answer", status="ok")
    unhappy = make_trace(tenant, name="bad but liked", status="ok")
    _score(tenant, bad, "faithfulness", 0.2)
    _score(tenant, good, "faithfulness", 0.9)
    _score(tenant, unhappy, "faithfulness", 0.3)
    with tenancy.tenant_scope(tenant.organization.pk):
        Feedback.objects.create(project=tenant.project, trace=bad, kind="thumbs", value=-1)
        Feedback.objects.create(project=tenant.project, trace=unhappy, kind="thumbs", value=1)
    return bad, good, unhappy


def test_rows_become_the_api_filter_and_come_back_as_rows_and_chips(tenant, judged):
    client = _client(tenant.admin)
    query = _rows(("score", "faithfulness", "lt", "0.5"), ("feedback", "", "is", "thumbs_down"))
    response = client.get(_url(tenant), {**query, "sort": "-latency_ms", "col": ["name"]})
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert parse_qs(target.query) == {
        "score": ["faithfulness<0.5"],
        "feedback": ["thumbs_down"],
        "col": ["name"],
        "sort": ["-latency_ms"],
    }
    # The same parameters narrow the API's list to the same trace.
    org, project = tenant.organization.slug, tenant.project.slug
    api_query = {k: v for k, v in parse_qs(target.query).items() if k != "col"}
    api = client.get(f"/api/orgs/{org}/projects/{project}/traces/", api_query)
    assert api.status_code == 200
    assert [t["name"] for t in api.json()["results"]] == ["bad answer"]
    page = client.get(response["Location"])
    body = page.content.decode()
    assert "bad answer" in body and "good answer" not in body and "bad but liked" not in body
    chips = [c["chip"] for c in page.context["conditions"]]
    assert chips == ["faithfulness < 0.5", "thumbs down"]
    assert "faithfulness &lt; 0.5" in body
    # Each chip's link drops that condition only.
    drop_score = page.context["conditions"][0]["remove_url"]
    assert parse_qs(urlsplit(drop_score).query) == {
        "feedback": ["thumbs_down"],
        "col": ["name"],
        "sort": ["-latency_ms"],
    }
    # The rows shown post back the same filter (the address round-trips).
    rows = [c["row"] for c in page.context["conditions"]]
    again = filter_builder.params_from_conditions(rows)
    assert again == {"score": ["faithfulness<0.5"], "feedback": ["thumbs_down"]}
    # The score picker offers the project's names.
    assert page.context["score_names"] == ["faithfulness"]


def test_a_row_typed_without_the_script_is_read_by_label(tenant, judged):
    client = _client(tenant.admin)
    query = _rows(("feedback", "", "is", "Thumbs Down"), ("score", "faithfulness", "le", "0.2"))
    response = client.get(_url(tenant), query)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {
        "feedback": ["thumbs_down"],
        "score": ["faithfulness<=0.2"],
    }


def test_an_incomplete_row_is_said_beside_it_and_nothing_is_searched(tenant, judged):
    client = _client(tenant.admin)
    response = client.get(
        _url(tenant), _rows(("score", "", "lt", "0.5"), ("duration", "", "contains", "3"))
    )
    assert response.status_code == 200
    errors = [c["errors"] for c in response.context["conditions"]]
    assert errors == [["Give the score name."], ["Duration takes “≥”, “≤”."]]
    body = response.content.decode()
    assert "bad answer" not in body and "The filter has errors" in body
    # A value the filter refuses is said beside its row, as the API says it.
    response = client.get(_url(tenant), {"score": ["faithfulness<abc", "faithfulness>0.1"]})
    errors = [c["errors"] for c in response.context["conditions"]]
    assert len(errors) == 2 and "needs a number" in errors[0][0] and errors[1] == []


def test_reviewer_picker_names_the_people_and_filters_on_their_scores(tenant, judged):
    _bad, good, _unhappy = judged
    _score(tenant, good, "helpful", 1.0, source="human", author=tenant.reviewer)
    client = _client(tenant.admin)
    page = client.get(_url(tenant))
    people = dict(
        next(f for f in page.context["builder_fields"] if f["name"] == "reviewer")["choices"]
    )
    assert people[str(tenant.reviewer.pk)] == tenant.reviewer.email
    # Typed as an email (no script), read as the person's id.
    response = client.get(_url(tenant), _rows(("reviewer", "", "is", tenant.reviewer.email)))
    assert parse_qs(urlsplit(response["Location"]).query) == {"reviewer": [str(tenant.reviewer.pk)]}
    page = client.get(response["Location"])
    body = page.content.decode()
    assert "good answer" in body and "bad answer" not in body
    assert page.context["conditions"][0]["chip"] == f"reviewed by {tenant.reviewer.email}"


def test_a_saved_view_keeps_the_order(tenant, judged):
    client = _client(tenant.admin)
    response = client.post(
        _url(tenant, "traces-saved-view-create"),
        {"name": "Worst first", "query": "score=faithfulness", "sort": "score:faithfulness"},
    )
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        view = SavedView.objects.get(name="Worst first")
    assert view.sort == "score:faithfulness"
    assert QueryDict(urlsplit(response["Location"]).query)["sort"] == "score:faithfulness"
    page = client.get(_url(tenant))
    entry = next(e for e in page.context["saved_views"] if e["view"].pk == view.pk)
    opened = client.get(entry["url"])
    assert opened.context["sort"].key == "score:faithfulness"
    names = [row["name"] for row in opened.context["rows"]]
    assert names == ["bad answer", "bad but liked", "good answer"]
    refused = client.post(
        _url(tenant, "traces-saved-view-create"), {"name": "Bad order", "sort": "colour"}
    )
    assert refused.status_code == 400


def test_a_filter_reads_in_words():
    context = filter_builder.Context(reviewers=[("7", "ana@example.com")])
    params = {
        "score": ["faithfulness<0.5", "toxicity"],
        "feedback": "thumbs_down",
        "latency_ms_min": "500",
        "reviewer": "7",
        "tags": ["billing", "vip"],
    }
    assert filter_builder.summary(params, context) == (
        "faithfulness < 0.5 and has a “toxicity” score and tag billing and tag vip and "
        "thumbs down and reviewed by ana@example.com and duration ≥ 500 ms"
    )
    assert filter_builder.summary({}) == "every trace"
