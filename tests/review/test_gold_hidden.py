"""Gold items stay hidden, as a table: every read a reviewer has x gold vs production.

A live queue's items come from a trace filter (``bulk_filter``, with its filter as
detail); a calibration set mixes gold traces in at a third of the queue. The pool
reviewer then claims every item through the API, reads it, opens its review page,
submits, and reads their history. For each read, a gold item's representation must be
one a production item also has: the same keys and value types, the same source, detail
and shape, no gold marker; its id and created_at must not set it apart (ids interleave
with production ids, created_at is a production item's); and claims reach gold items
among production ones, not after them. Trace content differs per item (question N), so
pages are compared with numbers masked.

Out of scope here: the gold trace itself (its external id, start time and content are
the calibration set's, chosen by whoever built the set).
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, Assignment, QueueItem
from review.quality.services import calibration
from tests.page_clients import signed_in
from tests.review.helpers import add_reviewers, make_config, make_queue, make_trace

PRODUCTION, GOLD = 8, 4
# Item fields every item of a batch shares: compared by value (the rest by shape, and
# ids and created_at by the rules at the end).
SHARED = (
    "queue", "target_type", "source", "routing_rule", "signal", "source_detail", "priority",
    "required_skills", "language", "assignees", "status", "board_status", "audit_status",
    "live_leases", "submissions", "form", "revealed", "annotations", "scores", "disagreement",
)  # fmt: skip
GOLD_WORDS = re.compile(r"gold|calibrat", re.IGNORECASE)


def _shape(value: Any) -> Any:
    """Keys and value types, recursively: what tells two payloads apart structurally."""
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(_shape(v) for v in value))
    return type(value).__name__


def _item_facts(item: dict[str, Any]) -> tuple:
    """An item payload without its own identity: shape plus every shared value."""
    shared = {k: item[k] for k in SHARED if k in item}
    return (_shape(item), repr(sorted(shared.items())))


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two payloads differ (for failure messages)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{k}: only in one" for k in set(a) ^ set(b)]
        for k in set(a) & set(b):
            found += _diff(a[k], b[k], f"{path}.{k}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for n, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{n}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _text_diff(a: str, b: str) -> str:
    return "\n".join(
        difflib.unified_diff(a.splitlines(), b.splitlines(), "production", "gold", lineterm="")
    )


def _masked(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    html = re.sub(r'nonce="[^"]*"', "", html)
    # The lease's time left reads "30 minutes" or "29 minutes, 59 seconds" by timing.
    html = re.sub(r'<span id="lease-left">[^<]*</span>', "", html)
    # "Previous item" is the reviewer's own last review: hidden on whichever item was
    # claimed first, gold or not, so it says nothing of the item.
    html = re.sub(r'<a id="previous-item"[^>]*>', '<a id="previous-item">', html)
    return re.sub(r"\d+", "N", html)


@pytest.fixture
def world(tenant):
    config = make_config(tenant, name="accuracy")
    (reviewer,) = add_reviewers(tenant, 1)
    queue = make_queue(tenant, configs=[config], reviewers=[reviewer], name="live")
    now = timezone.now()
    owner = Actor(user=tenant.owner)
    # Every trace looks alike but for its number.
    gold_traces = [
        make_trace(
            tenant,
            external_id=f"t-{n}",
            name="call",
            input={"q": f"question {n}"},
            output={"a": f"answer {n}"},
            start_time=now - timedelta(seconds=30 + n),
        )
        for n in range(GOLD)
    ]
    for n in range(GOLD, GOLD + PRODUCTION):
        make_trace(
            tenant, external_id=f"t-{n}", name="call", input={"q": f"question {n}"},
            output={"a": f"answer {n}"}, start_time=now - timedelta(seconds=n - GOLD),
        )  # fmt: skip
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_items_add_from_filter(
            actor=owner,
            queue=queue,
            params={"start_time_from": (now - timedelta(seconds=20)).isoformat()},
        )
        cal = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name="gold", config_ids=[config.pk],
            min_accuracy=0.5,
        )  # fmt: skip
        for trace in gold_traces:
            calibration.gold_answer_set(
                actor=owner, calibration_set=cal, trace_id=trace.pk,
                values={str(config.pk): 1.0},
            )  # fmt: skip
        calibration.queue_calibration_set(
            actor=owner, queue=queue, calibration_set=cal, require_pass=False,
            gold_rate=GOLD / (GOLD + PRODUCTION),
        )  # fmt: skip
        assert calibration.queue_gold_mix(actor=owner, queue=queue) == GOLD
        items = {i.pk: i for i in QueueItem.objects.filter(queue=queue)}
    gold_ids = {pk for pk, i in items.items() if i.trace_id in {t.pk for t in gold_traces}}
    assert len(items) == GOLD + PRODUCTION and len(gold_ids) == GOLD
    return {
        "tenant": tenant,
        "queue": queue,
        "config": config,
        "reviewer": reviewer,
        "items": items,
        "gold": gold_ids,
    }


def _walk(world, client_for) -> dict[str, dict[int, Any]]:
    """Every reviewer-visible read, per item: read name -> item id -> representation."""
    tenant, queue, reviewer = world["tenant"], world["queue"], world["reviewer"]
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    api = client_for(reviewer)
    page = signed_in(reviewer)
    reads: dict[str, dict[int, Any]] = {
        name: {}
        for name in (
            "queue item list",
            "api claim",
            "api item detail",
            "api item history",
            "review page",
            "my history row",
            "my history item page",
        )
    }
    listed = api.get(f"{base}/queues/{queue.pk}/items/").json()
    for entry in listed.get("results", listed):
        reads["queue item list"][entry["id"]] = entry
    order = []
    while True:
        claimed = api.post(f"{base}/queues/{queue.pk}/claim/")
        if claimed.status_code == 204:
            break
        assert claimed.status_code == 200, claimed.content
        body = claimed.json()
        pk = body["item"]["id"]
        order.append(pk)
        reads["api claim"][pk] = body
        reads["api item detail"][pk] = api.get(f"{base}/queues/{queue.pk}/items/{pk}/").json()
        history = api.get(f"{base}/queues/{queue.pk}/items/{pk}/history/")
        reads["api item history"][pk] = history.json() if history.status_code == 200 else None
        assignment = body["assignment"]["id"]
        review_url = reverse(
            "review-item",
            kwargs={
                "org_slug": tenant.organization.slug,
                "project_slug": tenant.project.slug,
                "assignment_pk": assignment,
            },
        )
        reads["review page"][pk] = page.get(review_url).content.decode()
        with tenancy.tenant_scope(tenant.organization.pk):
            services.assignment_submit(
                actor=Actor(user=reviewer),
                assignment_id=assignment,
                values={str(world["config"].pk): 1.0},
            )
    history_html = page.get(
        reverse("review-history", kwargs={"org_slug": tenant.organization.slug})
    ).content.decode()
    # One row per item, each cut at its own end (the last row would carry the page's tail).
    rows = [row.split("</tr>")[0] for row in history_html.split("<tr>")[1:]]
    with tenancy.tenant_scope(tenant.organization.pk):
        annotations = {a.item_id: a.pk for a in Annotation.objects.filter(queue=queue)}
    for pk, annotation_pk in annotations.items():
        url = reverse(
            "review-history-item",
            kwargs={
                "org_slug": tenant.organization.slug,
                "project_slug": tenant.project.slug,
                "annotation_pk": annotation_pk,
            },
        )
        (row,) = [r for r in rows if f'href="{url}"' in r]
        reads["my history row"][pk] = row
        reads["my history item page"][pk] = page.get(url).content.decode()
    world["claim_order"] = order
    return reads


def test_a_gold_item_reads_like_a_production_item_everywhere(world, client_for):
    reads = _walk(world, client_for)
    gold, items = world["gold"], world["items"]
    production = set(items) - gold
    for name, per_item in reads.items():
        assert set(per_item) == set(items), name
        for pk in gold:
            text = str(per_item[pk])
            assert not GOLD_WORDS.search(text), (name, GOLD_WORDS.search(text))
        if name in {"queue item list"}:
            facts = {_item_facts(per_item[pk]) for pk in production}
            assert all(_item_facts(per_item[pk]) in facts for pk in gold), name
        elif name in {"api claim", "api item detail"}:

            def facts_of(body, name=name):
                item = body["item"] if name == "api claim" else body
                rest = {k: v for k, v in body.items() if k != "item"}
                return (_item_facts(item), _shape(item.get("target")), _shape(rest))

            known = {facts_of(per_item[pk]) for pk in production}
            for pk in gold:
                assert facts_of(per_item[pk]) in known, _diff(
                    per_item[pk], per_item[min(production)]
                )
        elif name == "api item history":

            def story(entries):
                if entries is None:
                    return None
                entries = entries.get("results", entries) if isinstance(entries, dict) else entries
                return tuple((e.get("type") or e.get("history_type"), _shape(e)) for e in entries)

            known = {story(per_item[pk]) for pk in production}
            assert all(story(per_item[pk]) in known for pk in gold), name
        else:
            known = {_masked(per_item[pk]) for pk in production}
            for pk in gold:
                assert _masked(per_item[pk]) in known, _text_diff(
                    _masked(per_item[min(production)]), _masked(per_item[pk])
                )

    # Identity and time: a gold item's created_at is a production item's, and its id
    # sits among production ids (not all after them).
    listed = reads["queue item list"]
    production_times = {listed[pk]["created_at"] for pk in production}
    assert {listed[pk]["created_at"] for pk in gold} <= production_times
    assert {listed[pk]["source"] for pk in items} == {"bulk_filter"}
    assert len({repr(listed[pk]["source_detail"]) for pk in items}) == 1
    assert listed[min(gold)]["source_detail"]["filter"]


def test_gold_is_interleaved_in_ids_and_claim_order(tenant, client_for):
    """Over repeated mixes, gold lands at every position: never always last, never
    always at the same places (the draw is not recomputable from ids)."""
    positions: set[int] = set()
    for _ in range(3):
        world_ = _fresh_world(tenant)
        with tenancy.tenant_scope(tenant.organization.pk):
            ordered = list(
                QueueItem.objects.filter(queue=world_["queue"]).order_by(
                    "-priority", "created_at", "id"
                )
            )
        ids = [i.pk for i in ordered]
        assert ids == sorted(ids)  # claim order is id order within the batch
        gold_positions = [n for n, i in enumerate(ordered) if i.pk in world_["gold"]]
        positions.update(gold_positions)
        with tenancy.tenant_scope(tenant.organization.pk):
            assert not Assignment.objects.filter(queue=world_["queue"]).exists()
    # 12 slots, 4 gold per mix, 3 mixes: gold was not confined to the last four.
    assert positions - set(range(PRODUCTION, PRODUCTION + GOLD))


_fresh_count = iter(range(1000))


def _fresh_world(tenant) -> dict[str, Any]:
    n = next(_fresh_count)
    config = make_config(tenant, name=f"q-{n}")
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer], name=f"mix {n}")
    owner = Actor(user=tenant.owner)
    tag = f"batch-{n}"
    golds = [make_trace(tenant, name="call", release=f"{tag}-gold") for _ in range(GOLD)]
    for _ in range(PRODUCTION):
        make_trace(tenant, name="call", release=tag)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_items_add_from_filter(actor=owner, queue=queue, params={"release": tag})
        cal = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name=f"gold {n}", config_ids=[config.pk],
            min_accuracy=0.5,
        )  # fmt: skip
        for trace in golds:
            calibration.gold_answer_set(
                actor=owner, calibration_set=cal, trace_id=trace.pk, values={str(config.pk): 1.0}
            )
        calibration.queue_calibration_set(
            actor=owner, queue=queue, calibration_set=cal, require_pass=False,
            gold_rate=GOLD / (GOLD + PRODUCTION),
        )  # fmt: skip
        assert calibration.queue_gold_mix(actor=owner, queue=queue) == GOLD
        gold = set(
            QueueItem.objects.filter(queue=queue, trace__in=golds).values_list("id", flat=True)
        )
    return {"queue": queue, "gold": gold}
