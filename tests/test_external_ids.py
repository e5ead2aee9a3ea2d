"""A client names traces, spans and threads by the ids it sent at ingestion, everywhere:
it goes from ``GET traces/`` to datasets, queues and calibration gold and back using
only ids it read from the API. External ids may be numeric strings: one equal to another
trace's internal row id must not be confused with it."""

from __future__ import annotations

from typing import Any

import pytest

from hitl.tenancy import tenant_scope
from tests.datasets.helpers import make_dataset
from tests.traces.ingest_helpers import post, span, trace
from traces.models import Trace


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


@pytest.fixture
def owner(tenant, client_for):
    return client_for(tenant.owner)


@pytest.fixture
def sent(tenant, client_for) -> dict[str, str]:
    """Two traces: 'decoy', and one whose external id is the decoy's internal row id
    (a numeric string), with a span and a thread. Returns the ids a client sent."""
    client = client_for(key=tenant.key("ingest"))
    response = post(client, tenant, [trace("decoy", input={"q": "x"}, output={"a": "y"})])
    assert response.status_code == 200, response.content
    with tenant_scope(tenant.organization.pk):
        decoy_pk = Trace.objects.get(project=tenant.project, external_id="decoy").pk
    numeric = str(decoy_pk)
    events = [
        trace(numeric, session_id="conv-9", input={"q": "dose?"}, output={"a": "20 g"}),
        span(numeric, "s-llm", kind="llm", name="answer", input={"q": "dose?"},
             output={"a": "20 g"}),
    ]  # fmt: skip
    response = post(client, tenant, events)
    assert response.status_code == 200, response.content
    return {"trace": numeric, "span": "s-llm", "thread": "conv-9", "decoy": "decoy"}


def _read_trace_ids(owner, tenant) -> set[str]:
    response = owner.get(f"{_base(tenant)}/traces/")
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["trace_id"] for row in rows}


def _assert_readable(owner, tenant, ids: dict[str, Any]) -> None:
    """Each id the API answered opens its trace, span or thread."""
    base = _base(tenant)
    if ids.get("trace") is not None:
        response = owner.get(f"{base}/traces/{ids['trace']}/")
        assert response.status_code == 200, response.content
        assert response.json()["trace_id"] == ids["trace"]
    if ids.get("span") is not None:
        response = owner.get(f"{base}/traces/{ids['trace']}/spans/{ids['span']}/")
        assert response.status_code == 200, response.content
    if ids.get("thread") is not None:
        response = owner.get(f"{base}/threads/{ids['thread']}/")
        assert response.status_code == 200, response.content


# --- datasets ---------------------------------------------------------------------------------


def test_dataset_items_name_their_sources_by_the_ids_the_client_sent(tenant, owner, sent):
    assert sent["trace"] in _read_trace_ids(owner, tenant)
    dataset = make_dataset(tenant)
    promote = f"{_base(tenant)}/datasets/{dataset.pk}/promote/"
    for request in (
        {"trace_id": sent["trace"]},
        {"trace_id": sent["trace"], "span_id": sent["span"]},
        {"thread_id": sent["thread"]},
    ):
        response = owner.post(promote, request, format="json")
        assert response.status_code == 201, response.content

    listed = owner.get(f"{_base(tenant)}/datasets/{dataset.pk}/items/")
    assert listed.status_code == 200, listed.content
    items = {item["source_type"]: item for item in listed.json()["results"]}
    assert items["trace"]["source_trace_id"] == sent["trace"]
    assert items["trace"]["source_thread_id"] == sent["thread"]
    assert items["span"]["source_trace_id"] == sent["trace"]
    assert items["span"]["source_span_id"] == sent["span"]
    assert items["thread"]["source_thread_id"] == sent["thread"]
    assert items["thread"]["source_trace_id"] is None
    for item in items.values():
        _assert_readable(
            owner,
            tenant,
            {
                "trace": item["source_trace_id"],
                "span": item["source_span_id"],
                "thread": item["source_thread_id"],
            },
        )
        # One item read alone answers the same ids as the list.
        one = owner.get(f"{_base(tenant)}/datasets/{dataset.pk}/items/{item['item_id']}/")
        assert one.status_code == 200, one.content
        for field in ("source_trace_id", "source_span_id", "source_thread_id"):
            assert one.json()[field] == item[field]
    by_trace = owner.get(
        f"{_base(tenant)}/datasets/{dataset.pk}/items/", {"trace": sent["trace"]}
    ).json()["results"]
    assert sorted(i["source_type"] for i in by_trace) == ["span", "trace"]


# --- queues, annotations, comments ------------------------------------------------------------


