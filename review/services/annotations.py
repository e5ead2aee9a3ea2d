"""Answers and annotations: a queue's form, answer validation, human scores, expected
outputs, disagreement, item completion with audit sampling, annotation edits and
adjudication.

A dataset item's queue item writes no scores (there is no trace to score): its verdict,
the consensus or adjudicated expected output, goes to datasets through
``review.hooks.expected_output_written`` inside the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from projects.models import MANAGE_ROLES, Membership
from review import hooks
from review.adjudication import DisagreementRule
from review.consensus import consensus_expected_output
from review.models import (
    Adjudication,
    AdjudicationKind,
    Annotation,
    AuditStatus,
    ItemStatus,
    ItemTarget,
    QueueFormField,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    ScoreConfig,
)
from review.services._common import _is_number, _now, _require_person, _sampled
from review.services.events import announce_if_queue_completed, announce_item_closed
from traces.models import ScoreDataType

MAX_TEXT_ANSWER = 20_000


@dataclass(frozen=True)
class FormQuestion:
    config: ScoreConfig
    rule: DisagreementRule


def queue_form(queue: ReviewQueue) -> list[FormQuestion]:
    fields = (
        QueueFormField.objects.filter(queue=queue).select_related("config").order_by("position")
    )
    return [FormQuestion(f.config, DisagreementRule.of(f)) for f in fields]


def _check_answer(config: ScoreConfig, value: Any) -> str | None:
    """None if ``value`` answers ``config``, else the reason it does not."""
    kind = config.data_type
    if kind == ScoreDataType.NUMERIC:
        if not _is_number(value):
            return "A number is expected."
        if value < config.min_value or value > config.max_value:
            return f"Must be between {config.min_value:g} and {config.max_value:g}."
        if config.step:
            steps = (value - config.min_value) / config.step
            if abs(steps - round(steps)) > 1e-9:
                return f"Must be a multiple of {config.step:g} from {config.min_value:g}."
    elif kind == ScoreDataType.CATEGORICAL:
        labels = [option["label"] for option in config.options]
        if value not in labels:
            return f"Unknown option {value!r}; one of: {', '.join(labels)}."
    elif kind == ScoreDataType.BOOLEAN:
        if not isinstance(value, bool):
            return "true or false is expected."
    elif kind == ScoreDataType.TEXT:
        if not isinstance(value, str) or not value.strip():
            return "Non-empty text is expected."
        if len(value) > MAX_TEXT_ANSWER:
            return f"At most {MAX_TEXT_ANSWER} characters."
    return None


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
        reason = _check_answer(config, value)
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
    if config.data_type == ScoreDataType.NUMERIC:
        return {"value": float(value), "label": ""}
    if config.data_type == ScoreDataType.BOOLEAN:
        return {"value": 1.0 if value else 0.0, "label": "true" if value else "false"}
    if config.data_type == ScoreDataType.CATEGORICAL:
        option = next(o for o in config.options if o["label"] == value)
        return {"value": float(option["value"]), "label": value}
    return {"value": None, "label": value[:256]}


def _write_scores(
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
    now = _now()
    for key, value in values.items():
        config = configs[key]
        if config.writes_expected_output:
            continue
        metadata = {
            **link,
            "queue_id": item.queue_id,
            "item_id": item.pk,
            "config_id": config.pk,
            "config_version": config.version,
        }
        if config.data_type == ScoreDataType.TEXT:
            metadata["text"] = value
        Score.objects.create(
            organization_id=item.organization_id,
            project_id=item.project_id,
            trace_id=item.trace_id,
            span_id=item.span_id,
            thread_id=item.thread_id if item.trace_id is None else None,
            name=config.name,
            data_type=config.data_type,
            source="human",
            source_name=f"review queue {item.queue_id}",
            source_version=str(config.version),
            author=author,
            metadata=metadata,
            created_at=now,
            updated_at=now,
            **_score_fields(config, value),
        )


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


def _announce_expected_output(
    item: QueueItem,
    annotations: Sequence[Annotation],
    actor: Actor,
    adjudication: Adjudication | None = None,
) -> None:
    """A dataset item's verdict, to datasets (``review.hooks``), inside the caller's
    transaction: a receiver's ``DomainError`` refuses the submit or decision."""
    if item.target_type != ItemTarget.DATASET_ITEM or item.dataset_item_id is None:
        return
    value = consensus_expected_output(annotations, adjudication)
    hooks.expected_output_written.send(
        sender=QueueItem,
        item=item,
        dataset_item_id=item.dataset_item_id,
        expected_output=value,
        annotations=list(annotations),
        adjudication=adjudication,
        actor=actor,
    )


