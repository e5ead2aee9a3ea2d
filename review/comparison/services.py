"""Writes of the comparison wing: a queue's comparison questions, comparison items (from
experiments, from traces sharing a grouping key, or posted), adding them to a queue and
a reviewer's preferences.

A comparison item in a queue is a ``QueueItem`` like any other: claimed, leased,
skipped, released and expired by :mod:`review.services.claims`, with the queue's overlap
and pool. A submit (:func:`comparison_submit`) reads the answer on screen back onto the
outputs, stores it with the order shown, and hands the lease to the core's
``assignment_submit`` (an annotation with the explanation, the lease ended, the item
closed at N reviews). An item whose reviewers' preferences differ on a criterion goes to
adjudication when it closes; :func:`comparison_adjudicate` records the adjudicator's
final preference per criterion as the item's decision (``review.Adjudication``, its
``values["preferences"]``), which the report, the export and the gate then read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from hitl import audit, tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound
from projects.models import Project
from review.comparison import hooks
from review.comparison.models import (
    MAX_OUTPUTS,
    ComparisonItem,
    ComparisonOutput,
    ComparisonQueue,
    ComparisonSource,
    NWayMode,
    OutputSource,
    Preference,
)
from review.comparison.ordering import canonical, shown_order
from review.comparison.selectors import DECIDED_KEY, split_criteria
from review.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Adjudication,
    AdjudicationKind,
    Assignment,
    AuditStatus,
    ItemSource,
    ItemStatus,
    ItemTarget,
    QueueItem,
    ReviewQueue,
)
from review.services import assignment_submit
from review.services.annotations import item_to_decide
from review.services.common import require_manager, require_person, time_now
from review.services.events import announce_if_queue_completed
from review.services.lifecycle import queue_check_open
from traces.models import Trace

MAX_CRITERIA = 10
# The most items one call creates or adds.
MAX_BATCH = 1000


@dataclass(frozen=True)
class OutputSpec:
    label: str
    content: Any
    source: str = OutputSource.API
    experiment_result_id: int | None = None
    trace_id: int | None = None
    # A trace named by the id its client sent (the API's way), resolved in the project.
    trace_external_id: str | None = None


def _check_criteria(criteria: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    if not criteria:
        raise DomainError(
            "A comparison asks at least one question.", details={"criteria": ["empty"]}
        )
    if len(criteria) > MAX_CRITERIA:
        raise DomainError(f"At most {MAX_CRITERIA} criteria.", details={"criteria": ["too_many"]})
    cleaned: list[dict[str, str]] = []
    for c in criteria:
        name = str(c.get("name", "")).strip()
        if not name or len(name) > 100:
            raise DomainError(
                "Each criterion has a name of 1 to 100 characters.",
                details={"criteria": ["name"]},
            )
        cleaned.append({"name": name, "question": str(c.get("question", "") or "")[:500]})
    names = [c["name"] for c in cleaned]
    if len(set(names)) != len(names):
        raise DomainError("Criteria names repeat.", details={"criteria": ["repeated"]})
    return cleaned


def comparison_setup(
    *,
    actor: Actor,
    queue: ReviewQueue,
    criteria: Sequence[Mapping[str, Any]],
    allow_strength: bool = False,
    n_way: str = NWayMode.BEST,
) -> ComparisonQueue:
    """Sets (or changes) a queue's comparison questions. Owners and admins only."""
    require_manager(actor, queue.organization_id, "Setting a queue's comparison questions")
    cleaned = _check_criteria(criteria)
    if n_way not in NWayMode.values:
        raise DomainError("n_way: best or ranking.", details={"n_way": ["invalid"]})
    with audit.acting_as(actor), transaction.atomic():
        setup = ComparisonQueue.objects.select_for_update().filter(queue=queue).first()
        if setup is None:
            setup = ComparisonQueue(queue=queue)
        setup.criteria = cleaned
        setup.allow_strength = bool(allow_strength)
        setup.n_way = n_way
        setup.updated_at = time_now()
        setup.save()
    return setup


