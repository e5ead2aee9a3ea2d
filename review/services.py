"""Writes for review: score configs, queues, items, claiming, annotations, adjudication,
comments and routing rules.

Every function is keyword-only, takes the acting person or key as ``actor``, runs
atomically and records history through :mod:`hitl.audit` (bulk paths included).

Lock order, so concurrent claims, submissions and lease expiry never deadlock: a queue
item's row first, then its assignments.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from projects.models import MANAGE_ROLES, REVIEW_ROLES, Membership, Project
from review.models import (
    Adjudication,
    AdjudicationKind,
    Annotation,
    Assignment,
    AssignmentState,
    AssignmentStrategy,
    AuditStatus,
    Comment,
    ItemSource,
    ItemStatus,
    ItemTarget,
    QueueFormField,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    RoutingRule,
    RoutingRuleDay,
    ScoreConfig,
    ScoreConfigVersion,
    ScoreTarget,
)
from traces.models import ScoreDataType, Span, Thread, Trace

logger = logging.getLogger(__name__)
User = get_user_model()

MAX_TEXT_ANSWER = 20_000
MAX_BULK_ADD = 200_000
BULK_CHUNK = 1_000
LEASE_TTL_RANGE = (30, 7 * 24 * 3600)


def _now():
    return timezone.now()


def _require_person(actor: Actor, what: str) -> Any:
    if actor.user is None:
        raise PermissionDenied(f"{what} needs a signed-in person, not an API key.")
    return actor.user


# --- score configs -------------------------------------------------------------------------

CONFIG_DEFINITION_FIELDS = (
    "name",
    "description",
    "data_type",
    "target",
    "min_value",
    "max_value",
    "step",
    "options",
    "rubric",
    "required",
    "writes_expected_output",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate_rubric(rubric: Any) -> list[dict[str, Any]]:
    if not isinstance(rubric, list) or not rubric:
        raise DomainError(
            "A rubric needs at least one level, each with a definition and an example.",
            details={"rubric": ["A rubric with no levels is refused."]},
        )
    levels: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for index, level in enumerate(rubric):
        problems = []
        if not isinstance(level, dict):
            errors[f"rubric[{index}]"] = ["Each level is an object."]
            continue
        unknown = set(level) - {"label", "definition", "examples"}
        if unknown:
            problems.append(f"Unknown keys: {', '.join(sorted(unknown))}.")
        label = level.get("label")
        definition = level.get("definition")
        examples = level.get("examples")
        if not isinstance(label, str) or not label.strip():
            problems.append("A level needs a label.")
        if not isinstance(definition, str) or not definition.strip():
            problems.append("A level needs a definition.")
        if (
            not isinstance(examples, list)
            or not examples
            or not all(isinstance(e, str) and e.strip() for e in examples)
        ):
            problems.append("A level needs at least one example (a non-empty string).")
        if problems:
            errors[f"rubric[{index}]"] = problems
        else:
            levels.append(
                {"label": label.strip(), "definition": definition.strip(), "examples": examples}
            )
    if errors:
        raise DomainError("The rubric is incomplete.", details=errors)
    return levels


def _validate_config_definition(data: dict[str, Any]) -> dict[str, Any]:
    """Checks a whole config definition; returns it normalized."""
    errors: dict[str, list[str]] = {}
    data_type = data["data_type"]
    if data_type not in ScoreDataType.values:
        errors["data_type"] = [f"One of {', '.join(ScoreDataType.values)}."]
    if data.get("target", ScoreTarget.TRACE) not in ScoreTarget.values:
        errors["target"] = [f"One of {', '.join(ScoreTarget.values)}."]
    if data_type == ScoreDataType.NUMERIC:
        low, high, step = data.get("min_value"), data.get("max_value"), data.get("step")
        if not _is_number(low) or not _is_number(high):
            errors["min_value"] = ["A numeric config needs min_value and max_value."]
        elif low >= high:
            errors["max_value"] = ["max_value must be greater than min_value."]
        elif step is not None and (not _is_number(step) or step <= 0 or step > high - low):
            errors["step"] = ["step must be positive and no larger than the range."]
    else:
        data["min_value"] = data["max_value"] = data["step"] = None
    if data_type == ScoreDataType.CATEGORICAL:
        options = data.get("options")
        if not isinstance(options, list) or len(options) < 2:
            errors["options"] = ["A categorical config needs at least two options."]
        else:
            labels = []
            for option in options:
                if (
                    not isinstance(option, dict)
                    or set(option) != {"label", "value"}
                    or not isinstance(option["label"], str)
                    or not option["label"].strip()
                    or not _is_number(option["value"])
                ):
                    errors["options"] = [
                        'Each option is {"label": non-empty text, "value": a number}.'
                    ]
                    break
                labels.append(option["label"])
            if "options" not in errors and len(set(labels)) != len(labels):
                errors["options"] = ["Option labels must be unique."]
    else:
        data["options"] = []
    if data.get("writes_expected_output") and data_type not in (
        ScoreDataType.CATEGORICAL,
        ScoreDataType.TEXT,
    ):
        errors["writes_expected_output"] = [
            "Only a categorical or text config can write to the expected output."
        ]
    if errors:
        raise DomainError("Invalid score config.", details=errors)
    data["rubric"] = _validate_rubric(data.get("rubric"))
    return data


def _config_snapshot(config: ScoreConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in CONFIG_DEFINITION_FIELDS}


def _freeze_version(config: ScoreConfig, actor: Actor) -> None:
    ScoreConfigVersion.objects.create(
        organization_id=config.organization_id,
        config=config,
        version=config.version,
        snapshot=_config_snapshot(config),
        created_by=actor.user,
    )


def score_config_create(*, actor: Actor, project: Project, **fields: Any) -> ScoreConfig:
    data = _validate_config_definition(dict(fields))
    with audit.acting_as(actor), transaction.atomic():
        if ScoreConfig.objects.filter(project=project, name=data["name"]).exists():
            raise Conflict(
                f"A score config named '{data['name']}' exists.", details={"name": ["taken"]}
            )
        config = ScoreConfig.objects.create(project=project, created_by=actor.user, **data)
        _freeze_version(config, actor)
    return config


def score_config_update(*, actor: Actor, config: ScoreConfig, **changes: Any) -> ScoreConfig:
    """Edits make a new version; annotations keep pointing at the version they answered."""
    with audit.acting_as(actor), transaction.atomic():
        config = ScoreConfig.objects.select_for_update().get(pk=config.pk)
        if config.archived_at:
            raise Conflict("This score config is archived.", code="archived")
        current = _config_snapshot(config)
        merged = _validate_config_definition({**current, **changes})
        if merged == current:
            return config
        if (
            merged["name"] != config.name
            and ScoreConfig.objects.filter(project_id=config.project_id, name=merged["name"])
            .exclude(pk=config.pk)
            .exists()
        ):
            raise Conflict(
                f"A score config named '{merged['name']}' exists.", details={"name": ["taken"]}
            )
        for name, value in merged.items():
            setattr(config, name, value)
        config.version += 1
        config.updated_at = _now()
        config.save()
        _freeze_version(config, actor)
    return config


def score_config_archive(*, actor: Actor, config: ScoreConfig) -> ScoreConfig:
    """Archived configs leave new forms but keep every answer that used them."""
    with audit.acting_as(actor), transaction.atomic():
        config = ScoreConfig.objects.select_for_update().get(pk=config.pk)
        if config.archived_at is None:
            config.archived_at = _now()
            config.save()
    return config


# --- answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormQuestion:
    config: ScoreConfig
    threshold: float | None


def queue_form(queue: ReviewQueue) -> list[FormQuestion]:
    fields = (
        QueueFormField.objects.filter(queue=queue).select_related("config").order_by("position")
    )
    return [FormQuestion(f.config, f.adjudication_threshold) for f in fields]


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


# --- queues --------------------------------------------------------------------------------


def _set_form(queue: ReviewQueue, form: Sequence[Mapping[str, Any]]) -> None:
    config_ids = [int(entry["config_id"]) for entry in form]
    if len(set(config_ids)) != len(config_ids):
        raise DomainError("A config appears twice in the form.", details={"form": ["duplicate"]})
    configs = {
        c.pk: c for c in ScoreConfig.objects.filter(project_id=queue.project_id, pk__in=config_ids)
    }
    errors = {}
    for position, entry in enumerate(form):
        config = configs.get(int(entry["config_id"]))
        if config is None:
            errors[f"form[{position}]"] = ["No such score config in this project."]
        elif config.archived_at:
            errors[f"form[{position}]"] = [f"{config.name} is archived."]
        elif config.target == ScoreTarget.DATASET_ITEM:
            errors[f"form[{position}]"] = [f"{config.name} targets dataset items, not traces."]
        threshold = entry.get("adjudication_threshold")
        if threshold is not None and (not _is_number(threshold) or threshold < 0):
            errors[f"form[{position}]"] = ["adjudication_threshold must be zero or more."]
    if errors:
        raise DomainError("Invalid form.", details=errors)
    QueueFormField.objects.filter(queue=queue).delete()
    QueueFormField.objects.bulk_create(
        QueueFormField(
            organization_id=queue.organization_id,
            queue=queue,
            config=configs[int(entry["config_id"])],
            position=position,
            adjudication_threshold=entry.get("adjudication_threshold"),
        )
        for position, entry in enumerate(form)
    )


def _set_pool(queue: ReviewQueue, reviewers: Sequence[Mapping[str, Any]]) -> None:
    from hitl.api.views import membership_sees_project

    ids = [int(entry["membership_id"]) for entry in reviewers]
    if len(set(ids)) != len(ids):
        raise DomainError("A member appears twice in the pool.", details={"reviewers": ["dup"]})
    memberships = {
        m.pk: m
        for m in Membership.objects.filter(pk__in=ids)
        .select_related("user")
        .prefetch_related("projects")
    }
    project = Project.objects.get(pk=queue.project_id)
    errors = {}
    for index, entry in enumerate(reviewers):
        membership = memberships.get(int(entry["membership_id"]))
        if membership is None:
            errors[f"reviewers[{index}]"] = ["No such member in this organization."]
        elif membership.role not in REVIEW_ROLES:
            errors[f"reviewers[{index}]"] = [
                f"{membership.user.email} is a {membership.role}, who cannot review."
            ]
        elif not membership_sees_project(membership, project):
            errors[f"reviewers[{index}]"] = [f"{membership.user.email} cannot see this project."]
    if errors:
        raise DomainError("Invalid reviewer pool.", details=errors)
    QueueReviewer.objects.filter(queue=queue).delete()
    QueueReviewer.objects.bulk_create(
        QueueReviewer(
            organization_id=queue.organization_id,
            queue=queue,
            membership=memberships[int(entry["membership_id"])],
            skills=list(entry.get("skills") or []),
            languages=list(entry.get("languages") or []),
            is_senior=bool(entry.get("is_senior", False)),
        )
        for entry in reviewers
    )


def _check_queue_settings(fields: Mapping[str, Any]) -> None:
    errors = {}
    if "overlap" in fields and not 1 <= int(fields["overlap"]) <= 20:
        errors["overlap"] = ["Between 1 and 20 reviews per item."]
    if "lease_ttl_seconds" in fields and not (
        LEASE_TTL_RANGE[0] <= int(fields["lease_ttl_seconds"]) <= LEASE_TTL_RANGE[1]
    ):
        errors["lease_ttl_seconds"] = [f"Between {LEASE_TTL_RANGE[0]} s and 7 days."]
    if "audit_sample_rate" in fields and not 0 <= float(fields["audit_sample_rate"]) <= 1:
        errors["audit_sample_rate"] = ["A fraction between 0 and 1."]
    if errors:
        raise DomainError("Invalid queue settings.", details=errors)


QUEUE_SETTINGS = (
    "name",
    "description",
    "overlap",
    "assignment_strategy",
    "blind_mode",
    "lease_ttl_seconds",
    "priority",
    "include_explanation",
    "include_expected_output",
    "audit_sample_rate",
)


def queue_create(
    *,
    actor: Actor,
    project: Project,
    form: Sequence[Mapping[str, Any]] = (),
    reviewers: Sequence[Mapping[str, Any]] = (),
    **settings_: Any,
) -> ReviewQueue:
    _check_queue_settings(settings_)
    with audit.acting_as(actor), transaction.atomic():
        if ReviewQueue.objects.filter(project=project, name=settings_["name"]).exists():
            raise Conflict(
                f"A queue named '{settings_['name']}' exists.", details={"name": ["taken"]}
            )
        queue = ReviewQueue.objects.create(project=project, created_by=actor.user, **settings_)
        _set_form(queue, form)
        _set_pool(queue, reviewers)
    return queue


def queue_update(
    *,
    actor: Actor,
    queue: ReviewQueue,
    form: Sequence[Mapping[str, Any]] | None = None,
    reviewers: Sequence[Mapping[str, Any]] | None = None,
    **changes: Any,
) -> ReviewQueue:
    _check_queue_settings(changes)
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.select_for_update().get(pk=queue.pk)
        if (
            "name" in changes
            and ReviewQueue.objects.filter(project_id=queue.project_id, name=changes["name"])
            .exclude(pk=queue.pk)
            .exists()
        ):
            raise Conflict(
                f"A queue named '{changes['name']}' exists.", details={"name": ["taken"]}
            )
        old_overlap = queue.overlap
        for name, value in changes.items():
            setattr(queue, name, value)
        queue.save()
        if form is not None:
            _set_form(queue, form)
        if reviewers is not None:
            _set_pool(queue, reviewers)
        if queue.overlap != old_overlap:
            # Counters only (not historied): free or close slots on open items.
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE review_queueitem SET open_slots = GREATEST(0, %s - live_leases"
                    " - submissions) WHERE queue_id = %s AND organization_id = %s"
                    " AND status = 'open'",
                    [queue.overlap, queue.pk, queue.organization_id],
                )
            # A lower overlap completes items that already have enough reviews.
            if queue.overlap < old_overlap:
                form = queue_form(queue)
                done = QueueItem.objects.select_for_update().filter(
                    queue=queue, status=ItemStatus.OPEN, submissions__gte=queue.overlap
                )
                for item in done.select_related("queue").order_by("id"):
                    _close_item(item, form)
    return queue


def queue_archive(*, actor: Actor, queue: ReviewQueue) -> ReviewQueue:
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.select_for_update().get(pk=queue.pk)
        if queue.archived_at is None:
            queue.archived_at = _now()
            queue.save()
    return queue


# --- items in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemTargetRef:
    target_type: str
    trace_id: int | None
    span_id: int | None = None
    thread_id: int | None = None


_ITEM_COLUMNS = (
    "organization_id",
    "queue_id",
    "project_id",
    "target_type",
    "trace_id",
    "span_id",
    "thread_id",
    "source",
    "routing_rule_id",
    "signal",
    "source_detail",
    "priority",
    "required_skills",
    "language",
    "assignees",
    "status",
    "audit_status",
    "live_leases",
    "submissions",
    "open_slots",
    "added_by_id",
    "created_at",
)


def _pool_user_ids(queue: ReviewQueue) -> list[int]:
    return list(
        QueueReviewer.objects.filter(queue=queue)
        .order_by("id")
        .values_list("membership__user_id", flat=True)
    )


def _round_robin_assignees(queue: ReviewQueue, count: int) -> list[list[int]]:
    """The next ``count`` items' assignees, N distinct pool members each, in turn."""
    pool = _pool_user_ids(queue)
    if not pool:
        return [[] for _ in range(count)]
    width = min(queue.overlap, len(pool))
    cursor = queue.round_robin_cursor
    result = []
    for _ in range(count):
        result.append([pool[(cursor + k) % len(pool)] for k in range(width)])
        cursor = (cursor + 1) % len(pool)
    # The cursor churns on every push: kept out of history, written directly.
    ReviewQueue.objects.filter(pk=queue.pk).update(round_robin_cursor=cursor)
    queue.round_robin_cursor = cursor
    return result


