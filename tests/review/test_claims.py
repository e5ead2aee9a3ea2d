from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, PermissionDenied
from review import services, tasks
from review.models import Annotation, Assignment, ItemStatus, QueueItem
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue
from traces.models import Score


def _claim(tenant, user, queue):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.queue_claim_next(actor=Actor(user=user), queue=queue)


def _submit(tenant, user, assignment, values, **extra):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.assignment_submit(
            actor=Actor(user=user), assignment_id=assignment.pk, values=values, **extra
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_exceed_overlap_nor_repeat_an_item(tenant):
    reviewers = add_reviewers(tenant, 8)
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    items = add_traces(tenant, queue, 6)
    start = threading.Barrier(len(reviewers))
    errors: list[BaseException] = []

    def review_until_empty(user) -> None:
        try:
            with tenancy.tenant_scope(tenant.organization.pk):
                start.wait()
                while True:
                    assignment = services.queue_claim_next(actor=Actor(user=user), queue=queue)
                    if assignment is None:
                        return
                    services.assignment_submit(
                        actor=Actor(user=user),
                        assignment_id=assignment.pk,
                        values={str(config.pk): 0.5},
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=review_until_empty, args=(u,)) for u in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    with tenancy.tenant_scope(tenant.organization.pk):
        per_item = Counter(Assignment.objects.filter(queue=queue).values_list("item_id", flat=True))
        assert per_item == {item.pk: 2 for item in items}
        pairs = list(Assignment.objects.filter(queue=queue).values_list("item_id", "reviewer_id"))
        assert len(pairs) == len(set(pairs))
        for item in QueueItem.objects.filter(queue=queue):
            assert (item.submissions, item.live_leases, item.open_slots) == (2, 0, 0)
            assert item.status == ItemStatus.COMPLETE


def test_claim_order_is_priority_then_age_and_skips_what_you_reviewed(tenant):
    config = make_config(tenant)
    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    first, second, third = add_traces(tenant, queue, 3)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_items_update(
            actor=Actor(user=tenant.owner), queue=queue, item_ids=[third.pk], priority=5
        )
    a, b = reviewers
    assert _claim(tenant, a, queue).item_id == third.pk
    assert _claim(tenant, a, queue).item_id == first.pk
    assert _claim(tenant, b, queue).item_id == third.pk
    assert _claim(tenant, a, queue).item_id == second.pk
    assert _claim(tenant, a, queue) is None  # a has every item


def test_claiming_outside_the_pool_is_refused(tenant):
    queue = make_queue(tenant, reviewers=[tenant.reviewer])
    add_traces(tenant, queue, 1)
    with pytest.raises(PermissionDenied) as caught:
        _claim(tenant, tenant.admin, queue)
    assert caught.value.code == "not_in_pool"
    with pytest.raises(PermissionDenied), tenancy.tenant_scope(tenant.organization.pk):
        services.queue_claim_next(actor=Actor(api_key_id=1, source="api"), queue=queue)


def test_expired_lease_returns_the_item_and_cannot_be_submitted(tenant):
    config = make_config(tenant)
    late, other = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[late, other], lease_ttl_seconds=60)
    (item,) = add_traces(tenant, queue, 1)
    lease = _claim(tenant, late, queue)
    assert _claim(tenant, other, queue) is None  # overlap 1: held
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=lease.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    with pytest.raises(Conflict) as caught:
        _submit(tenant, late, lease, {str(config.pk): 1.0})
    assert caught.value.code == "lease_expired"
    # The claim itself expires overdue leases first.
    again = _claim(tenant, other, queue)
    assert again is not None and again.item_id == item.pk
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Assignment.objects.get(pk=lease.pk).state == "expired"
        item.refresh_from_db()
        assert (item.live_leases, item.open_slots) == (1, 0)


@pytest.mark.worker
def test_periodic_task_expires_leases_through_the_worker(celery_worker, tenant):
    queue = make_queue(tenant, lease_ttl_seconds=60)
    (item,) = add_traces(tenant, queue, 1)
    lease = _claim(tenant, tenant.reviewer, queue)
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=lease.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    tasks.expire_leases.delay()
    deadline = time.monotonic() + 30
    with tenancy.tenant_scope(tenant.organization.pk):
        while Assignment.objects.get(pk=lease.pk).state == "leased":
            assert time.monotonic() < deadline, "the worker did not expire the lease"
            time.sleep(0.1)
        item.refresh_from_db()
        assert (item.live_leases, item.open_slots, item.submissions) == (0, 1, 0)
        assert Assignment.objects.get(pk=lease.pk).state == "expired"
    # A rerun finds nothing more to do (idempotent).
    with tenancy.tenant_scope(tenant.organization.pk):
        assert services.leases_expire() == 0


