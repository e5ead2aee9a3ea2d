"""Answers and annotations: answer validation, human scores, expected outputs,
annotation edits and adjudication. A queue's form and how answers disagree are reads
(:mod:`review.selectors`); closing an item is its lifecycle
(:mod:`review.services.lifecycle`).

A dataset item's queue item writes no scores (there is no trace to score): its verdict,
the consensus or adjudicated expected output, goes to datasets through
``review.hooks.expected_output_written`` inside the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from projects.models import MANAGE_ROLES, Membership
from review import hooks
from review.models import (
    Adjudication,
    AdjudicationKind,
    Annotation,
    AuditStatus,
    ItemStatus,
    ItemTarget,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    ScoreConfig,
)
from review.selectors import FormQuestion, item_disagreement, queue_form
from review.services.common import human_score_build, require_person, time_now
from review.services.events import announce_if_queue_completed, announce_item_closed
from review.services.lifecycle import expected_output_announce
from review.services.routing_strategies import routing_enqueue_for_disagreement
from review.services.turns import turn_scores_write, validate_turns
from traces.score_kinds import MAX_TEXT_ANSWER as MAX_TEXT_ANSWER  # review.services exports it
from traces.score_kinds import score_kind


def check_answer(config: ScoreConfig, value: Any) -> str | None:
    """None if ``value`` answers ``config``, else the reason it does not."""
    return score_kind(config.data_type).answer_error(config, value)


def validate_answers(
    form: Sequence[FormQuestion], values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Checks answers (config id -> value) against the form; returns them with the
    version of each config answered. Refuses unknown questions, bad values and missing
    required answers, each with its reason."""
    if not isinstance(values, Mapping):
        raise DomainError(
            "values maps score config ids to answers.", details={"values": ["object"]}
        )
    by_id = {str(q.config.pk): q.config for q in form}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        config = by_id.get(str(key))
        if config is None:
            errors[str(key)] = "Not a question of this queue's form."
            continue
        if value is None:
            continue
        reason = check_answer(config, value)
        if reason:
            errors[str(key)] = f"{config.name}: {reason}"
        else:
            cleaned[str(key)] = value
    for key, config in by_id.items():
        if config.required and key not in cleaned and key not in errors:
            errors[key] = f"{config.name}: an answer is required."
    if errors:
        raise DomainError("The answers do not match the form.", details={"values": errors})
    versions = {key: by_id[key].version for key in cleaned}
    return cleaned, versions


def _score_fields(config: ScoreConfig, value: Any) -> dict[str, Any]:
    return score_kind(config.data_type).score_fields(config, value)


def scores_write(
    *,
    form: Sequence[FormQuestion],
    values: Mapping[str, Any],
    item: QueueItem,
    author: Any,
    link: dict[str, Any],
    replace: bool = False,
) -> None:
    """Human scores beside the automated ones; answers that write to the expected
    output are not scores. ``replace`` drops the scores this link wrote before."""
    from traces.models import Score

    if item.target_type == ItemTarget.DATASET_ITEM:
        return  # no trace to score: the verdict is the dataset item's expected output
    if replace:
        link_key, link_id = next(iter(link.items()))
        previous = Score.objects.filter(
            project_id=item.project_id, **{f"metadata__{link_key}": link_id}
        )
        if item.trace_id is not None:
            previous = previous.filter(trace_id=item.trace_id)
        else:
            previous = previous.filter(thread_id=item.thread_id)
        previous.delete()
    configs = {str(q.config.pk): q.config for q in form}
    now = time_now()
    scores = []
    for key, value in values.items():
        config = configs[key]
        if config.writes_expected_output:
            continue
        metadata = {**link, "config_id": config.pk, "config_version": config.version}
        if score_kind(config.data_type).free_text:
            metadata["text"] = value
        scores.append(
            human_score_build(
                item,
                author=author,
                now=now,
                metadata=metadata,
                trace_id=item.trace_id,
                span_id=item.span_id,
                thread_id=item.thread_id if item.trace_id is None else None,
                name=config.name,
                data_type=config.data_type,
                source_version=str(config.version),
                **_score_fields(config, value),
            )
        )
    audit.insert_recorded(scores)  # their history rows in one statement


