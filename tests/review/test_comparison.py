"""Comparison items in a queue: the order shown per lease, stored with the answer and
undone; overlap and adjudication; N-way answers; items from traces; the report's
counts and the preference pairs export."""

from __future__ import annotations

import json

import pytest

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError
from review.comparison import report, selectors, services
from review.comparison.models import ComparisonOutput, Preference
from review.models import Annotation, Assignment, ItemStatus
from tests.review.comparison_helpers import (
    claim,
    enqueue,
    item_of,
    make_comparison,
    make_comparison_queue,
    submit,
)
from tests.review.helpers import add_reviewers, make_trace

pytestmark = pytest.mark.django_db


def test_the_order_shown_is_drawn_per_lease_stored_and_undone(tenant):
    queue = make_comparison_queue(tenant)
    comparisons = [make_comparison(tenant) for _ in range(10)]
    enqueue(tenant, queue, comparisons)
    left_first: list[str] = []
    while (lease := claim(tenant, tenant.reviewer, queue)) is not None:
        with tenancy.tenant_scope(tenant.organization.pk):
            lease = Assignment.objects.select_related("item").get(pk=lease.pk)
            view = selectors.comparison_for_lease(lease)
            # The same lease shows the same order every time it is read.
            again = selectors.comparison_for_lease(lease)
        assert [o.output_id for o in view.outputs] == [o.output_id for o in again.outputs]
        left_first.append(view.outputs[0].label)
        # This reviewer always picks the left output.
        (preference,) = submit(tenant, tenant.reviewer, lease, {"helpfulness": {"choice": "a"}})
        assert preference.shown_order == [o.output_id for o in view.outputs]
        assert preference.answer_shown == {"choice": "a", "strength": 1}
        assert preference.winner_id == view.outputs[0].output_id
    # The order was randomized: both systems were shown on the left ...
    assert set(left_first) == {"baseline", "candidate"}
    with tenancy.tenant_scope(tenant.organization.pk):
        winners = list(
            Preference.objects.filter(queue=queue).values_list("winner__label", flat=True)
        )
        result = report.comparison_report(queue, resamples=50)
    # ... so answering "left" every time spreads the wins over both systems once undone,
    assert sorted(winners) == sorted(left_first)
    (figures,) = result["criteria"]
    (pair,) = figures["pairs"]
    assert pair["a_wins"] == left_first.count("baseline")
    assert pair["b_wins"] == left_first.count("candidate")
    # ... and the position figure shows the reviewer's bias in full.
    assert figures["position"]["pairwise"]["rate"] == 1.0
    assert figures["position"]["pairwise"]["decisive"] == 10


def test_a_right_hand_answer_names_the_output_shown_right(tenant):
    queue = make_comparison_queue(tenant, allow_strength=True)
    enqueue(tenant, queue, [make_comparison(tenant)])
    lease = claim(tenant, tenant.reviewer, queue)
    (preference,) = submit(
        tenant, tenant.reviewer, lease, {"helpfulness": {"choice": "b", "strength": 2}}
    )
    assert preference.winner_id == preference.shown_order[1]
    assert preference.ranking == [preference.shown_order[1], preference.shown_order[0]]
    assert preference.strength == 2
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation = Annotation.objects.get(item_id=lease.item_id)
        assert preference.annotation_id == annotation.pk
        assert preference.history.count() == 1
    assert item_of(tenant, lease).status == ItemStatus.COMPLETE


def test_answers_are_checked_against_the_queue_and_the_lease(tenant):
    queue = make_comparison_queue(tenant, criteria=("helpfulness", "safety"))
    enqueue(tenant, queue, [make_comparison(tenant)])
    lease = claim(tenant, tenant.reviewer, queue)
    cases = [
        ({"helpfulness": {"choice": "a"}}, "safety"),  # a criterion left out
        ({"helpfulness": {"choice": "c"}, "safety": {"choice": "a"}}, "helpfulness"),
        ({"helpfulness": {"choice": "a", "strength": 2}, "safety": {"choice": "="}}, "helpfulness"),
        ({"helpfulness": {"choice": "a"}, "safety": {"choice": "a"}, "tone": {}}, "tone"),
    ]
    for answers, where in cases:
        with pytest.raises(DomainError) as refused:
            submit(tenant, tenant.reviewer, lease, answers)
        assert where in refused.value.details["answers"], answers
    # Nothing was kept of the refused answers; the lease is still live.
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Preference.objects.filter(queue=queue).exists()
        assert Assignment.objects.get(pk=lease.pk).state == "leased"
    # Another reviewer cannot answer on this lease.
    with pytest.raises(DomainError):
        submit(
            tenant, tenant.admin, lease, {"helpfulness": {"choice": "a"}, "safety": {"choice": "a"}}
        )


