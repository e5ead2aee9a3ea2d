"""Promoting every trace a filter matches builds the filter with the trace filter
builder's condition rows (``traces.filter_builder``), as routing rules and bulk add do:
rows built on the page are the ``trace_filter`` posted to the API (the same traces, the
same version message in words); a refused condition (a value the filter refuses, a
score name the project has no score of, a row without its value) shows its reason
beside its row and promotes nothing; the explorer's link shows as rows and chips."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.utils.html import escape

from datasets.models import DatasetItem
from hitl import tenancy
from tests.datasets.helpers import make_dataset
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_trace
from tests.traces.read_builders import make_score

ROWS = {
    "cf": ["score", "status", ""],
    "ck": ["faithfulness", "", ""],
    "co": ["lt", "is", ""],
    "cv": ["0.5", "error", ""],
}
API_FILTER = {"score": ["faithfulness<0.5"], "status": "error"}


@pytest.fixture(autouse=True)
def scoped(tenant):
    with tenancy.tenant_scope(tenant.organization.pk):
        yield


def _traces(tenant):
    low = make_trace(tenant, external_id="low-err", status="error")
    make_score(low, "faithfulness", 0.2)
    high = make_trace(tenant, external_id="high-err", status="error")
    make_score(high, "faithfulness", 0.9)
    ok = make_trace(tenant, external_id="low-ok", status="ok")
    make_score(ok, "faithfulness", 0.1)


def _keys(dataset):
    return sorted(DatasetItem.objects.filter(dataset=dataset).values_list("key", flat=True))


def test_rows_built_on_the_page_promote_what_the_api_filter_promotes(tenant, client_for):
    _traces(tenant)
    url = project_url(tenant, "datasets-promote-matching")
    page = signed_in(tenant.owner)
    counted = page.get(url, ROWS)
    assert counted.status_code == 200
    body = counted.content.decode()
    assert 'id="matched-count">1<' in body
    assert 'id="filter-builder"' in body and 'id="promote-chips"' in body
    assert escape("faithfulness < 0.5") in body
    words = "faithfulness &lt; 0.5 and status is error"
    assert f'<strong id="promote-filter">{words}</strong>' in body

    built, posted = make_dataset(tenant, name="built"), make_dataset(tenant, name="posted")
    done = page.post(url, {**ROWS, "dataset": str(built.pk)})
    assert done.status_code == 302, done.content.decode()[:3000]
    api = client_for(tenant.owner).post(
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{posted.pk}/promote-bulk/",
        {"trace_filter": API_FILTER},
        format="json",
    )
    assert api.status_code in (200, 201), api.content
    assert _keys(built) == _keys(posted) == ["trace:low-err"]
    # The history says the filter in words, the same for both.
    messages = [d.versions.get().message for d in (built, posted)]
    words = "promote traces matching faithfulness < 0.5 and status is error"
    assert messages[0] == messages[1] == words

    # The page's own POST form carries the same filter as its query string.
    hidden = 'name="filter" value="score=faithfulness%3C0.5&amp;status=error"'
    assert hidden in page.get(url, ROWS).content.decode()


def test_a_refused_condition_shows_its_reason_beside_its_row_and_promotes_nothing(
    tenant, client_for
):
    _traces(tenant)
    dataset = make_dataset(tenant)
    url = project_url(tenant, "datasets-promote-matching")
    page = signed_in(tenant.owner)
    unknown = {"cf": ["score"], "ck": ["faithfullness"], "co": ["lt"], "cv": ["0.5"]}
    shown = page.get(url, unknown)
    body = shown.content.decode()
    assert 'id="matched-count"' not in body and 'id="promote-matching-form"' not in body
    assert "no score named “faithfullness” in this project" in body
    assert 'class="condition has-error"' in body
    refused = page.post(url, {**unknown, "dataset": str(dataset.pk)})
    assert refused.status_code == 422
    assert "no score named “faithfullness” in this project" in refused.content.decode()
    # The API refuses the same filter for the same reason.
    api = client_for(tenant.owner).post(
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{dataset.pk}/promote-bulk/",
        {"trace_filter": {"score": ["faithfullness<0.5"]}},
        format="json",
    )
    assert api.status_code == 400, api.content
    # A value the filter refuses, and a row without its value.
    bad = page.get(url, {"cf": ["status", "name"], "co": ["is", "contains"], "cv": ["bogus", ""]})
    text = bad.content.decode()
    assert bad.status_code == 400
    assert "Give a value." in text and "bogus" in text
    assert 'id="matched-count"' not in text
    assert not DatasetItem.objects.filter(dataset=dataset).exists()


def test_the_explorers_link_shows_its_filter_as_rows_and_chips(tenant):
    _traces(tenant)
    url = project_url(tenant, "datasets-promote-matching")
    shown = signed_in(tenant.owner).get(url + "?" + urlencode({"filter": "status=error"}))
    assert shown.status_code == 200
    fields = [c["row"].field for c in shown.context["conditions"]]
    assert fields == ["status"]
    assert 'id="matched-count">2<' in shown.content.decode()


@pytest.mark.parametrize("bad", ["a\x00b", "9" * 40, "x" * 9000, "-1e309"])
def test_hostile_row_values_answer_with_a_reason_never_a_5xx(tenant, bad):
    _traces(tenant)
    dataset = make_dataset(tenant)
    url = project_url(tenant, "datasets-promote-matching")
    page = signed_in(tenant.owner)
    rows = {
        "cf": ["name", "score", "duration", "time", bad],
        "ck": ["", bad, "", "", ""],
        "co": ["contains", "lt", "ge", "after", bad],
        "cv": [bad, bad, bad, bad, bad],
    }
    shown = page.get(url, rows)
    assert 400 <= shown.status_code < 500 or 'class="field-error"' in shown.content.decode()
    assert shown.status_code < 500
    posted = page.post(url, {**rows, "dataset": str(dataset.pk)})
    assert 400 <= posted.status_code < 500
    assert not DatasetItem.objects.filter(dataset=dataset).exists()