def _insert_items(
    *,
    queue: ReviewQueue,
    targets: Sequence[ItemTargetRef],
    source: str,
    actor: Actor,
    priority: int = 0,
    routing_rule: RoutingRule | None = None,
    signal: str = "",
    source_detail: Mapping[str, Any] | None = None,
    required_skills: Sequence[str] = (),
    language: str = "",
    assignees: Sequence[int] = (),
) -> list[QueueItem]:
    """Inserts the items not yet in the queue (ON CONFLICT DO NOTHING on the per-target
    unique constraints) and records their creation history. Returns the new items."""
    if not targets:
        return []
    if queue.assignment_strategy == AssignmentStrategy.ROUND_ROBIN and not assignees:
        pushed = _round_robin_assignees(queue, len(targets))
    else:
        pushed = [list(assignees)] * len(targets)
    now = _now()
    detail = json.dumps(dict(source_detail or {}))
    rows, params = [], []
    placeholders = (
        "(" + ", ".join("%s::jsonb" if c == "source_detail" else "%s" for c in _ITEM_COLUMNS) + ")"
    )
    for target, item_assignees in zip(targets, pushed, strict=True):
        rows.append(placeholders)
        params.extend(
            [
                queue.organization_id,
                queue.pk,
                queue.project_id,
                target.target_type,
                target.trace_id,
                target.span_id,
                target.thread_id,
                source,
                routing_rule.pk if routing_rule else None,
                signal,
                detail,
                priority,
                list(required_skills),
                language,
                item_assignees,
                ItemStatus.OPEN,
                AuditStatus.NOT_SAMPLED,
                0,
                0,
                queue.overlap,
                actor.user.pk if actor.user else None,
                now,
            ]
        )
    # Fixed column names; every value is a bound parameter.
    columns, values = ", ".join(_ITEM_COLUMNS), ", ".join(rows)
    sql = f"INSERT INTO review_queueitem ({columns}) VALUES {values} ON CONFLICT DO NOTHING"  # noqa: S608
    sql += " RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        new_ids = [row[0] for row in cursor.fetchall()]
    items = list(QueueItem.objects.filter(pk__in=new_ids).order_by("id"))
    audit.bulk_record_created(items, QueueItem)
    return items


