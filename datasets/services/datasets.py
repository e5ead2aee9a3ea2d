"""Datasets and hand edits of their items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from datasets.content import ITEM_CONTENT_FIELDS, ItemState, SchemaCheck, check_key, check_schema
from datasets.models import Dataset, DatasetItem, DatasetVersion, QualityGate
from datasets.selectors import item_live_record
from datasets.services.versioning import VersionWriter
from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, conflict_on_duplicate
from projects.models import Project

ITEM_EDITABLE = ITEM_CONTENT_FIELDS


def dataset_create(
    *,
    actor: Actor,
    project: Project,
    name: str,
    description: str = "",
    schema: Mapping[str, Any] | None = None,
) -> Dataset:
    schema = check_schema(schema)
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        if Dataset.objects.filter(project=project, name=name).exists():
            raise Conflict("A dataset with this name already exists.", details={"name": ["taken"]})
        return Dataset.objects.create(
            project=project,
            name=name,
            description=description,
            schema=schema,
            created_by=actor.user if getattr(actor.user, "pk", None) else None,
        )


def dataset_update(*, actor: Actor, dataset: Dataset, **changes: Any) -> Dataset:
    """Renames, describes or changes the schema. A new schema must accept every item
    the dataset holds now (the first few that fail are named)."""
    if "schema" in changes:
        changes["schema"] = check_schema(changes["schema"])
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if "schema" in changes:
            check = SchemaCheck(changes["schema"])
            failing: list[dict[str, Any]] = []
            for item in DatasetItem.objects.filter(dataset=dataset).iterator(chunk_size=2000):
                errors = check.errors(
                    ItemState(
                        key=item.key,
                        input=item.input,
                        expected_output=item.expected_output,
                        metadata=item.metadata,
                    )
                )
                if errors:
                    failing.append({"id": item.key, "errors": errors})
                    if len(failing) >= 20:
                        break
            if failing:
                raise DomainError(
                    "Items of the dataset do not fit the new schema.",
                    code="schema_rejects_items",
                    details={"items": failing},
                )
        for name, value in changes.items():
            setattr(dataset, name, value)
        dataset.updated_at = timezone.now()
        dataset.save()
        return dataset


def state_of(item: DatasetItem) -> ItemState:
    """The state an item holds now (to edit a field and write it back)."""
    return ItemState(
        key=item.key,
        input=item.input,
        expected_output=item.expected_output,
        expected_tool_calls=item.expected_tool_calls,
        expected_outcome=item.expected_outcome,
        metadata=item.metadata,
        tags=list(item.tags),
        failure_reason=item.failure_reason,
        failure_modes=list(item.failure_modes),
        explanation=item.explanation,
        source_type=item.source_type,
        trace_id=item.trace_id,
        span_id=item.span_id,
        thread_id=item.thread_id,
        queue_item_id=item.queue_item_id,
        adjudication_id=item.adjudication_id,
        annotation_ids=list(item.annotation_ids),
        reviews=item.reviews,
        source_trace_id=item_live_record(item).get("source_trace_id"),
        source_span_id=item_live_record(item).get("source_span_id"),
        source_thread_id=item_live_record(item).get("source_thread_id"),
    )


def validate_states(dataset: Dataset, states: list[ItemState]) -> None:
    check = SchemaCheck(dataset.schema)
    errors = {state.key: check.errors(state) for state in states}
    errors = {key: found for key, found in errors.items() if found}
    if errors:
        raise DomainError(
            "The item does not fit the dataset's schema.", code="schema", details=errors
        )


def dataset_item_update(
    *, actor: Actor, item: DatasetItem, message: str = "", **changes: Any
) -> tuple[DatasetItem, DatasetVersion | None]:
    """Edits an item's content; a real change makes a new version."""
    unknown = set(changes) - set(ITEM_EDITABLE)
    if unknown:
        raise DomainError(f"Cannot edit {', '.join(sorted(unknown))}.")
    with audit.acting_as(actor), transaction.atomic():
        writer = VersionWriter(dataset=item.dataset, message=message or f"edit {item.key}")
        item = DatasetItem.objects.select_for_update().get(pk=item.pk)
        state = state_of(item)
        for name, value in changes.items():
            setattr(state, name, value)
        validate_states(writer.dataset, [state])
        writer.upsert([state])
        version = writer.finish()
        return DatasetItem.objects.get(pk=item.pk), version


def dataset_item_create(
    *, actor: Actor, dataset: Dataset, key: str, message: str = "", **fields: Any
) -> tuple[DatasetItem, DatasetVersion | None]:
    """Writes one item by hand (``source_type`` manual)."""
    problem = check_key(key)
    if problem:
        raise DomainError(problem, details={"id": [problem]})
    unknown = set(fields) - set(ITEM_EDITABLE)
    if unknown:
        raise DomainError(f"Unknown item fields: {', '.join(sorted(unknown))}.")
    state = ItemState(key=str(key), source_type="manual", **fields)
    with audit.acting_as(actor), transaction.atomic():
        writer = VersionWriter(dataset=dataset, message=message or f"add {key}")
        if DatasetItem.objects.filter(dataset=dataset, key=state.key).exists():
            raise Conflict(
                "An item with this id is already in the dataset.", details={"id": ["taken"]}
            )
        validate_states(writer.dataset, [state])
        writer.upsert([state])
        version = writer.finish()
        return DatasetItem.objects.get(dataset=dataset, key=state.key), version