def test_queue_items_and_annotations_take_and_answer_the_ids_the_client_sent(
    tenant, owner, client_for, sent
):
    from tests.review.helpers import make_config, make_queue

    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    items_url = f"{_base(tenant)}/queues/{queue.pk}/items/"
    added = {}
    for target, request in (
        ("trace", {"trace_id": sent["trace"]}),
        ("span", {"trace_id": sent["trace"], "span_id": sent["span"]}),
        ("thread", {"thread_id": sent["thread"]}),
    ):
        response = owner.post(items_url, request, format="json")
        assert response.status_code == 201, response.content
        added[target] = response.json()
        assert response.json()["target_type"] == target
    # The numeric id names the trace the client sent, not the row with that id.
    assert added["trace"]["trace"] == sent["trace"]
    assert added["span"]["trace"] == sent["trace"]
    assert added["span"]["span"] == sent["span"]
    assert added["thread"]["thread"] == sent["thread"]
    assert added["thread"]["trace"] is None

    listed = owner.get(items_url).json()["results"]
    assert {(i["target_type"], i["trace"], i["span"], i["thread"]) for i in listed} == {
        ("trace", sent["trace"], None, None),
        ("span", sent["trace"], sent["span"], None),
        ("thread", None, None, sent["thread"]),
    }
    for item in listed:
        _assert_readable(owner, tenant, item)

    # An id nobody sent, or a span without its trace, is refused and named.
    unknown = owner.post(items_url, {"trace_id": "never-sent"}, format="json")
    assert unknown.status_code == 400 and "trace_id" in unknown.json()["error"]["details"]
    alone = owner.post(items_url, {"span_id": sent["span"]}, format="json")
    assert alone.status_code == 400 and "trace_id" in alone.json()["error"]["details"]
    again = owner.post(items_url, {"trace_id": sent["trace"]}, format="json")
    assert again.status_code == 409

    # A reviewer's annotation names the same ids.
    reviewer = client_for(tenant.reviewer)
    claim = reviewer.post(f"{_base(tenant)}/queues/{queue.pk}/claim/")
    assert claim.status_code == 200, claim.content
    claimed = claim.json()["item"]
    submitted = reviewer.post(
        f"{_base(tenant)}/assignments/{claim.json()['assignment']['id']}/submit/",
        {"values": {str(config.pk): 1.0}},
        format="json",
    )
    assert submitted.status_code == 201, submitted.content
    annotations = owner.get(f"{_base(tenant)}/annotations/").json()["results"]
    assert len(annotations) == 1
    annotation = annotations[0]
    assert (annotation["trace"], annotation["span"], annotation["thread"]) == (
        claimed["trace"],
        claimed["span"],
        claimed["thread"],
    )
    _assert_readable(owner, tenant, annotation)
    # Filtered by the id the client sent.
    by_trace = owner.get(f"{_base(tenant)}/annotations/", {"trace": annotation["trace"] or "x"})
    assert by_trace.status_code == 200, by_trace.content
    expected = [annotation["id"]] if annotation["trace"] else []
    assert [a["id"] for a in by_trace.json()["results"]] == expected


def test_comments_take_and_answer_the_ids_the_client_sent(tenant, client_for, sent):
    reviewer = client_for(tenant.reviewer)
    url = f"{_base(tenant)}/comments/"
    on_trace = reviewer.post(url, {"body": "wrong dose", "trace_id": sent["trace"]}, format="json")
    assert on_trace.status_code == 201, on_trace.content
    assert (on_trace.json()["trace"], on_trace.json()["span"]) == (sent["trace"], None)
    on_span = reviewer.post(
        url,
        {"body": "retriever missed it", "trace_id": sent["trace"], "span_id": sent["span"]},
        format="json",
    )
    assert on_span.status_code == 201, on_span.content
    assert (on_span.json()["trace"], on_span.json()["span"]) == (sent["trace"], sent["span"])
    listed = reviewer.get(url).json()["results"]
    assert sorted((c["trace"], c["span"] or "") for c in listed) == sorted(
        [(sent["trace"], ""), (sent["trace"], sent["span"])]
    )
    for comment in listed:
        _assert_readable(reviewer, tenant, {"trace": comment["trace"], "span": comment["span"]})
    on_the_span = reviewer.get(url, {"trace": sent["trace"], "span": sent["span"]}).json()
    assert [c["id"] for c in on_the_span["results"]] == [on_span.json()["id"]]
    assert len(reviewer.get(url, {"trace": sent["trace"]}).json()["results"]) == 2
    assert reviewer.get(url, {"trace": sent["decoy"]}).json()["results"] == []


# --- calibration gold -------------------------------------------------------------------------


def test_calibration_gold_takes_and_answers_the_ids_the_client_sent(tenant, owner, sent):
    from tests.review.helpers import make_config

    config = make_config(tenant)
    created = owner.post(
        f"{_base(tenant)}/calibration-sets/",
        {"name": "onboarding", "config_ids": [config.pk]},
        format="json",
    )
    assert created.status_code == 201, created.content
    url = f"{_base(tenant)}/calibration-sets/{created.json()['id']}/"
    for trace_id in (sent["trace"], sent["decoy"]):
        gold = owner.post(
            f"{url}gold/", {"trace_id": trace_id, "values": {str(config.pk): 1.0}}, format="json"
        )
        assert gold.status_code == 200, gold.content
        assert gold.json()["trace"] == trace_id
    listed = sorted(g["trace"] for g in owner.get(url).json()["gold_answers"])
    assert listed == sorted([sent["trace"], sent["decoy"]])
    for trace_id in listed:
        _assert_readable(owner, tenant, {"trace": trace_id})
    unknown = owner.post(
        f"{url}gold/", {"trace_id": "never-sent", "values": {str(config.pk): 1.0}}, format="json"
    )
    assert unknown.status_code == 400 and "trace_id" in unknown.json()["error"]["details"]

    # Removed by the id the list answers: the numeric one is that trace, not the row.
    assert owner.delete(f"{url}gold/{sent['trace']}/").status_code == 204
    assert [g["trace"] for g in owner.get(url).json()["gold_answers"]] == [sent["decoy"]]
    assert owner.delete(f"{url}gold/{sent['trace']}/").status_code == 404