def _resolve_target(
    project: Project, *, trace_id: int | None, span_id: int | None, thread_id: int | None
) -> ItemTargetRef:
    given = [name for name, v in (("trace_id", trace_id), ("span_id", span_id),
                                  ("thread_id", thread_id)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise DomainError(
            "Name exactly one of trace_id, span_id or thread_id.",
            details={"target": ["exactly one of trace_id, span_id, thread_id"]},
        )
    # The tenant manager and the project filter: another organization's id is unknown.
    if trace_id is not None:
        if not Trace.objects.filter(project=project, pk=trace_id).exists():
            raise DomainError(
                f"No trace {trace_id} in this project.", details={"trace_id": ["not found"]}
            )
        return ItemTargetRef(ItemTarget.TRACE, trace_id)
    if span_id is not None:
        span = Span.objects.filter(project=project, pk=span_id).values("trace_id").first()
        if span is None:
            raise DomainError(
                f"No span {span_id} in this project.", details={"span_id": ["not found"]}
            )
        return ItemTargetRef(ItemTarget.SPAN, span["trace_id"], span_id=span_id)
    if not Thread.objects.filter(project=project, pk=thread_id).exists():
        raise DomainError(
            f"No thread {thread_id} in this project.", details={"thread_id": ["not found"]}
        )
    return ItemTargetRef(ItemTarget.THREAD, None, thread_id=thread_id)


def _check_assignees(queue: ReviewQueue, assignees: Sequence[int]) -> list[int]:
    pool = set(_pool_user_ids(queue))
    outside = [a for a in assignees if a not in pool]
    if outside:
        raise DomainError(
            "Assignees must be in the queue's reviewer pool.",
            details={"assignees": [f"user {a} is not in the pool" for a in outside]},
        )
    return list(dict.fromkeys(assignees))


def queue_item_add(
    *,
    actor: Actor,
    queue: ReviewQueue,
    trace_id: int | None = None,
    span_id: int | None = None,
    thread_id: int | None = None,
    priority: int = 0,
    required_skills: Sequence[str] = (),
    language: str = "",
    assignees: Sequence[int] = (),
) -> QueueItem:
    """Adds one trace, span or thread by hand."""
    with audit.acting_as(actor), transaction.atomic():
        _check_open(queue)
        project = Project.objects.get(pk=queue.project_id)
        target = _resolve_target(project, trace_id=trace_id, span_id=span_id, thread_id=thread_id)
        items = _insert_items(
            queue=queue,
            targets=[target],
            source=ItemSource.MANUAL,
            actor=actor,
            priority=priority,
            required_skills=required_skills,
            language=language,
            assignees=_check_assignees(queue, assignees),
        )
        if not items:
            existing = QueueItem.objects.filter(
                queue=queue,
                target_type=target.target_type,
                **{f"{target.target_type}_id": getattr(target, f"{target.target_type}_id")},
            ).first()
            raise Conflict(
                "This target is already in the queue.",
                code="already_queued",
                details={"item_id": existing.pk if existing else None},
            )
    return items[0]


def _check_open(queue: ReviewQueue) -> None:
    if queue.archived_at:
        raise Conflict("This queue is archived.", code="archived")


def queue_items_add_from_filter(
    *,
    actor: Actor,
    queue: ReviewQueue,
    params: Mapping[str, Any],
    priority: int = 0,
    required_skills: Sequence[str] = (),
    language: str = "",
) -> dict[str, int]:
    """Adds every trace the filter matches (all pages), skipping those already queued."""
    from traces import selectors as trace_selectors

    normalized = trace_selectors.validate_trace_filter(params)
    with audit.acting_as(actor), transaction.atomic():
        _check_open(queue)
        project = Project.objects.get(pk=queue.project_id)
        matching = trace_selectors.traces_matching(project=project, params=normalized)
        ids = matching.order_by().values_list("id", flat=True)
        matched = ids.count()
        if matched > MAX_BULK_ADD:
            raise DomainError(
                f"The filter matches {matched} traces; at most {MAX_BULK_ADD} can be added at "
                "once. Narrow the filter.",
                code="too_many",
            )
        added, last_id = 0, 0
        while True:
            chunk = list(ids.filter(id__gt=last_id).order_by("id")[:BULK_CHUNK])
            if not chunk:
                break
            last_id = chunk[-1]
            added += len(
                _insert_items(
                    queue=queue,
                    targets=[ItemTargetRef(ItemTarget.TRACE, t) for t in chunk],
                    source=ItemSource.BULK_FILTER,
                    actor=actor,
                    priority=priority,
                    source_detail={"filter": normalized},
                    required_skills=required_skills,
                    language=language,
                )
            )
    return {"matched": matched, "added": added, "already_queued": matched - added}


def queue_items_update(
    *,
    actor: Actor,
    queue: ReviewQueue,
    item_ids: Sequence[int],
    priority: int | None = None,
    assignees: Sequence[int] | None = None,
) -> list[QueueItem]:
    """Re-prioritizes or (re)assigns many items at once, one history row each."""
    with audit.acting_as(actor), transaction.atomic():
        items = list(
            QueueItem.objects.select_for_update()
            .filter(queue=queue, pk__in=item_ids)
            .order_by("id")
        )
        if len(items) != len(set(item_ids)):
            raise NotFound("One or more items are not in this queue.")
        fields = []
        if priority is not None:
            fields.append("priority")
        if assignees is not None:
            assignees = _check_assignees(queue, assignees)
            fields.append("assignees")
        for item in items:
            if priority is not None:
                item.priority = priority
            if assignees is not None:
                item.assignees = list(assignees)
        if fields:
            audit.bulk_update_with_history(items, QueueItem, fields)
    return items


def queue_item_remove(*, actor: Actor, item: QueueItem) -> None:
    with audit.acting_as(actor), transaction.atomic():
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if item.submissions or Annotation.objects.filter(item=item).exists():
            raise Conflict(
                "This item has submitted reviews; it stays for the record.", code="has_reviews"
            )
        item.delete()


# --- claiming ------------------------------------------------------------------------------


_CLAIM_SQL = """
WITH pool AS (
    SELECT m.role, qr.skills, qr.languages
    FROM review_queuereviewer qr
    JOIN projects_membership m ON m.id = qr.membership_id
    WHERE qr.queue_id = %(queue_id)s AND qr.organization_id = %(organization_id)s
      AND m.user_id = %(user_id)s
), picked AS (
    SELECT qi.id FROM review_queueitem qi
    WHERE qi.queue_id = %(queue_id)s AND qi.organization_id = %(organization_id)s
      AND qi.status = 'open' AND qi.open_slots > 0
      AND EXISTS (SELECT 1 FROM pool WHERE pool.role = ANY(%(review_roles)s::varchar[]))
      AND NOT EXISTS (
          SELECT 1 FROM review_assignment a
          WHERE a.item_id = qi.id AND a.reviewer_id = %(user_id)s)
      {strategy}
    ORDER BY qi.priority DESC, qi.created_at, qi.id
    LIMIT 1
    FOR UPDATE OF qi SKIP LOCKED
), bumped AS (
    UPDATE review_queueitem qi
    SET live_leases = qi.live_leases + 1, open_slots = qi.open_slots - 1
    FROM picked WHERE qi.id = picked.id
    RETURNING qi.id
), leased AS (
    INSERT INTO review_assignment
        (organization_id, queue_id, item_id, reviewer_id, state, leased_at, expires_at,
         skip_reason)
    SELECT %(organization_id)s, %(queue_id)s, bumped.id, %(user_id)s, 'leased',
           %(now)s, %(expires_at)s, ''
    FROM bumped
    RETURNING id, item_id
)
SELECT (SELECT role FROM pool),
       EXISTS (SELECT 1 FROM review_assignment a
               WHERE a.queue_id = %(queue_id)s AND a.state = 'leased'
                 AND a.expires_at <= %(now)s),
       leased.id, leased.item_id
FROM (SELECT 1) AS one LEFT JOIN leased ON true
"""

_STRATEGY_SQL = {
    AssignmentStrategy.PULL: "",
    AssignmentStrategy.ROUND_ROBIN: "AND %(user_id)s = ANY(qi.assignees)",
    AssignmentStrategy.MANUAL: "AND %(user_id)s = ANY(qi.assignees)",
    AssignmentStrategy.SKILLS: (
        "AND qi.required_skills <@ (SELECT skills FROM pool)"
        " AND (qi.language = '' OR qi.language IN (SELECT unnest(languages) FROM pool))"
    ),
}


def queue_claim_next(*, actor: Actor, queue: ReviewQueue) -> Assignment | None:
    """Leases the next item for the acting reviewer, or None when nothing is left.

    One statement (one round trip, server-side prepared): check the reviewer is in the
    pool, pick the first claimable item in claim order that they never held, skipping
    rows other claimers hold locked, bump its counters and insert the lease. The row
    lock plus ``open_slots > 0`` (rechecked on the locked row) keep live leases plus
    submissions at or under the overlap whatever the concurrency. Overdue leases found
    on the way are expired at once, and the claim retried if it came back empty.
    """
    user = _require_person(actor, "Claiming an item")
    _check_open(queue)
    for attempt in range(2):
        now = _now()
        params = {
            "queue_id": queue.pk,
            "organization_id": queue.organization_id,
            "user_id": user.pk,
            "now": now,
            "expires_at": now + timedelta(seconds=queue.lease_ttl_seconds),
            "review_roles": sorted(REVIEW_ROLES),
        }
        sql = _CLAIM_SQL.format(strategy=_STRATEGY_SQL[queue.assignment_strategy])
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            role, overdue, assignment_id, item_id = cursor.fetchone()
        if role is None:
            raise PermissionDenied("You are not in this queue's reviewer pool.", code="not_in_pool")
        if role not in REVIEW_ROLES:
            raise PermissionDenied(f"Your role ({role}) cannot review.", code="not_a_reviewer")
        if overdue:
            leases_expire(queue_id=queue.pk, limit=200)
        if assignment_id is not None or not overdue or attempt:
            break
    if assignment_id is None:
        return None
    return Assignment(
        pk=assignment_id,
        organization_id=queue.organization_id,
        queue_id=queue.pk,
        item_id=item_id,
        reviewer_id=user.pk,
        state=AssignmentState.LEASED,
        leased_at=now,
        expires_at=params["expires_at"],
    )


def _adjust_counters(item: QueueItem, *, live: int = 0, submitted: int = 0, slots: int = 0) -> None:
    """Moves a locked item's claim counters, in the row and in memory. The counters are
    not historied (they change on every claim); status changes are saved with history."""
    QueueItem.objects.filter(pk=item.pk).update(
        live_leases=F("live_leases") + live,
        submissions=F("submissions") + submitted,
        open_slots=F("open_slots") + slots,
    )
    item.live_leases += live
    item.submissions += submitted
    item.open_slots += slots


def _lock_assignment(assignment_id: int, user: Any) -> tuple[QueueItem, Assignment]:
    """Locks an assignment's item, then the assignment (the house lock order)."""
    item = (
        QueueItem.objects.select_for_update(of=("self",))
        .select_related("queue")
        .filter(pk=Assignment.objects.filter(pk=assignment_id).values("item_id")[:1])
        .first()
    )
    if item is None:
        raise NotFound("No such lease.")
    assignment = Assignment.objects.select_for_update().get(pk=assignment_id)
    if assignment.reviewer_id != user.pk:
        raise PermissionDenied("This lease belongs to another reviewer.", code="not_your_lease")
    if assignment.state != AssignmentState.LEASED:
        raise Conflict(
            f"This lease is already {assignment.state}.",
            code=f"lease_{assignment.state}",
        )
    if assignment.expires_at <= _now():
        raise Conflict(
            f"Your lease expired at {assignment.expires_at.isoformat()}; the item went back "
            "to the pool. Claim the next item.",
            code="lease_expired",
        )
    return item, assignment


_END_LEASE_SQL = """
WITH ended AS (
    UPDATE review_assignment SET state = %(state)s, ended_at = %(now)s,
                                 skip_reason = %(reason)s
    WHERE id = %(assignment_id)s AND organization_id = %(organization_id)s
)
UPDATE review_queueitem
SET live_leases = live_leases - 1, submissions = submissions + %(submitted)s,
    open_slots = open_slots + %(freed)s
WHERE id = %(item_id)s AND organization_id = %(organization_id)s
"""


def _end_lease(item: QueueItem, assignment: Assignment, state: str, reason: str = "") -> None:
    """Ends a locked lease and moves its item's counters, in one statement (neither the
    lease nor the counters are historied; the annotation and status changes are)."""
    submitted = state == AssignmentState.SUBMITTED
    assignment.state, assignment.ended_at, assignment.skip_reason = state, _now(), reason
    with connection.cursor() as cursor:
        cursor.execute(
            _END_LEASE_SQL,
            {
                "state": state,
                "now": assignment.ended_at,
                "reason": reason,
                "assignment_id": assignment.pk,
                "organization_id": item.organization_id,
                "submitted": int(submitted),
                "freed": 0 if submitted else 1,
                "item_id": item.pk,
            },
        )
    item.live_leases -= 1
    item.submissions += int(submitted)
    item.open_slots += 0 if submitted else 1


def _end_without_review(item: QueueItem, assignment: Assignment, state: str, reason: str) -> None:
    _end_lease(item, assignment, state, reason)
    _repush(item, [assignment.reviewer_id])


def _repush(item: QueueItem, leaving: Sequence[int]) -> None:
    """A round-robin item whose assignee gave it back goes on to the next pool member
    (after the one leaving, in pool order) who has not had it yet."""
    queue = item.queue
    if queue.assignment_strategy != AssignmentStrategy.ROUND_ROBIN:
        return
    leaving = list(leaving)
    seen = set(Assignment.objects.filter(item=item).values_list("reviewer_id", flat=True))
    seen |= set(leaving)
    keep = [a for a in item.assignees if a not in leaving]
    pool = _pool_user_ids(queue)
    for leaver in leaving:
        after = pool.index(leaver) + 1 if leaver in pool else 0
        rotated = pool[after:] + pool[:after]
        candidates = [u for u in rotated if u not in seen and u not in keep]
        if candidates:
            keep.append(candidates[0])
    if keep != list(item.assignees):
        item.assignees = keep
        item.save()


def assignment_skip(*, actor: Actor, assignment_id: int, reason: str) -> Assignment:
    user = _require_person(actor, "Skipping an item")
    if not reason or not reason.strip():
        raise DomainError("Say why you skip this item.", details={"reason": ["required"]})
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user)
        _end_without_review(item, assignment, AssignmentState.SKIPPED, reason.strip())
    return assignment


def assignment_release(*, actor: Actor, assignment_id: int) -> Assignment:
    user = _require_person(actor, "Releasing an item")
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user)
        _end_without_review(item, assignment, AssignmentState.RELEASED, "")
    return assignment