def dataset_item_delete(
    *, actor: Actor, item: DatasetItem, message: str = ""
) -> DatasetVersion | None:
    """Removes an item; earlier versions keep it."""
    with audit.acting_as(actor), transaction.atomic():
        writer = VersionWriter(dataset=item.dataset, message=message or f"remove {item.key}")
        writer.remove([item.key])
        return writer.finish()


# --- the quality gate ---------------------------------------------------------------------

THRESHOLD_BOUNDS = ("min", "max", "max_drop", "max_rise")


PREFERENCE_KEYS = ("metric", "queue", "min_preferred_or_tied", "criterion", "confidence")


def _preference_threshold(entry: dict[str, Any]) -> dict[str, Any] | str:
    """A comparison threshold: the candidate preferred or tied on at least this share of
    a comparison queue's items (the lower confidence bound); or why it is not one."""
    unknown = set(entry) - set(PREFERENCE_KEYS)
    share = entry.get("min_preferred_or_tied")
    queue = entry.get("queue")
    confidence = entry.get("confidence", 0.95)
    if unknown:
        return f"Unknown keys: {', '.join(sorted(unknown))}."
    if not isinstance(queue, int) or isinstance(queue, bool) or queue < 1:
        return '"queue": the comparison queue\'s id.'
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
        return '"min_preferred_or_tied": a share from 0 to 1.'
    if confidence not in (0.9, 0.95, 0.99):
        return '"confidence": 0.9, 0.95 or 0.99.'
    criterion = entry.get("criterion")
    if criterion is not None and (not isinstance(criterion, str) or not criterion):
        return '"criterion": a criterion\'s name.'
    clean = {"metric": entry["metric"], "queue": queue, "min_preferred_or_tied": share}
    clean["confidence"] = confidence
    if criterion:
        clean["criterion"] = criterion
    return clean


def _check_thresholds(thresholds: Any) -> list[dict[str, Any]]:
    if not isinstance(thresholds, list):
        raise DomainError("thresholds must be a list.", details={"thresholds": ["A list."]})
    errors: dict[str, list[str]] = {}
    clean: list[dict[str, Any]] = []
    for index, entry in enumerate(thresholds):
        where = f"thresholds[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("metric"), str):
            errors[where] = ['An object with a "metric" name.']
            continue
        if "min_preferred_or_tied" in entry:
            # Reviewers' preferences in a comparison queue (review.comparison).
            preference = _preference_threshold(entry)
            if isinstance(preference, str):
                errors[where] = [preference]
            else:
                clean.append(preference)
            continue
        unknown = set(entry) - {"metric", *THRESHOLD_BOUNDS}
        bounds = {k: v for k, v in entry.items() if k in THRESHOLD_BOUNDS}
        if unknown:
            errors[where] = [f"Unknown keys: {', '.join(sorted(unknown))}."]
        elif not bounds:
            errors[where] = [f"Give at least one of {', '.join(THRESHOLD_BOUNDS)}."]
        elif any(not isinstance(v, int | float) or isinstance(v, bool) for v in bounds.values()):
            errors[where] = ["Bounds are numbers."]
        else:
            clean.append({"metric": entry["metric"], **bounds})
    if errors:
        raise DomainError("The thresholds are not valid.", details=errors)
    return clean


def quality_gate_set(*, actor: Actor, dataset: Dataset, **fields: Any) -> QualityGate:
    """Creates the dataset's gate or changes the ``fields`` given (the others keep
    their values)."""
    if "thresholds" in fields:
        fields["thresholds"] = _check_thresholds(fields["thresholds"])
    for name in ("min_judge_alignment", "min_reviewer_agreement"):
        value = fields.get(name)
        if value is not None and not 0 <= value <= 1:
            raise DomainError(f"{name} is a share between 0 and 1.", details={name: ["0..1"]})
    baseline = fields.get("baseline_experiment")
    if baseline is not None and baseline.dataset_id != dataset.pk:
        raise DomainError(
            "The baseline is an experiment on this dataset.",
            details={"baseline_experiment_id": ["Another dataset's experiment."]},
        )
    with audit.acting_as(actor), transaction.atomic():
        gate = QualityGate.objects.filter(dataset=dataset).first() or QualityGate(
            project_id=dataset.project_id, dataset=dataset
        )
        for name, value in fields.items():
            setattr(gate, name, value)
        # Checked on the gate as it will be: a PUT gives only the fields it changes.
        if gate.min_judge_alignment is not None and not (
            gate.judge_score_name and gate.human_question
        ):
            raise DomainError(
                "A judge alignment threshold names the judge score and the reviewers' question.",
                details={"judge_score_name": ["Required."], "human_question": ["Required."]},
            )
        gate.updated_at = timezone.now()
        gate.save()
        return gate
