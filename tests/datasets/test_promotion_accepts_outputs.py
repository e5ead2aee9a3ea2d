"""A model's output becomes an expected output only when a person accepts it, for every
way of promoting: a trace, span or thread named directly (API and the promote page) and
"promote matching" (API and page). Without a choice the item has no expected output and
needs one; the API takes `expected_output_from: "output"`, the single promote form shows
the output in its field (submitting it as shown accepts it), the bulk form has an
unticked checkbox."""

from __future__ import annotations

import pytest

from datasets.models import DatasetItem, DatasetVersion
from hitl import tenancy
from tests.datasets.helpers import make_dataset
from tests.page_clients import project_url, signed_in
from tests.traces.ingest_helpers import post, span, trace

OUTPUT = {"answer": "20 g", "units": "g"}  # what the model said; maybe wrong
SPAN_OUTPUT = [{"role": "assistant", "content": "20 g"}]
LAST_TURN = {"a": "take it with food"}
SOURCES = {
    "trace": ({"trace_id": "call-1"}, OUTPUT),
    "span": ({"trace_id": "call-1", "span_id": "llm-1"}, SPAN_OUTPUT),
    "thread": ({"thread_id": "conv-1"}, LAST_TURN),
}


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


@pytest.fixture
def sent(tenant, client_for) -> None:
    """Two calls of one conversation, the first with an LLM span, through ingestion."""
    events = [
        trace("call-1", session_id="conv-1", input={"q": "dose?"}, output=OUTPUT,
              start_time="2026-01-01T00:00:00Z"),
        span("call-1", "llm-1", kind="llm", input=[{"role": "user", "content": "dose?"}],
             output=SPAN_OUTPUT),
        trace("call-2", session_id="conv-1", input={"q": "how?"}, output=LAST_TURN,
              start_time="2026-01-01T00:01:00Z"),
    ]  # fmt: skip
    response = post(client_for(key=tenant.key("ingest")), tenant, events)
    assert response.status_code == 200 and not response.json()["rejected"], response.content


def _rows(tenant, dataset) -> dict[str, DatasetItem]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return {row.key: row for row in DatasetItem.objects.filter(dataset=dataset)}


def _waiting(tenant, dataset) -> int:
    """The items the dataset's current version counts as needing an expected output."""
    with tenancy.tenant_scope(tenant.organization.pk):
        dataset.refresh_from_db()
        version = DatasetVersion.objects.get(dataset=dataset, number=dataset.current_version)
        return version.needs_expected_output


@pytest.mark.parametrize("kind", SOURCES)
def test_a_source_promoted_through_the_api_takes_its_output_only_when_asked(
    tenant, client_for, sent, kind
):
    source, output = SOURCES[kind]
    api = client_for(tenant.owner)

    def promote(name: str, **extra):
        dataset = make_dataset(tenant, name=f"{kind} {name}")
        url = f"{_base(tenant)}/datasets/{dataset.pk}/promote/"
        response = api.post(url, source | extra, format="json")
        assert response.status_code == 201, response.content
        return dataset, response.json()["item"]

    # No choice: nothing is written as expected, and the item says it needs one.
    dataset, item = promote("plain")
    assert item["expected_output"] is None and item["needs_expected_output"] is True
    assert item["input"] is not None  # the source itself is there
    read = api.get(f"{_base(tenant)}/datasets/{dataset.pk}/items/{item['item_id']}/").json()
    assert read["needs_expected_output"] is True
    assert _waiting(tenant, dataset) == 1
    # The explicit choice takes the output as it is (its JSON, not a text of it).
    dataset, item = promote("accepted", expected_output_from="output")
    assert item["expected_output"] == output and item["needs_expected_output"] is False
    assert _waiting(tenant, dataset) == 0
    _, item = promote("alias", accept_output=True)
    assert item["expected_output"] == output
    # One the person writes wins.
    _, item = promote("typed", overrides={"expected_output": "2 g"})
    assert item["expected_output"] == "2 g" and item["needs_expected_output"] is False


def test_expected_output_from_takes_only_the_output(tenant, client_for, sent):
    dataset = make_dataset(tenant)
    refused = client_for(tenant.owner).post(
        f"{_base(tenant)}/datasets/{dataset.pk}/promote/",
        {"trace_id": "call-1", "expected_output_from": "input"},
        format="json",
    )
    assert refused.status_code == 400
    assert "expected_output_from" in refused.json()["error"]["details"]
    assert _rows(tenant, dataset) == {}


