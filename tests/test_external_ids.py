"""A client names traces, spans and threads by the ids it sent at ingestion, everywhere:
it goes from ``GET traces/`` to datasets, queues and calibration gold and back using
only ids it read from the API. External ids may be numeric strings: one equal to another
trace's internal row id must not be confused with it."""

from __future__ import annotations

import json
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


# --- every API read -----------------------------------------------------------------------------

TARGETS = ("trace", "span", "thread")
ROWS_PER_ROUTE = 8  # a detail route is read for this many of its model's rows


def _populate_every_app(tenant) -> Any:
    """Every app's rows for the route walkers (tests/isolation.py), merged."""
    import importlib

    from tests.isolation import IsolationData

    merged = IsolationData()
    for package in ("projects", "traces", "review", "datasets"):
        data = importlib.import_module(f"tests.{package}.isolation").populate(tenant)
        merged.kwargs.update(data.kwargs)
    return merged


def _targets_of_every_kind(tenant, owner, client_for, sent) -> None:
    """Through the API: a span and a thread in a queue, reviewed, commented on, scored
    and promoted, so item details, claims, annotations and dataset items name each kind.
    """
    from tests.review.helpers import make_config, make_queue

    base = _base(tenant)
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config], overlap=1)
    for request in (
        {"trace_id": sent["trace"], "span_id": sent["span"]},
        {"thread_id": sent["thread"]},
    ):
        response = owner.post(f"{base}/queues/{queue.pk}/items/", request, format="json")
        assert response.status_code == 201, response.content
    reviewer = client_for(tenant.reviewer)
    for _ in range(2):
        claim = reviewer.post(f"{base}/queues/{queue.pk}/claim/")
        assert claim.status_code == 200, claim.content
        _assert_names_no_row(claim.json(), "POST claim")
        submitted = reviewer.post(
            f"{base}/assignments/{claim.json()['assignment']['id']}/submit/",
            {"values": {str(config.pk): 1.0}, "expected_output": "20 g"},
            format="json",
        )
        assert submitted.status_code == 201, submitted.content
    comment = {
        "body": f"dose @{tenant.owner.email}",  # a mention: a webhook event names the span
        "trace_id": sent["trace"],
        "span_id": sent["span"],
    }
    assert reviewer.post(f"{base}/comments/", comment, format="json").status_code == 201
    ingest = client_for(key=tenant.key("ingest"))
    scored = post(
        ingest,
        tenant,
        [
            {"type": "score", "body": {"id": "sc-span", "trace_id": sent["trace"],
             "span_id": sent["span"], "name": "judge", "value": 1.0, "source": "llm_judge"}},
            {"type": "score", "body": {"id": "sc-thread", "thread_id": sent["thread"],
             "name": "judge", "value": 0.0, "source": "llm_judge"}},
        ],
    )  # fmt: skip
    assert scored.status_code == 200, scored.content
    dataset = make_dataset(tenant, name="every kind")
    for request in (
        {"trace_id": sent["trace"], "span_id": sent["span"]},
        {"thread_id": sent["thread"]},
    ):
        response = owner.post(f"{base}/datasets/{dataset.pk}/promote/", request, format="json")
        assert response.status_code == 201, response.content


def _known_external_ids(tenant) -> dict[str, set[str]]:
    from traces.models import Span, Thread

    with tenant_scope(tenant.organization.pk):
        return {
            "trace": set(Trace.objects.values_list("external_id", flat=True)),
            "span": set(Span.objects.values_list("external_id", flat=True)),
            "thread": set(Thread.objects.values_list("external_id", flat=True)),
        }