def expected_output_of(
    form: Sequence[FormQuestion], values: Mapping[str, Any], free_text: Any
) -> Any:
    """The expected output an annotation states: the free field, else the answers of
    configs that write to the expected output."""
    if free_text not in (None, "", {}):
        return free_text
    written = {
        q.config.name: values[str(q.config.pk)]
        for q in form
        if q.config.writes_expected_output and str(q.config.pk) in values
    }
    if not written:
        return None
    return next(iter(written.values())) if len(written) == 1 else written


def annotation_update(
    *,
    actor: Actor,
    annotation_id: int,
    expected_version: int,
    values: Mapping[str, Any] | None = None,
    explanation: str | None = None,
    expected_output: Any = None,
    failure_modes: Sequence[str] | None = None,
    change_reason: str = "",
    turns: Mapping[str, Any] | None = None,
) -> Annotation:
    """Edits a submitted annotation. ``expected_version`` is the version the editor
    read; if someone saved since, the edit is refused (409), never merged silently.
    ``change_reason`` goes on the history row (why the answer changed). ``turns``
    (a conversation's turn ratings, ``review.services.turns``) replaces the ones
    stored, and their scores, when given."""
    user = require_person(actor, "Editing a review")
    with audit.acting_as(actor), transaction.atomic():
        item_id = (
            Annotation.objects.filter(pk=annotation_id).values_list("item_id", flat=True).first()
        )
        if item_id is None:
            raise NotFound("No such annotation.")
        item = QueueItem.objects.select_for_update().select_related("queue").get(pk=item_id)
        annotation = Annotation.objects.select_for_update().get(pk=annotation_id)
        if annotation.reviewer_id != user.pk:
            raise PermissionDenied("Only its author can edit an annotation.", code="not_author")
        if annotation.version != expected_version:
            raise Conflict(
                f"This annotation changed since you read it (version {expected_version}; it "
                f"is now {annotation.version}). Reload and edit again.",
                code="stale_version",
                details={"current_version": annotation.version},
            )
        form = queue_form(item.queue)
        if values is not None:
            merged = {**annotation.values, **{str(k): v for k, v in values.items()}}
            merged = {k: v for k, v in merged.items() if v is not None}
            cleaned, versions = validate_answers(form, merged)
            changed = {k for k in cleaned if annotation.values.get(k) != cleaned[k]}
            annotation.config_versions = {
                k: (versions[k] if k in changed else annotation.config_versions.get(k, versions[k]))
                for k in cleaned
            }
            annotation.values = cleaned
        if explanation is not None:
            annotation.explanation = explanation
        if failure_modes is not None:
            annotation.failure_modes = list(dict.fromkeys(failure_modes))
        if turns is not None:
            annotation.turns = validate_turns(item, turns)
        if expected_output is not None or values is not None:
            annotation.expected_output = expected_output_of(
                form, annotation.values, expected_output
            )
        annotation.version += 1
        annotation.updated_at = time_now()
        if change_reason:
            annotation._change_reason = change_reason
        annotation.save()
        scores_write(
            form=form,
            values=annotation.values,
            item=item,
            author=user,
            link={"annotation_id": annotation.pk},
            replace=True,
        )
        if turns is not None:
            turn_scores_write(
                item=item,
                turns=annotation.turns,
                author=user,
                annotation_id=annotation.pk,
                replace=True,
            )
        if item.status in (ItemStatus.COMPLETE, ItemStatus.NEEDS_ADJUDICATION):
            before = item.status
            annotations = list(Annotation.objects.filter(item=item).order_by("submitted_at", "id"))
            item.status = (
                ItemStatus.NEEDS_ADJUDICATION
                if item_disagreement(form, annotations)
                else ItemStatus.COMPLETE
            )
            if item.status != before:
                item.save()
                if item.status == ItemStatus.NEEDS_ADJUDICATION:
                    routing_enqueue_for_disagreement(item)
                announce_item_closed(item, [question.config.name for question in form])
                announce_if_queue_completed(item)
        if (
            item.target_type == ItemTarget.DATASET_ITEM
            and item.status == ItemStatus.COMPLETE
            and not Adjudication.objects.filter(item=item).exists()
        ):
            # The edit may change the verdict: the dataset item follows (no new version
            # when it does not change).
            annotations = list(Annotation.objects.filter(item=item).order_by("submitted_at", "id"))
            expected_output_announce(item, annotations, actor)
        if values is not None:
            hooks.answers_changed.send(sender=ReviewQueue, queue=item.queue)
    return annotation