def _input_key(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _check_outputs(outputs: Sequence[OutputSpec]) -> None:
    if not 2 <= len(outputs) <= MAX_OUTPUTS:
        raise DomainError(
            f"A comparison holds 2 to {MAX_OUTPUTS} outputs.", details={"outputs": ["count"]}
        )
    labels = [o.label for o in outputs]
    if any(not label or len(label) > 200 for label in labels):
        raise DomainError(
            "Each output has a label (its system) of 1 to 200 characters.",
            details={"outputs": ["label"]},
        )
    if len(set(labels)) != len(labels):
        raise DomainError(
            "Two outputs of one comparison have the same label.", details={"outputs": ["label"]}
        )


def _create(
    project: Project,
    *,
    actor: Actor,
    input: Any,
    outputs: Sequence[OutputSpec],
    source: str,
    group_key: str = "",
    dataset_item_id: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ComparisonItem:
    _check_outputs(outputs)
    comparison = ComparisonItem.objects.create(
        project=project,
        input=input,
        group_key=group_key[:300],
        source=source,
        dataset_item_id=dataset_item_id,
        metadata=dict(metadata or {}),
        created_by=actor.user,
    )
    for position, spec in enumerate(outputs):
        ComparisonOutput.objects.create(
            comparison=comparison,
            position=position,
            label=spec.label,
            content=spec.content,
            source=spec.source,
            experiment_result_id=spec.experiment_result_id,
            trace_id=spec.trace_id,
        )
    return comparison


def comparison_item_create(
    *,
    actor: Actor,
    project: Project,
    input: Any,
    outputs: Sequence[OutputSpec],
    group_key: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> ComparisonItem:
    """A comparison of outputs posted by the caller: a production trace beside a
    candidate's output, named by the trace's id (checked to be this project's)."""
    external = [o.trace_external_id for o in outputs if o.trace_external_id]
    by_external = dict(
        Trace.objects.filter(project=project, external_id__in=external).values_list(
            "external_id", "pk"
        )
    )
    if set(external) - set(by_external):
        raise NotFound("A trace named by an output is not in this project.")
    outputs = [
        OutputSpec(
            label=o.label,
            content=o.content,
            source=OutputSource.TRACE if o.trace_external_id else o.source,
            trace_id=by_external[o.trace_external_id] if o.trace_external_id else o.trace_id,
        )
        for o in outputs
    ]
    trace_ids = [o.trace_id for o in outputs if o.trace_id is not None]
    if trace_ids:
        found = set(
            Trace.objects.filter(project=project, pk__in=trace_ids).values_list("pk", flat=True)
        )
        if set(trace_ids) - found:
            raise NotFound("A trace named by an output is not in this project.")
    tenancy.assert_writing_in_scope(project.organization_id)
    with audit.acting_as(actor), transaction.atomic():
        return _create(
            project,
            actor=actor,
            input=input,
            outputs=outputs,
            source=ComparisonSource.API,
            group_key=group_key,
            metadata=metadata,
        )


def comparison_items_from_traces(
    *,
    actor: Actor,
    project: Project,
    group_by: str,
    trace_external_ids: Sequence[str],
) -> list[ComparisonItem]:
    """Comparisons of traces that answered the same input, one output per value of the
    metadata key ``group_by`` (e.g. ``variant``): the traces are grouped by their input
    (its hash), and each input with two or more values of the key becomes a comparison
    (the latest trace per value). Traces without the key are left out."""
    if not group_by or len(group_by) > 100:
        raise DomainError("group_by: a metadata key.", details={"group_by": ["invalid"]})
    if not 2 <= len(trace_external_ids) <= MAX_BATCH * MAX_OUTPUTS:
        raise DomainError("trace_ids: 2 or more traces' ids.", details={"trace_ids": ["count"]})
    traces = list(
        Trace.objects.filter(
            project=project,
            external_id__in=list(trace_external_ids),
            metadata__has_key=group_by,
        )
        .only("pk", "input", "output", "metadata", "start_time", "created_at", "external_id")
        .order_by("created_at", "pk")
    )
    groups: dict[str, dict[str, Trace]] = {}
    inputs: dict[str, Any] = {}
    for trace in traces:
        label = str(trace.metadata.get(group_by))[:200]
        key = _input_key(trace.input)
        inputs.setdefault(key, trace.input)
        groups.setdefault(key, {})[label] = trace  # the latest trace per label wins
    tenancy.assert_writing_in_scope(project.organization_id)
    created: list[ComparisonItem] = []
    with audit.acting_as(actor), transaction.atomic():
        for key, by_label in groups.items():
            if len(by_label) < 2:
                continue
            outputs = [
                OutputSpec(label=label, content=t.output, source=OutputSource.TRACE, trace_id=t.pk)
                for label, t in sorted(by_label.items())[:MAX_OUTPUTS]
            ]
            created.append(
                _create(
                    project,
                    actor=actor,
                    input=inputs[key],
                    outputs=outputs,
                    source=ComparisonSource.TRACES,
                    group_key=f"{group_by}:{key[:16]}",
                    metadata={"group_by": group_by},
                )
            )
    if not created:
        raise DomainError(
            f"No input was answered under two or more values of '{group_by}'.",
            code="nothing_to_compare",
        )
    return created


def comparison_items_from_experiments(
    *, actor: Actor, project: Project, experiment_ids: Sequence[int]
) -> list[ComparisonItem]:
    """Comparisons of two or more experiments' results on the same dataset items, one
    per item they share, each output labelled by its experiment's name."""
    ids = list(dict.fromkeys(int(i) for i in experiment_ids))
    if not 2 <= len(ids) <= MAX_OUTPUTS:
        raise DomainError(
            f"experiment_ids: 2 to {MAX_OUTPUTS} experiments.",
            details={"experiment_ids": ["count"]},
        )
    groups = hooks.experiment_outputs(project_id=project.pk, experiment_ids=ids)
    tenancy.assert_writing_in_scope(project.organization_id)
    created: list[ComparisonItem] = []
    with audit.acting_as(actor), transaction.atomic():
        for group in groups[:MAX_BATCH]:
            if len(group.outputs) < 2:
                continue
            outputs = [
                OutputSpec(
                    label=o.label,
                    content=o.content,
                    source=OutputSource.EXPERIMENT_RESULT,
                    experiment_result_id=o.experiment_result_id,
                    trace_id=o.trace_id,
                )
                for o in group.outputs
            ]
            created.append(
                _create(
                    project,
                    actor=actor,
                    input=group.input,
                    outputs=outputs,
                    source=ComparisonSource.EXPERIMENTS,
                    group_key=group.key,
                    dataset_item_id=group.dataset_item_id,
                    metadata={"experiment_ids": ids},
                )
            )
    if not created:
        raise DomainError(
            "These experiments share no dataset item with two or more results.",
            code="nothing_to_compare",
        )
    return created


def comparison_items_enqueue(
    *,
    actor: Actor,
    queue: ReviewQueue,
    comparison_ids: Sequence[int],
    priority: int = 0,
) -> list[QueueItem]:
    """Adds comparison items to a queue with comparison questions; those already in it
    are left as they are. Returns the new queue items."""
    user = require_person(actor, "Adding comparisons to a queue")
    queue_check_open(queue)
    if not ComparisonQueue.objects.filter(queue=queue).exists():
        raise Conflict(
            "This queue has no comparison questions yet.", code="no_comparison_questions"
        )
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise DomainError("priority: out of range.", details={"priority": ["range"]})
    ids = list(dict.fromkeys(int(i) for i in comparison_ids))
    if not 1 <= len(ids) <= MAX_BATCH:
        raise DomainError(
            f"comparison_ids: 1 to {MAX_BATCH} ids.", details={"comparison_ids": ["count"]}
        )
    found = set(
        ComparisonItem.objects.filter(project_id=queue.project_id, pk__in=ids).values_list(
            "pk", flat=True
        )
    )
    if set(ids) - found:
        raise NotFound("A comparison named is not in this project.")
    tenancy.assert_writing_in_scope(queue.organization_id)
    with audit.acting_as(actor), transaction.atomic():
        present = set(
            QueueItem.objects.filter(queue=queue, comparison_id__in=ids).values_list(
                "comparison_id", flat=True
            )
        )
        now = time_now()
        return [
            QueueItem.objects.create(
                queue=queue,
                project_id=queue.project_id,
                target_type=ItemTarget.COMPARISON,
                comparison_id=pk,
                source=ItemSource.MANUAL,
                priority=priority,
                open_slots=queue.overlap,
                added_by=user,
                created_at=now,
            )
            for pk in ids
            if pk not in present
        ]


# The most recent traces a fill from a metadata key reads when no trace is named.
FILL_RECENT_TRACES = 2000


def comparison_queue_fill(
    *,
    actor: Actor,
    queue: ReviewQueue,
    experiment_ids: Sequence[int] = (),
    group_by: str = "",
    trace_external_ids: Sequence[str] = (),
    priority: int = 0,
) -> list[QueueItem]:
    """Fills a comparison queue in one step (the lead's page): comparison items from two
    or more experiments on the same dataset, else from traces sharing the metadata key
    ``group_by`` (the traces named, or the project's latest ``FILL_RECENT_TRACES`` with
    the key), added to the queue. All or nothing; returns the new queue items."""
    require_manager(actor, queue.organization_id, "Filling a comparison queue")
    queue_check_open(queue)
    if not ComparisonQueue.objects.filter(queue=queue).exists():
        raise Conflict(
            "This queue has no comparison questions yet.", code="no_comparison_questions"
        )
    project = queue.project
    with transaction.atomic():
        if experiment_ids:
            made = comparison_items_from_experiments(
                actor=actor, project=project, experiment_ids=experiment_ids
            )
        else:
            ids = list(trace_external_ids)
            if not ids and group_by:
                ids = list(
                    Trace.objects.filter(project=project, metadata__has_key=group_by)
                    .order_by("-created_at", "-pk")
                    .values_list("external_id", flat=True)[:FILL_RECENT_TRACES]
                )
                if len(ids) < 2:
                    raise DomainError(
                        f"Fewer than two traces carry the metadata key '{group_by}'.",
                        code="nothing_to_compare",
                        details={"group_by": ["too_few_traces"]},
                    )
            made = comparison_items_from_traces(
                actor=actor, project=project, group_by=group_by, trace_external_ids=ids
            )
        made_ids = [c.pk for c in made]
        queued: list[QueueItem] = []
        for start in range(0, len(made_ids), MAX_BATCH):  # every item made is queued
            queued += comparison_items_enqueue(
                actor=actor,
                queue=queue,
                comparison_ids=made_ids[start : start + MAX_BATCH],
                priority=priority,
            )
        return queued


def comparison_submit(
    *,
    actor: Actor,
    assignment_id: int,
    answers: Mapping[str, Mapping[str, Any]],
    explanation: str = "",
    accept_lapsed: bool = False,
) -> list[Preference]:
    """Records the acting reviewer's preferences, one per criterion of the queue, for
    the comparison item they hold. ``answers`` maps each criterion to its answer as
    given on screen (:func:`review.comparison.ordering.canonical`); the order shown is
    the lease's, and is stored beside it."""
    user = require_person(actor, "Submitting a comparison")
    assignment = (
        Assignment.objects.select_related("item")
        .filter(pk=assignment_id, reviewer_id=user.pk)
        .first()
    )
    if assignment is None:
        raise NotFound("No such lease of yours.")
    item = assignment.item
    if item.target_type != ItemTarget.COMPARISON or item.comparison_id is None:
        raise DomainError("This item is not a comparison.", code="not_a_comparison")
    setup = ComparisonQueue.objects.filter(queue_id=item.queue_id).first()
    if setup is None:
        raise Conflict("This queue has no comparison questions.", code="no_comparison_questions")
    output_ids = list(
        ComparisonOutput.objects.filter(comparison_id=item.comparison_id).values_list(
            "pk", flat=True
        )
    )
    shown = shown_order(assignment.pk, item.comparison_id, output_ids)
    read = _read_answers(answers, setup, shown)
    with audit.acting_as(actor), transaction.atomic():
        annotation = assignment_submit(
            actor=actor,
            assignment_id=assignment.pk,
            values={},
            explanation=explanation,
            accept_lapsed=accept_lapsed,
        )
        now = time_now()
        preferences = [
            Preference.objects.create(
                project_id=item.project_id,
                queue_id=item.queue_id,
                item_id=item.pk,
                comparison_id=item.comparison_id,
                assignment_id=assignment.pk,
                annotation=annotation,
                reviewer=user,
                criterion=name,
                shown_order=shown,
                answer_shown=value["answer_shown"],
                winner_id=value["winner"],
                ranking=value["ranking"],
                strength=value["strength"],
                submitted_at=now,
            )
            for name, value in read.items()
        ]
        _adjudicate_if_split(item.pk)
    return preferences


def _adjudicate_if_split(item_id: int) -> None:
    """An item whose N reviews are in goes to adjudication when its reviewers picked
    different winners (or one a tie) on any criterion."""
    item = QueueItem.objects.select_for_update().get(pk=item_id)
    if item.status != ItemStatus.COMPLETE or item.submissions < 2:
        return
    if split_criteria(Preference.objects.filter(item_id=item_id)):
        item.status = ItemStatus.NEEDS_ADJUDICATION
        item.save(update_fields=["status"])


def _read_answers(
    answers: Any, setup: ComparisonQueue, order: list[int]
) -> dict[str, dict[str, Any]]:
    """Each criterion's answer (letters naming ``order``) read onto the outputs;
    ``DomainError`` with the reason per criterion for anything else."""
    if not isinstance(answers, Mapping):
        raise DomainError("answers: an object by criterion.", details={"answers": ["object"]})
    errors: dict[str, str] = {}
    read: dict[str, dict[str, Any]] = {}
    names = setup.criterion_names
    for key in answers:
        if key not in names:
            errors[str(key)] = "Not a criterion of this queue."
    for name in names:
        answer = answers.get(name)
        if not isinstance(answer, Mapping):
            errors[name] = "An answer is required."
            continue
        try:
            read[name] = canonical(
                answer, order, n_way=setup.n_way, allow_strength=setup.allow_strength
            )
        except DomainError as exc:
            errors[name] = exc.message
    if errors:
        raise DomainError("The answers do not match the comparison.", details={"answers": errors})
    return read


def comparison_adjudicate(
    *,
    actor: Actor,
    item: QueueItem,
    membership: Any,
    answers: Mapping[str, Mapping[str, Any]],
    explanation: str = "",
) -> Adjudication:
    """The adjudicator's final preference on every criterion of a disputed (or
    audit-sampled) comparison item, recorded as the item's decision beside the
    reviewers' preferences, never over them. ``answers`` are given as on the review
    page, with letters naming the outputs in their canonical order (``a`` the first);
    the decision stores them read onto the outputs (winner, ranking, strength) under
    ``values["preferences"]``, and what the reviewers split on under ``disagreement``.
    Who may decide is the core's rule (a manager, or a senior of the queue)."""
    user = require_person(actor, "Adjudicating")
    if item.target_type != ItemTarget.COMPARISON or item.comparison_id is None:
        raise DomainError("This item is not a comparison.", code="not_a_comparison")
    setup = ComparisonQueue.objects.filter(queue_id=item.queue_id).first()
    if setup is None:
        raise Conflict("This queue has no comparison questions.", code="no_comparison_questions")
    outputs = list(
        ComparisonOutput.objects.filter(comparison_id=item.comparison_id).order_by("position")
    )
    read = _read_answers(answers, setup, [o.pk for o in outputs])
    with audit.acting_as(actor), transaction.atomic():
        item, kind = item_to_decide(item, membership)
        preferences = list(Preference.objects.filter(item=item))
        labels = {o.pk: o.label for o in outputs}
        split: dict[str, dict[str, int]] = {}
        for criterion in split_criteria(preferences):
            counts: dict[str, int] = {}
            for p in preferences:
                if p.criterion == criterion:
                    said = "tie" if p.winner_id is None else labels.get(p.winner_id, "?")
                    counts[said] = counts.get(said, 0) + 1
            split[criterion] = counts
        adjudication = Adjudication.objects.create(
            project_id=item.project_id,
            queue_id=item.queue_id,
            item=item,
            kind=kind,
            adjudicator=user,
            values={
                DECIDED_KEY: {
                    name: {
                        "winner": value["winner"],
                        "ranking": value["ranking"],
                        "strength": value["strength"],
                        "answer": value["answer_shown"],
                        # The systems by name, so the decision's history reads alone.
                        "preferred": labels.get(value["winner"], "tie"),
                        "systems": [labels.get(o, "?") for o in value["ranking"]],
                    }
                    for name, value in read.items()
                }
            },
            explanation=explanation or "",
            disagreement={DECIDED_KEY: split} if split else {},
        )
        if kind == AdjudicationKind.DISAGREEMENT:
            item.status = ItemStatus.ADJUDICATED
        else:
            item.audit_status = AuditStatus.DONE
        item.save()
        announce_if_queue_completed(item)
    return adjudication