def assignment_submit(
    *,
    actor: Actor,
    assignment_id: int,
    values: Mapping[str, Any],
    explanation: str = "",
    expected_output: Any = None,
    failure_modes: Sequence[str] = (),
) -> Annotation:
    """Records one reviewer's answers for the item they hold, as human scores too."""
    user = _require_person(actor, "Submitting a review")
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user)
        form = queue_form(item.queue)
        cleaned, versions = validate_answers(form, values)
        now = _now()
        annotation = Annotation.objects.create(
            project_id=item.project_id,
            queue_id=item.queue_id,
            item=item,
            assignment=assignment,
            reviewer=user,
            target_type=item.target_type,
            trace_id=item.trace_id,
            span_id=item.span_id,
            thread_id=item.thread_id,
            values=cleaned,
            config_versions=versions,
            explanation=explanation or "",
            expected_output=expected_output_of(form, cleaned, expected_output),
            failure_modes=list(dict.fromkeys(failure_modes)),
            opened_at=assignment.leased_at,
            submitted_at=now,
            updated_at=now,
        )
        _write_scores(
            form=form,
            values=cleaned,
            item=item,
            author=user,
            link={"annotation_id": annotation.pk},
        )
        _end_lease(item, assignment, AssignmentState.SUBMITTED)
        if item.submissions >= item.queue.overlap and item.status == ItemStatus.OPEN:
            _close_item(item, form)
    return annotation