def test_submitting_on_someone_elses_or_an_ended_lease_is_refused(tenant):
    config = make_config(tenant)
    owner_of_lease, intruder = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[owner_of_lease, intruder])
    add_traces(tenant, queue, 2)
    lease = _claim(tenant, owner_of_lease, queue)
    with pytest.raises(PermissionDenied) as caught:
        _submit(tenant, intruder, lease, {str(config.pk): 1.0})
    assert caught.value.code == "not_your_lease"
    _submit(tenant, owner_of_lease, lease, {str(config.pk): 1.0})
    with pytest.raises(Conflict) as caught:
        _submit(tenant, owner_of_lease, lease, {str(config.pk): 0.0})
    assert caught.value.code == "lease_submitted"
    with tenancy.tenant_scope(tenant.organization.pk):
        # The first submission stands.
        assert Annotation.objects.get(assignment_id=lease.pk).values == {str(config.pk): 1.0}


def test_answers_that_do_not_match_the_form_are_refused_and_the_lease_kept(tenant):
    numeric = make_config(tenant, required=True)
    label = make_config(
        tenant,
        data_type="categorical",
        options=[{"label": "yes", "value": 1}, {"label": "no", "value": 0}],
    )
    queue = make_queue(tenant, configs=[numeric, label])
    add_traces(tenant, queue, 1)
    lease = _claim(tenant, tenant.reviewer, queue)
    cases = [
        ({str(numeric.pk): 1.5}, str(numeric.pk), "between"),
        ({str(numeric.pk): 0.3}, str(numeric.pk), "multiple"),
        ({str(numeric.pk): 1.0, str(label.pk): "maybe"}, str(label.pk), "Unknown option"),
        ({str(label.pk): "yes"}, str(numeric.pk), "required"),
        ({str(numeric.pk): 1.0, "999999": 1}, "999999", "Not a question"),
    ]
    for values, key, reason in cases:
        with pytest.raises(DomainError) as caught:
            _submit(tenant, tenant.reviewer, lease, values)
        assert reason in caught.value.details["values"][key], caught.value.details
    annotation = _submit(
        tenant, tenant.reviewer, lease, {str(numeric.pk): 0.75, str(label.pk): "no"}
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        scores = {s.name: s for s in Score.objects.filter(metadata__annotation_id=annotation.pk)}
        assert scores[numeric.name].value == 0.75
        assert (scores[label.name].value, scores[label.name].label) == (0.0, "no")
        assert all(s.source == "human" and s.author == tenant.reviewer for s in scores.values())
        assert annotation.config_versions == {str(numeric.pk): 1, str(label.pk): 1}


def test_skip_needs_a_reason_and_skipped_items_go_to_others(tenant):
    skipper, other = add_reviewers(tenant, 2)
    queue = make_queue(tenant, reviewers=[skipper, other])
    (item,) = add_traces(tenant, queue, 1)
    lease = _claim(tenant, skipper, queue)
    with pytest.raises(DomainError), tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_skip(actor=Actor(user=skipper), assignment_id=lease.pk, reason=" ")
    with tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_skip(
            actor=Actor(user=skipper), assignment_id=lease.pk, reason="Not my language"
        )
    assert _claim(tenant, skipper, queue) is None
    assert _claim(tenant, other, queue).item_id == item.pk


def test_release_gives_the_slot_back(tenant):
    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(tenant, reviewers=reviewers)
    (item,) = add_traces(tenant, queue, 1)
    lease = _claim(tenant, reviewers[0], queue)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_release(actor=Actor(user=reviewers[0]), assignment_id=lease.pk)
        item.refresh_from_db()
        assert (item.live_leases, item.open_slots) == (0, 1)
    assert _claim(tenant, reviewers[1], queue).item_id == item.pk


def test_a_config_that_writes_the_expected_output_makes_no_score(tenant):
    verdict = make_config(tenant)
    better = make_config(tenant, data_type="text", writes_expected_output=True, step=None)
    queue = make_queue(tenant, configs=[verdict, better])
    add_traces(tenant, queue, 1)
    lease = _claim(tenant, tenant.reviewer, queue)
    annotation = _submit(
        tenant,
        tenant.reviewer,
        lease,
        {str(verdict.pk): 0.25, str(better.pk): "Take 5 mg, not 50 mg."},
    )
    assert annotation.expected_output == "Take 5 mg, not 50 mg."
    with tenancy.tenant_scope(tenant.organization.pk):
        names = set(
            Score.objects.filter(metadata__annotation_id=annotation.pk).values_list(
                "name", flat=True
            )
        )
    assert names == {verdict.name}
