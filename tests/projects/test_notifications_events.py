"""The review and datasets events of the catalogue: who gets an ``review.item.assigned``
(one per reviewer and push, none per claim), a backlog crossing its threshold once,
a queue's completion once, a promotion once; each small, linked, in its cause's
transaction."""

from __future__ import annotations

import json

import pytest

from datasets import services as dataset_services
from hitl import tenancy
from hitl.audit import Actor
from projects.models import Event, QueueAlert
from projects.notifications import catalogue
from projects.notifications.catalogue import MAX_PAYLOAD_BYTES
from review import services as review_services
from tests.datasets.helpers import make_dataset
from tests.factories import Tenant
from tests.projects.test_notifications import make_destination
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue, make_trace


@pytest.fixture(autouse=True)
def subscribed(settings, tenant):
    """A destination on loopback receiving every event type (nothing is sent here: the
    tests read the events written)."""
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1:9"]
    make_destination(tenant, "http://127.0.0.1:9/hooks", event_types=tuple(catalogue.EVENT_TYPES))


def events(tenant: Tenant, event_type: str) -> list[dict]:
    with tenancy.tenant_scope(tenant.organization.pk):
        rows = Event.objects.filter(type=event_type).order_by("id")
        found = [row.payload for row in rows]
    for payload in found:
        assert len(json.dumps(payload).encode()) < MAX_PAYLOAD_BYTES
        assert payload["summary"] and payload["url"].startswith("http")
        assert payload["organization_id"] == tenant.organization.pk
    return found


def owner(tenant: Tenant) -> Actor:
    return Actor(user=tenant.owner)


def test_round_robin_pushes_announce_one_event_per_reviewer_and_push(tenant):
    second, third = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, reviewers=[tenant.reviewer, second, third], assignment_strategy="round_robin"
    )
    (item,) = add_traces(tenant, queue, 1)
    (first,) = events(tenant, catalogue.ITEM_ASSIGNED)
    assert first["assignee"] == {"id": item.assignees[0], "email": first["assignee"]["email"]}
    assert first["item_ids"] == [item.pk] and first["count"] == 1
    assert first["queue"] == {"id": queue.pk, "name": queue.name}
    assert f"/queues/{queue.pk}/" in first["url"]

    with tenancy.tenant_scope(tenant.organization.pk):
        for _ in range(30):
            make_trace(tenant)
        result = review_services.queue_items_add_from_filter(
            actor=owner(tenant), queue=queue, params={}
        )
    assert result["added"] == 30
    bulk = events(tenant, catalogue.ITEM_ASSIGNED)[1:]
    # 30 items over 3 reviewers: three events, not thirty.
    assert len(bulk) == 3
    assert sorted(e["assignee"]["id"] for e in bulk) == sorted(
        u.pk for u in (tenant.reviewer, second, third)
    )
    assert sum(e["count"] for e in bulk) == 30