def test_overlap_two_split_preferences_go_to_adjudication(tenant):
    first, second = add_reviewers(tenant, 2)
    queue = make_comparison_queue(tenant, reviewers=[first, second], overlap=2)
    agreed, split = make_comparison(tenant), make_comparison(tenant)
    enqueue(tenant, queue, [agreed, split])
    for user in (first, second):
        for _ in range(2):
            lease = claim(tenant, user, queue)
            with tenancy.tenant_scope(tenant.organization.pk):
                item = item_of(tenant, lease)
                outputs = list(ComparisonOutput.objects.filter(comparison_id=item.comparison_id))
                view = selectors.comparison_for_lease(
                    Assignment.objects.select_related("item").get(pk=lease.pk)
                )
            # Both pick "candidate" on the agreed item; on the split one each picks
            # a different system.
            agreeing = item.comparison_id == agreed.pk or user == first
            wanted = "candidate" if agreeing else "baseline"
            letter = next(o.letter for o in view.outputs if o.label == wanted)
            submit(tenant, user, lease, {"helpfulness": {"choice": letter}})
            assert len(outputs) == 2
    with tenancy.tenant_scope(tenant.organization.pk):
        from review.models import QueueItem

        status = dict(QueueItem.objects.filter(queue=queue).values_list("comparison_id", "status"))
        result = report.comparison_report(queue, resamples=20)
    assert status == {agreed.pk: ItemStatus.COMPLETE, split.pk: ItemStatus.NEEDS_ADJUDICATION}
    agreement = result["criteria"][0]["agreement"]
    assert agreement["percent_agreement"]["value"] == 0.5


def test_n_way_best_and_ranking_read_back_onto_the_outputs(tenant):
    labels = ("alpha", "beta", "gamma")
    best_queue = make_comparison_queue(tenant, n_way="best")
    rank_queue = make_comparison_queue(tenant, n_way="ranking")
    comparison = make_comparison(tenant, labels)
    enqueue(tenant, best_queue, [comparison])
    enqueue(tenant, rank_queue, [comparison])
    lease = claim(tenant, tenant.reviewer, best_queue)
    (best,) = submit(tenant, tenant.reviewer, lease, {"helpfulness": {"choice": "c"}})
    assert best.winner_id == best.shown_order[2]
    lease = claim(tenant, tenant.reviewer, rank_queue)
    with pytest.raises(DomainError):
        submit(tenant, tenant.reviewer, lease, {"helpfulness": {"ranking": ["a", "a", "b"]}})
    (ranked,) = submit(
        tenant, tenant.reviewer, lease, {"helpfulness": {"ranking": ["b", "c", "a"]}}
    )
    order = ranked.shown_order
    assert ranked.ranking == [order[1], order[2], order[0]]
    with tenancy.tenant_scope(tenant.organization.pk):
        best_report = report.comparison_report(best_queue, resamples=0)
        rank_report = report.comparison_report(rank_queue, resamples=0)
    # Best of three: the winner over each other output; a ranking: every pair.
    assert best_report["criteria"][0]["judgements"] == 2
    assert rank_report["criteria"][0]["judgements"] == 3
    strengths = [row["system"] for row in rank_report["criteria"][0]["strengths"]]
    with tenancy.tenant_scope(tenant.organization.pk):
        label = dict(ComparisonOutput.objects.values_list("pk", "label"))
    assert strengths == [label[pk] for pk in ranked.ranking]


def test_comparisons_from_traces_sharing_a_variant_key(tenant):
    same = {"question": "What is the dose?"}
    made = [
        make_trace(tenant, input=same, output="10 mg", metadata={"variant": "v1"}),
        make_trace(tenant, input=same, output="20 mg", metadata={"variant": "v2"}),
        make_trace(tenant, input={"question": "alone"}, output="x", metadata={"variant": "v1"}),
        make_trace(tenant, input=same, output="no key"),
    ]
    with tenancy.tenant_scope(tenant.organization.pk):
        (comparison,) = services.comparison_items_from_traces(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            group_by="variant",
            trace_external_ids=[t.external_id for t in made],
        )
        outputs = list(comparison.outputs.order_by("position"))
        assert comparison.input == same
        assert [(o.label, o.content, o.trace_id) for o in outputs] == [
            ("v1", "10 mg", made[0].pk),
            ("v2", "20 mg", made[1].pk),
        ]
        with pytest.raises(DomainError):
            services.comparison_items_from_traces(
                actor=Actor(user=tenant.owner),
                project=tenant.project,
                group_by="variant",
                trace_external_ids=[made[2].external_id, made[3].external_id],
            )


def test_enqueue_needs_comparison_questions_and_skips_items_already_there(tenant):
    from tests.review.helpers import make_queue

    plain = make_queue(tenant, configs=[])
    comparison = make_comparison(tenant)
    with pytest.raises(Conflict):
        enqueue(tenant, plain, [comparison])
    queue = make_comparison_queue(tenant)
    assert len(enqueue(tenant, queue, [comparison])) == 1
    assert enqueue(tenant, queue, [comparison]) == []


def test_preference_pairs_export_names_prompt_chosen_rejected_and_reviewers(tenant):
    queue = make_comparison_queue(tenant, criteria=("helpfulness", "safety"))
    comparison = make_comparison(tenant, input={"question": "q"})
    enqueue(tenant, queue, [comparison])
    lease = claim(tenant, tenant.reviewer, queue)
    with tenancy.tenant_scope(tenant.organization.pk):
        view = selectors.comparison_for_lease(
            Assignment.objects.select_related("item").get(pk=lease.pk)
        )
    candidate = next(o.letter for o in view.outputs if o.label == "candidate")
    submit(
        tenant,
        tenant.reviewer,
        lease,
        {"helpfulness": {"choice": candidate}, "safety": {"choice": "tie"}},
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        lines = list(report.preference_pairs_jsonl(queue))
    (record,) = [json.loads(line) for line in lines]  # the tie is no pair
    assert record["prompt"] == {"question": "q"}
    assert record["chosen"].startswith("candidate answer")
    assert record["rejected"].startswith("baseline answer")
    assert record["criterion"] == "helpfulness"
    assert record["reviewers"] == [tenant.reviewer.email]