def _offenders(value: Any, where: str, known: dict[str, set[str]] | None = None) -> list[str]:
    """Fields naming a trace, span or thread (``*trace_id``, ``*span_id``,
    ``*thread_id``, their lists, or a nested ``trace``/``span``/``thread``'s ``id``)
    whose value is a number, or (with ``known``) no id a client sent."""
    found: list[str] = []

    def check(kind: str, named: Any, path: str) -> None:
        values = named if isinstance(named, list) else [named]
        for one in values:
            if one is None or one == "":  # none named
                continue
            if not isinstance(one, str):
                found.append(f"{path} = {one!r} (a row id, not the {kind}'s id)")
            elif known is not None and one not in known[kind]:
                found.append(f"{path} = {one!r} (no {kind} was sent with this id)")

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for index, child in enumerate(node[:50]):
                walk(child, f"{path}[{index}]")
            return
        if not isinstance(node, dict):
            return
        for key, child in node.items():
            here = f"{path}.{key}"
            name = str(key).removesuffix("s") if str(key).endswith("_ids") else str(key)
            kind = next((k for k in TARGETS if name.endswith(f"{k}_id")), None)
            if kind is not None:
                check(kind, child, here)
            elif key in TARGETS:
                if isinstance(child, dict):
                    check(key, child.get("id"), f"{here}.id")
                else:
                    check(key, child, here)
            walk(child, here)

    walk(value, where)
    return found


def _assert_names_no_row(body: Any, where: str) -> None:
    offenders = _offenders(body, where)
    assert not offenders, "\n".join(offenders)


def test_no_api_read_names_a_trace_span_or_thread_by_a_row_id(
    tenant, owner, client_for, sent, settings
):
    """Every API GET route the route walkers can fill, read as the owner for each row
    its URL can name, and every webhook event: no field naming a trace, span or thread
    carries a row id, and every such id is one a client sent. A new endpoint or event
    is covered without an edit."""
    from projects.models import Event
    from projects.notifications import catalogue
    from tests.projects.test_notifications import make_destination
    from tests.test_tenant_isolation import RouteFiller, iter_routes

    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1:9"]  # events are written, not sent
    make_destination(tenant, "http://127.0.0.1:9/hooks", event_types=tuple(catalogue.EVENT_TYPES))
    _targets_of_every_kind(tenant, owner, client_for, sent)
    filler = RouteFiller(tenant, _populate_every_app(tenant))
    known = _known_external_ids(tenant)
    offenders: list[str] = []
    with tenant_scope(tenant.organization.pk):
        events = list(Event.objects.values_list("type", "payload"))
    for event_type, payload in events:
        offenders += _offenders(payload, f"event {event_type}", known)
    named = {t for t, p in events if (p.get("item") or {}).get("span_id") or "comment" in p}
    assert {"review.item.completed", "review.comment.mentioned"} <= named, named
    read = set()
    for route in iter_routes():
        if not route.template.startswith("api/orgs/"):
            continue
        try:
            urls = _urls_for_rows(filler, route)
        except LookupError:
            continue  # the tenant isolation walker names any route nobody can fill
        for url in urls:
            response = owner.get(url, HTTP_ACCEPT="application/json")
            assert response.status_code < 500, f"GET {url}: {response.status_code}"
            kind = response.get("Content-Type", "")
            if response.status_code != 200 or "json" not in kind:
                continue
            read.add(route.template)
            if kind.startswith("application/jsonl"):  # an export: one document a line
                bodies = [json.loads(line) for line in response.text.splitlines() if line]
            else:
                bodies = [response.json()]
            for body in bodies:
                offenders += _offenders(body, f"GET {url}", known)
    assert not offenders, "\n".join(offenders)
    # Guard against a walk that reads nothing: the item detail and trace reads are in.
    assert len(read) >= 40, sorted(read)
    assert any("/queues/<queue_pk>/items/<pk>/" in t for t in read), sorted(read)


def _urls_for_rows(filler: Any, route: Any) -> list[str]:
    """The route's URL for each of its model's rows (up to ROWS_PER_ROUTE) when its
    lookup names one, each with its parents (``queue_pk``: the row's queue), else its
    one URL."""
    view_class = route.view_class
    model = getattr(view_class, "scoped_model", None)
    lookup = (view_class.lookup_url_kwarg or view_class.lookup_field) if model else None
    if lookup is None or lookup not in route.kwarg_names:
        return [filler.url(route)]
    with tenant_scope(filler.tenant.organization.pk):
        rows = list(model.objects.order_by("pk")[:ROWS_PER_ROUTE])
    urls = []
    for row in rows:
        overrides = {lookup: getattr(row, view_class.lookup_field)}
        for name in route.kwarg_names:
            parent = name.removesuffix("_pk")
            if name != lookup and name.endswith("_pk") and hasattr(row, f"{parent}_id"):
                overrides[name] = getattr(row, f"{parent}_id")
        urls.append(filler.url(route, overrides))
    return urls or [filler.url(route)]