def test_claims_from_a_pull_queue_announce_nothing_and_reassigning_announces_the_new(tenant):
    second = add_reviewers(tenant, 1)[0]
    queue = make_queue(tenant, reviewers=[tenant.reviewer, second])
    items = add_traces(tenant, queue, 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    assert events(tenant, catalogue.ITEM_ASSIGNED) == []
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.queue_items_update(
            actor=owner(tenant), queue=queue, item_ids=[i.pk for i in items], assignees=[second.pk]
        )
        # Again with the same assignee: nobody is newly assigned.
        review_services.queue_items_update(
            actor=owner(tenant), queue=queue, item_ids=[i.pk for i in items], assignees=[second.pk]
        )
    (event,) = events(tenant, catalogue.ITEM_ASSIGNED)
    assert event["assignee"]["id"] == second.pk
    assert event["item_ids"] == sorted(i.pk for i in items)


def test_backlog_is_announced_when_crossing_not_on_every_item(tenant):
    queue = make_queue(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        QueueAlert.objects.create(project=tenant.project, queue_id=queue.pk, backlog_threshold=3)
    items = add_traces(tenant, queue, 5)
    (event,) = events(tenant, catalogue.QUEUE_BACKLOG)
    assert event["waiting"] == 3 and event["threshold"] == 3
    # Below the threshold again, then over it: a second crossing.
    with tenancy.tenant_scope(tenant.organization.pk):
        for item in items[:4]:
            review_services.queue_item_remove(actor=owner(tenant), item=item)
    add_traces(tenant, queue, 1)
    assert len(events(tenant, catalogue.QUEUE_BACKLOG)) == 1
    add_traces(tenant, queue, 1)
    assert [e["waiting"] for e in events(tenant, catalogue.QUEUE_BACKLOG)] == [3, 3]


def test_a_queue_without_a_threshold_announces_no_backlog(tenant):
    queue = make_queue(tenant)
    add_traces(tenant, queue, 4)
    assert events(tenant, catalogue.QUEUE_BACKLOG) == []


def _review_all(tenant: Tenant, queue, config) -> None:
    with tenancy.tenant_scope(tenant.organization.pk):
        while True:
            assignment = review_services.queue_claim_next(
                actor=Actor(user=tenant.reviewer), queue=queue
            )
            if assignment is None:
                return
            review_services.assignment_submit(
                actor=Actor(user=tenant.reviewer),
                assignment_id=assignment.pk,
                values={str(config.pk): 0.5},
            )


def test_queue_completed_once_when_its_last_item_is_reviewed(tenant):
    config = make_config(tenant, name="accuracy")
    queue = make_queue(tenant, configs=[config])
    add_traces(tenant, queue, 3)
    _review_all(tenant, queue, config)
    (event,) = events(tenant, catalogue.QUEUE_COMPLETED)
    assert event["items"] == 3 and event["queue"]["id"] == queue.pk
    assert len(events(tenant, catalogue.ITEM_COMPLETED)) == 3
    # New work, reviewed: complete again.
    add_traces(tenant, queue, 1)
    _review_all(tenant, queue, config)
    assert [e["items"] for e in events(tenant, catalogue.QUEUE_COMPLETED)] == [3, 4]


def test_promotion_announces_one_event_per_promotion(tenant):
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        trace = make_trace(tenant)
        for _ in range(4):
            make_trace(tenant)
        dataset_services.dataset_promote(
            actor=owner(tenant), dataset=dataset, trace_id=trace.external_id
        )
        # Already there: nothing changes, nothing is announced.
        dataset_services.dataset_promote(
            actor=owner(tenant), dataset=dataset, trace_id=trace.external_id
        )
        dataset_services.dataset_promote_from_trace_filter(
            actor=owner(tenant), dataset=dataset, params={}
        )
    single, bulk = events(tenant, catalogue.DATASET_ITEM_PROMOTED)
    assert single["item"]["key"] == f"trace:{trace.external_id}"
    assert single["dataset"] == {"id": dataset.pk, "name": dataset.name}
    assert bulk["item"] is None and bulk["created"] == 4


def test_calibration_and_alignment_types_are_in_the_catalogue():
    for name in (
        "review.calibration.passed",
        "review.calibration.failed",
        "review.agreement.alert",
        "review.alignment.alert",
    ):
        assert name in catalogue.EVENT_TYPES


def test_queue_alerts_over_the_api(tenant, client_for):
    base = f"/api/orgs/{tenant.organization.slug}/queue-alerts/"
    queue = make_queue(tenant)
    body = {"project_id": tenant.project.pk, "queue_id": queue.pk, "backlog_threshold": 2}
    assert client_for(tenant.reviewer).post(base, body, format="json").status_code == 403
    api = client_for(tenant.owner)
    created = api.post(base, body, format="json")
    assert created.status_code == 201, created.content
    replaced = api.post(base, {**body, "backlog_threshold": 1}, format="json").json()
    assert replaced["id"] == created.json()["id"] and replaced["backlog_threshold"] == 1
    assert api.post(base, {**body, "backlog_threshold": 0}, format="json").status_code == 400
    add_traces(tenant, queue, 2)
    assert [e["waiting"] for e in events(tenant, catalogue.QUEUE_BACKLOG)] == [1]
    listed = api.get(base, {"queue": queue.pk}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["backlog_threshold"] for r in rows] == [1]
    assert api.delete(f"{base}{rows[0]['id']}/").status_code == 204