def item_disagreement(
    form: Sequence[FormQuestion], annotations: Sequence[Annotation]
) -> dict[str, Any]:
    """Per config id, how the answers disagree under the question's rule
    (``review.adjudication``); empty when the reviews agree well enough."""
    found: dict[str, Any] = {}
    for question in form:
        key = str(question.config.pk)
        disagreement = question.rule.disagreement([a.values.get(key) for a in annotations])
        if disagreement is not None:
            found[key] = {
                "config": question.config.name,
                "rule": question.rule.describe(),
                **disagreement,
            }
    return found


def _close_item(item: QueueItem, form: Sequence[FormQuestion]) -> None:
    """All N reviews are in: complete, or to adjudication when they disagree. A
    complete dataset item's consensus goes to datasets, written by whoever closes it
    (the last reviewer's submit, or the manager lowering the overlap)."""
    annotations = list(Annotation.objects.filter(item=item).order_by("submitted_at", "id"))
    if item_disagreement(form, annotations):
        item.status = ItemStatus.NEEDS_ADJUDICATION
    else:
        item.status = ItemStatus.COMPLETE
        if item.audit_status == AuditStatus.NOT_SAMPLED and _sampled(
            f"audit:{item.queue_id}:{item.pk}", item.queue.audit_sample_rate
        ):
            item.audit_status = AuditStatus.PENDING
    item.completed_at = item.completed_at or _now()
    item.save()
    actor = audit.current_actor()
    if item.status == ItemStatus.COMPLETE and actor is not None:
        _announce_expected_output(item, annotations, actor)
    announce_item_closed(item, [question.config.name for question in form])
    announce_if_queue_completed(item)


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
) -> Annotation:
    """Edits a submitted annotation. ``expected_version`` is the version the editor
    read; if someone saved since, the edit is refused (409), never merged silently.
    ``change_reason`` goes on the history row (why the answer changed)."""
    user = _require_person(actor, "Editing a review")
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
        if expected_output is not None or values is not None:
            annotation.expected_output = expected_output_of(
                form, annotation.values, expected_output
            )
        annotation.version += 1
        annotation.updated_at = _now()
        if change_reason:
            annotation._change_reason = change_reason
        annotation.save()
        _write_scores(
            form=form,
            values=annotation.values,
            item=item,
            author=user,
            link={"annotation_id": annotation.pk},
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
            _announce_expected_output(item, annotations, actor)
        if values is not None:
            from review.quality.services.agreement import agreement_request  # imports this module

            agreement_request(queue=item.queue)
    return annotation


def _may_adjudicate(queue: ReviewQueue, membership: Membership | None) -> bool:
    if membership is None:
        return False
    if membership.role in MANAGE_ROLES:
        return True
    return QueueReviewer.objects.filter(queue=queue, membership=membership, is_senior=True).exists()


def item_adjudicate(
    *,
    actor: Actor,
    item: QueueItem,
    membership: Membership | None,
    values: Mapping[str, Any],
    explanation: str = "",
    expected_output: Any = None,
) -> Adjudication:
    """A senior's final decision, beside the original annotations, never over them."""
    user = _require_person(actor, "Adjudicating")
    with audit.acting_as(actor), transaction.atomic():
        item = QueueItem.objects.select_for_update().select_related("queue").get(pk=item.pk)
        if not _may_adjudicate(item.queue, membership):
            raise PermissionDenied(
                "Only a senior reviewer of this queue or a manager can adjudicate.",
                code="not_senior",
            )
        if item.status == ItemStatus.NEEDS_ADJUDICATION:
            kind = AdjudicationKind.DISAGREEMENT
        elif item.audit_status == AuditStatus.PENDING:
            kind = AdjudicationKind.AUDIT
        else:
            raise Conflict(
                "This item awaits no decision (it is neither disputed nor sampled for audit).",
                code="nothing_to_decide",
            )
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
        _write_scores(
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
        _announce_expected_output(item, annotations, actor, adjudication)
        announce_if_queue_completed(item)
    return adjudication
