from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import selectors, services
from tests.review.helpers import (
    add_reviewers,
    add_traces,
    make_config,
    make_queue,
    make_span,
    make_trace,
    membership_of,
)


def test_trace_attachments_are_plain_dicts_in_constant_queries(tenant, django_assert_num_queries):
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    trace = make_trace(tenant)
    spans = [make_span(trace) for _ in range(5)]
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, span_id=spans[2].pk)
        for _ in range(2):
            lease = services.queue_claim_next(actor=reviewer, queue=queue)
            services.assignment_submit(
                actor=reviewer, assignment_id=lease.pk, values={str(config.pk): 1.0}
            )
        for span in spans:
            services.comment_create(
                actor=reviewer, project=tenant.project, body="look", span_id=span.pk
            )
        services.comment_create(actor=reviewer, project=tenant.project, body="t", trace_id=trace.pk)
        with django_assert_num_queries(2):
            attachments = selectors.trace_attachments(trace=trace)
    assert len(attachments["comments"]) == 6
    assert sorted((a["target_type"], a["span_id"]) for a in attachments["annotations"]) == [
        ("span", spans[2].pk),
        ("trace", None),
    ]
    import json

    json.dumps(attachments)  # JSON-able as it is


def test_round_robin_pushes_items_to_reviewers_in_turn(tenant):
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, reviewers=reviewers, assignment_strategy="round_robin")
    items = add_traces(tenant, queue, 3)
    assert [i.assignees for i in items] == [[r.pk] for r in reviewers]
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=reviewers[1]), queue=queue)
        assert lease.item_id == items[1].pk
        assert services.queue_claim_next(actor=Actor(user=reviewers[1]), queue=queue) is None
        services.assignment_release(actor=Actor(user=reviewers[1]), assignment_id=lease.pk)
        items[1].refresh_from_db()
        # Given back: pushed on to the next pool member who has not had it.
        assert items[1].assignees == [reviewers[2].pk]
        assert (items[1].live_leases, items[1].open_slots) == (0, 1)
        board = selectors.queue_board(queue=queue)
        counts = {a["reviewer_id"]: (a["pending"], a["released"]) for a in board["assignees"]}
        assert counts == {
            reviewers[0].pk: (1, 0),
            reviewers[1].pk: (0, 1),
            reviewers[2].pk: (2, 0),
        }


def test_skills_strategy_matches_items_to_skills_and_languages(tenant):
    clinician, lawyer = add_reviewers(tenant, 2)
    queue = make_queue(tenant, reviewers=[clinician, lawyer], assignment_strategy="skills")
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_update(
            actor=Actor(user=tenant.owner),
            queue=queue,
            reviewers=[
                {"membership_id": membership_of(tenant, clinician).pk, "skills": ["medical"],
                 "languages": ["de"]},
                {"membership_id": membership_of(tenant, lawyer).pk, "skills": ["legal"]},
            ],
        )  # fmt: skip
        owner = Actor(user=tenant.owner)
        medical = services.queue_item_add(
            actor=owner, queue=queue, trace_id=make_trace(tenant).pk,
            required_skills=["medical"], language="de",
        )  # fmt: skip
        legal = services.queue_item_add(
            actor=owner, queue=queue, trace_id=make_trace(tenant).pk, required_skills=["legal"]
        )
        assert services.queue_claim_next(actor=Actor(user=lawyer), queue=queue).item_id == legal.pk
        assert services.queue_claim_next(actor=Actor(user=lawyer), queue=queue) is None
        got = services.queue_claim_next(actor=Actor(user=clinician), queue=queue)
        assert got.item_id == medical.pk


def test_manual_strategy_only_hands_out_assigned_items(tenant):
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, reviewers=[first, second], assignment_strategy="manual")
    (item,) = add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert services.queue_claim_next(actor=Actor(user=first), queue=queue) is None
        services.queue_items_update(
            actor=Actor(user=tenant.owner), queue=queue, item_ids=[item.pk], assignees=[second.pk]
        )
        assert services.queue_claim_next(actor=Actor(user=first), queue=queue) is None
        assert services.queue_claim_next(actor=Actor(user=second), queue=queue).item_id == item.pk


def test_trace_attachments_apply_blind_mode_for_a_reviewer_holding_a_lease(tenant):
    config = make_config(tenant)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[first, second], overlap=2)
    (item,) = add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=first), queue=queue)
        services.assignment_submit(
            actor=Actor(user=first), assignment_id=lease.pk, values={str(config.pk): 1.0}
        )
        services.queue_claim_next(actor=Actor(user=second), queue=queue)
        trace = item.trace
        assert selectors.trace_attachments(trace=trace, viewer=second)["annotations"] == []
        assert (
            len(selectors.trace_attachments(trace=trace, viewer=tenant.owner)["annotations"]) == 1
        )
        assert len(selectors.trace_attachments(trace=trace)["annotations"]) == 1