def may_adjudicate(queue: ReviewQueue, membership: Membership | None) -> bool:
    """Whether ``membership`` decides the queue's disputed items: a manager, or a senior
    of its pool (every kind of decision asks this)."""
    if membership is None:
        return False
    if membership.role in MANAGE_ROLES:
        return True
    return QueueReviewer.objects.filter(queue=queue, membership=membership, is_senior=True).exists()


def item_to_decide(
    item: QueueItem, membership: Membership | None
) -> tuple[QueueItem, AdjudicationKind]:
    """The item locked for its decision (inside the caller's transaction) and what kind
    of decision it awaits; refused when the member may not decide it or nothing awaits
    a decision. Ordinary and comparison items alike."""
    item = QueueItem.objects.select_for_update().select_related("queue").get(pk=item.pk)
    if not may_adjudicate(item.queue, membership):
        raise PermissionDenied(
            "Only a senior reviewer of this queue or a manager can adjudicate.",
            code="not_senior",
        )
    if item.status == ItemStatus.NEEDS_ADJUDICATION:
        return item, AdjudicationKind.DISAGREEMENT
    if item.audit_status == AuditStatus.PENDING:
        return item, AdjudicationKind.AUDIT
    raise Conflict(
        "This item awaits no decision (it is neither disputed nor sampled for audit).",
        code="nothing_to_decide",
    )


def item_adjudicate(
    *,
    actor: Actor,
    item: QueueItem,
    membership: Membership | None,
    values: Mapping[str, Any],
    explanation: str = "",
    expected_output: Any = None,
) -> Adjudication:
    """A senior's final decision, beside the original annotations, never over them. A
    comparison item is decided with its preferences (the comparison wing's
    ``comparison_adjudicate``), not here."""
    user = require_person(actor, "Adjudicating")
    if item.target_type == ItemTarget.COMPARISON:
        raise DomainError(
            "A comparison item is decided with its preferences.",
            details={"preferences": ["required for a comparison item"]},
        )
    with audit.acting_as(actor), transaction.atomic():
        item, kind = item_to_decide(item, membership)
        form = queue_form(item.queue)
        cleaned, versions = validate_answers(form, values)
        annotations = list(Annotation.objects.filter(item=item).order_by("submitted_at", "id"))
        adjudication = Adjudication.objects.create(
            project_id=item.project_id,
            queue_id=item.queue_id,
            item=item,
            kind=kind,
            adjudicator=user,
            values=cleaned,
            config_versions=versions,
            explanation=explanation or "",
            expected_output=expected_output_of(form, cleaned, expected_output),
            disagreement=item_disagreement(form, annotations),
        )
        scores_write(
            form=form,
            values=cleaned,
            item=item,
            author=user,
            link={"adjudication_id": adjudication.pk},
        )
        if kind == AdjudicationKind.DISAGREEMENT:
            item.status = ItemStatus.ADJUDICATED
        else:
            item.audit_status = AuditStatus.DONE
        item.save()
        expected_output_announce(item, annotations, actor, adjudication)
        announce_if_queue_completed(item)
    return adjudication