def test_promote_matching_through_the_api_takes_outputs_only_when_asked(tenant, client_for, sent):
    api = client_for(tenant.owner)
    for choice, expected in (({}, None), ({"expected_output_from": "output"}, OUTPUT)):
        dataset = make_dataset(tenant, name=f"matching {bool(choice)}")
        report = api.post(
            f"{_base(tenant)}/datasets/{dataset.pk}/promote-bulk/",
            {"trace_filter": {"thread": "conv-1"}} | choice,
            format="json",
        )
        assert report.status_code == 200 and report.json()["created"] == 2, report.content
        rows = _rows(tenant, dataset)
        assert rows["trace:call-1"].expected_output == expected
        assert rows["trace:call-2"].expected_output == (LAST_TURN if choice else None)
        assert all(r.needs_expected_output is (not choice) for r in rows.values())
        assert _waiting(tenant, dataset) == (0 if choice else 2)


def test_the_promote_form_shows_the_output_for_the_person_to_accept(tenant, sent):
    make_dataset(tenant, name="first")  # the form needs a dataset to offer
    client = signed_in(tenant.owner)
    url = project_url(tenant, "datasets-promote")
    page = client.get(url, {"trace": "call-1", "span": "llm-1"}).content.decode()
    field = page.split('id="promote-expected"')[1].split("</textarea>")[0]
    assert "&quot;content&quot;: &quot;20 g&quot;" in field  # the span's output, prefilled
    shown = client.get(url, {"trace": "call-1"}).content.decode()
    shown = shown.split('id="promote-expected"')[1].split("</textarea>")[0]
    shown = shown.split(">", 1)[1].replace("&quot;", '"')
    assert '"answer": "20 g"' in shown

    def submit(name: str, expected: str) -> DatasetItem:
        dataset = make_dataset(tenant, name=name)
        body = {"trace": "call-1", "dataset": str(dataset.pk), "expected_output": expected}
        response = client.post(url, body)
        assert response.status_code == 302, response.content
        (row,) = _rows(tenant, dataset).values()
        return row

    # Submitted as shown (a browser sends the field's lines with CRLF): the output, as
    # it is, is accepted.
    row = submit("as shown", shown.replace("\n", "\r\n"))
    assert row.expected_output == OUTPUT and not row.needs_expected_output
    # Edited: the person's text.
    row = submit("edited", "20 g, twice a day")
    assert row.expected_output == "20 g, twice a day"
    # Cleared: none, and the item needs one.
    row = submit("cleared", "")
    assert row.expected_output is None and row.needs_expected_output
    detail = client.get(project_url(tenant, "datasets-detail", dataset_pk=row.dataset_id))
    assert 'id="needs-expected-count"' in detail.content.decode()
    # The item page leads back to the form, where the output waits to be accepted.
    item_page = client.get(
        project_url(tenant, "datasets-item", dataset_pk=row.dataset_id, dataset_item_pk=row.pk)
    ).content.decode()
    assert f'?trace=call-1&amp;dataset={row.dataset_id}" id="give-expected"' in item_page


def test_the_promote_matching_form_accepts_outputs_only_when_ticked(tenant, sent):
    make_dataset(tenant, name="first")  # the form needs a dataset to offer
    client = signed_in(tenant.owner)
    url = project_url(tenant, "datasets-promote-matching")
    page = client.get(url, {"filter": "thread=conv-1"}).content.decode()
    box = page.split('id="promote-accept"')[0].rsplit("<input", 1)[1]
    assert 'name="accept_output"' in page and "checked" not in box  # off by default
    for ticked in (False, True):
        dataset = make_dataset(tenant, name=f"matching page {ticked}")
        body = {"filter": "thread=conv-1", "dataset": str(dataset.pk)}
        response = client.post(url, body | ({"accept_output": "on"} if ticked else {}))
        assert response.status_code == 302, response.content
        rows = _rows(tenant, dataset)
        assert len(rows) == 2
        assert rows["trace:call-1"].expected_output == (OUTPUT if ticked else None)
        assert all(r.needs_expected_output is (not ticked) for r in rows.values())