# --- completion, disagreement, adjudication -----------------------------------------------


def item_disagreement(
    form: Sequence[FormQuestion], annotations: Sequence[Annotation]
) -> dict[str, Any]:
    """Per config id, how the answers spread when they spread beyond its threshold."""
    found: dict[str, Any] = {}
    for question in form:
        if question.threshold is None:
            continue
        key = str(question.config.pk)
        answers = [a.values[key] for a in annotations if key in a.values]
        if len(answers) < 2:
            continue
        kind = question.config.data_type
        if kind == ScoreDataType.NUMERIC:
            spread = max(answers) - min(answers)
        elif kind in (ScoreDataType.CATEGORICAL, ScoreDataType.BOOLEAN):
            most_common = Counter(json.dumps(a) for a in answers).most_common(1)[0][1]
            spread = 1 - most_common / len(answers)
        else:
            continue
        if spread > question.threshold + 1e-12:
            found[key] = {
                "config": question.config.name,
                "answers": answers,
                "spread": spread,
                "threshold": question.threshold,
            }
    return found


def _sampled(seed: str, rate: float) -> bool:
    """A deterministic draw: the same seed always decides the same way (idempotent)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15) < rate


def _close_item(item: QueueItem, form: Sequence[FormQuestion]) -> None:
    """All N reviews are in: complete, or to adjudication when they disagree."""
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


def annotation_update(
    *,
    actor: Actor,
    annotation_id: int,
    expected_version: int,
    values: Mapping[str, Any] | None = None,
    explanation: str | None = None,
    expected_output: Any = None,
    failure_modes: Sequence[str] | None = None,
) -> Annotation:
    """Edits a submitted annotation. ``expected_version`` is the version the editor
    read; if someone saved since, the edit is refused (409), never merged silently."""
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
    return adjudication


# --- lease expiry --------------------------------------------------------------------------


def leases_expire(*, queue_id: int | None = None, limit: int = 1000) -> int:
    """Returns overdue leases' items to the pool. Locks items first (skipping those
    busy right now; the next run gets them), then their assignments. Idempotent."""
    now = _now()
    due = Assignment.objects.filter(state=AssignmentState.LEASED, expires_at__lte=now)
    if queue_id is not None:
        due = due.filter(queue_id=queue_id)
    item_ids = sorted(set(due.values_list("item_id", flat=True)[:limit]))
    if not item_ids:
        return 0
    expired = 0
    with audit.acting_as(Actor.system()), transaction.atomic():
        items = list(
            QueueItem.objects.select_for_update(skip_locked=True)
            .select_related("queue")
            .filter(pk__in=item_ids)
            .order_by("id")
        )
        for item in items:
            overdue = list(
                Assignment.objects.select_for_update().filter(
                    item=item, state=AssignmentState.LEASED, expires_at__lte=now
                )
            )
            if not overdue:
                continue
            Assignment.objects.filter(pk__in=[a.pk for a in overdue]).update(
                state=AssignmentState.EXPIRED, ended_at=now
            )
            _adjust_counters(item, live=-len(overdue), slots=len(overdue))
            _repush(item, [a.reviewer_id for a in overdue])
            expired += len(overdue)
    return expired


# --- comments ------------------------------------------------------------------------------

MENTION = re.compile(r"@([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")


def _mentioned_user_ids(project: Project, body: str) -> list[int]:
    from hitl.api.views import membership_sees_project

    emails = {m.lower().rstrip(".") for m in MENTION.findall(body)}
    if not emails:
        return []
    memberships = Membership.objects.filter(user__email__in=emails).select_related("user")
    return sorted(m.user_id for m in memberships if membership_sees_project(m, project))


def comment_create(
    *,
    actor: Actor,
    project: Project,
    body: str,
    trace_id: int | None = None,
    span_id: int | None = None,
    item_id: int | None = None,
) -> Comment:
    user = _require_person(actor, "Commenting")
    body = (body or "").strip()
    if not body:
        raise DomainError("A comment needs text.", details={"body": ["required"]})
    given = [v for v in (trace_id, span_id, item_id) if v is not None]
    if len(given) != 1:
        raise DomainError(
            "Name exactly one of trace_id, span_id or item_id.",
            details={"target": ["exactly one of trace_id, span_id, item_id"]},
        )
    with audit.acting_as(actor), transaction.atomic():
        fields: dict[str, Any] = {}
        if trace_id is not None:
            if not Trace.objects.filter(project=project, pk=trace_id).exists():
                raise DomainError(
                    f"No trace {trace_id} in this project.", details={"trace_id": ["not found"]}
                )
            fields = {"trace_id": trace_id}
        elif span_id is not None:
            span = Span.objects.filter(project=project, pk=span_id).values("trace_id").first()
            if span is None:
                raise DomainError(
                    f"No span {span_id} in this project.", details={"span_id": ["not found"]}
                )
            fields = {"trace_id": span["trace_id"], "span_id": span_id}
        else:
            item = QueueItem.objects.filter(project=project, pk=item_id).first()
            if item is None:
                raise DomainError(
                    f"No queue item {item_id} in this project.",
                    details={"item_id": ["not found"]},
                )
            fields = {"item_id": item.pk, "trace_id": item.trace_id, "span_id": item.span_id}
        return Comment.objects.create(
            project=project,
            author=user,
            body=body,
            mentions=_mentioned_user_ids(project, body),
            **fields,
        )


def comment_update(*, actor: Actor, comment: Comment, body: str) -> Comment:
    user = _require_person(actor, "Editing a comment")
    body = (body or "").strip()
    if not body:
        raise DomainError("A comment needs text.", details={"body": ["required"]})
    with audit.acting_as(actor), transaction.atomic():
        comment = Comment.objects.select_for_update().get(pk=comment.pk)
        if comment.author_id != user.pk:
            raise PermissionDenied("Only its author can edit a comment.", code="not_author")
        comment.body = body
        comment.mentions = _mentioned_user_ids(Project.objects.get(pk=comment.project_id), body)
        comment.edited_at = _now()
        comment.save()
    return comment


def comment_delete(*, actor: Actor, comment: Comment, membership: Membership | None) -> None:
    with audit.acting_as(actor), transaction.atomic():
        is_author = actor.user is not None and comment.author_id == actor.user.pk
        if not is_author and (membership is None or membership.role not in MANAGE_ROLES):
            raise PermissionDenied("Only its author or a manager can delete a comment.")
        comment.delete()


# --- routing rules -------------------------------------------------------------------------


def _check_rule(fields: Mapping[str, Any]) -> dict[str, Any]:
    from traces import selectors as trace_selectors

    data = dict(fields)
    errors = {}
    if "sampling_rate" in data and not 0 < float(data["sampling_rate"]) <= 1:
        errors["sampling_rate"] = ["A fraction above 0 and at most 1."]
    if data.get("daily_cap") is not None and int(data["daily_cap"]) < 1:
        errors["daily_cap"] = ["At least 1, or null for no cap."]
    if errors:
        raise DomainError("Invalid routing rule.", details=errors)
    if "filter_params" in data:
        if not isinstance(data["filter_params"], Mapping) or not data["filter_params"]:
            raise DomainError(
                "A routing rule needs a trace filter.", details={"filter_params": ["required"]}
            )
        try:
            data["filter_params"] = trace_selectors.validate_trace_filter(data["filter_params"])
        except DomainError as exc:
            raise DomainError(
                "Invalid trace filter.", details={"filter_params": exc.details}
            ) from exc
    return data


def routing_rule_create(
    *, actor: Actor, project: Project, queue_id: int, **fields: Any
) -> RoutingRule:
    data = _check_rule(fields)
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.filter(project=project, pk=queue_id).first()
        if queue is None:
            raise DomainError(
                f"No queue {queue_id} in this project.", details={"queue_id": ["not found"]}
            )
        _check_open(queue)
        return RoutingRule.objects.create(
            project=project, queue=queue, created_by=actor.user, **data
        )


def routing_rule_update(*, actor: Actor, rule: RoutingRule, **changes: Any) -> RoutingRule:
    data = _check_rule(changes)
    with audit.acting_as(actor), transaction.atomic():
        rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
        if "queue_id" in data:
            queue = ReviewQueue.objects.filter(
                project_id=rule.project_id, pk=data.pop("queue_id")
            ).first()
            if queue is None:
                raise DomainError("No such queue in this project.", details={"queue_id": ["?"]})
            rule.queue = queue
        for name, value in data.items():
            setattr(rule, name, value)
        rule.save()
    return rule


def routing_rule_delete(*, actor: Actor, rule: RoutingRule) -> None:
    with audit.acting_as(actor), transaction.atomic():
        rule.delete()


def routing_enqueue_for_new_traces(*, project: Project, trace_ids: Sequence[int]) -> None:
    """Called by ingestion inside its transaction: one indexed probe, and the routing
    task enqueued once the traces are committed."""
    if not trace_ids:
        return
    if not RoutingRule.objects.filter(project=project, enabled=True).exists():
        return
    from review.tasks import route_new_traces

    ids = sorted({int(t) for t in trace_ids})
    organization_id, project_id = project.organization_id, project.pk
    transaction.on_commit(
        lambda: route_new_traces.delay(
            organization_id=organization_id, project_id=project_id, trace_ids=ids
        )
    )


def routing_apply(*, project_id: int, trace_ids: Sequence[int]) -> dict[int, int]:
    """Evaluates the project's enabled rules on new traces: filter, deterministic
    sample, daily cap. Idempotent: a trace already queued is not added again and not
    counted again. Returns the number routed per rule."""
    from traces import selectors as trace_selectors

    project = Project.objects.filter(pk=project_id).first()
    if project is None or not trace_ids:
        return {}
    routed: dict[int, int] = {}
    actor = Actor.system()
    for rule_id in RoutingRule.objects.filter(project=project, enabled=True).values_list(
        "pk", flat=True
    ):
        with audit.acting_as(actor), transaction.atomic():
            # The rule's row lock serializes its daily count across workers.
            rule = (
                RoutingRule.objects.select_for_update()
                .select_related("queue")
                .filter(pk=rule_id, enabled=True)
                .first()
            )
            if rule is None or rule.queue.archived_at:
                continue
            try:
                matching = trace_selectors.traces_matching(
                    project=project, params=rule.filter_params
                )
            except DomainError:
                logger.warning("routing rule %s has an invalid filter; skipped", rule.pk)
                continue
            matched = sorted(matching.filter(pk__in=trace_ids).values_list("pk", flat=True))
            sampled = [t for t in matched if _sampled(f"route:{rule.pk}:{t}", rule.sampling_rate)]
            if not sampled:
                continue
            day, _ = RoutingRuleDay.objects.get_or_create(
                organization_id=rule.organization_id, rule=rule, day=_now().date()
            )
            day = RoutingRuleDay.objects.select_for_update().get(pk=day.pk)
            if rule.daily_cap is not None:
                already = set(
                    QueueItem.objects.filter(
                        queue=rule.queue, target_type=ItemTarget.TRACE, trace_id__in=sampled
                    ).values_list("trace_id", flat=True)
                )
                sampled = [t for t in sampled if t not in already]
                sampled = sampled[: max(0, rule.daily_cap - day.routed)]
            items = _insert_items(
                queue=rule.queue,
                targets=[ItemTargetRef(ItemTarget.TRACE, t) for t in sampled],
                source=ItemSource.ROUTING_RULE,
                actor=actor,
                priority=rule.item_priority,
                routing_rule=rule,
                signal=rule.signal,
                source_detail={"rule": rule.name, "filter": rule.filter_params},
            )
            if items:
                day.routed += len(items)
                day.save(update_fields=["routed"])
            routed[rule.pk] = len(items)
    return routed
