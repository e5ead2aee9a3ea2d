"""Review queues: settings, the form (score configs asked) and the reviewer pool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, QuerySet

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, conflict_on_duplicate
from projects.models import REVIEW_ROLES, Membership, Project
from projects.selectors import membership_sees_project
from review.models import (
    ClaimOrder,
    ItemStatus,
    QueueFormField,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    ScoreConfig,
)
from review.selectors import queue_form
from review.services.common import is_number, time_now
from review.services.lifecycle import item_close
from review.services.suggestions import suggestion_settings_errors

LEASE_TTL_RANGE = (30, 7 * 24 * 3600)


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
        for name, ceiling in (("max_dissent_share", 1.0), ("numeric_tolerance", None)):
            value = entry.get(name, 0.0)
            if not is_number(value) or value < 0 or (ceiling is not None and value > ceiling):
                bound = f"between 0 and {ceiling:g}" if ceiling else "zero or more"
                errors[f"form[{position}]"] = [f"{name} must be {bound}."]
    if errors:
        raise DomainError("Invalid form.", details=errors)
    _replace_rows(
        QueueFormField.objects.filter(queue=queue),
        "config_id",
        [
            QueueFormField(
                organization_id=queue.organization_id,
                queue=queue,
                config=configs[int(entry["config_id"])],
                position=position,
                adjudicates=bool(entry.get("adjudicates", True)),
                max_dissent_share=float(entry.get("max_dissent_share", 0.0)),
                numeric_tolerance=float(entry.get("numeric_tolerance", 0.0)),
            )
            for position, entry in enumerate(form)
        ],
        ["position", "adjudicates", "max_dissent_share", "numeric_tolerance"],
    )


def _replace_rows(
    current: QuerySet, key: str, wanted: Sequence[Model], fields: Sequence[str]
) -> None:
    """The rows of ``current`` made ``wanted`` (matched on ``key``), with history for
    what changed only: a row whose ``fields`` are as wanted is left alone, a changed one
    is updated, a missing one created, one no longer wanted deleted. Saving a queue's
    form or pool as it was records nothing, so its history says what a person changed."""
    existing = {getattr(row, key): row for row in current.select_for_update()}
    keys = {getattr(row, key) for row in wanted}
    gone = [row.pk for k, row in existing.items() if k not in keys]
    if gone:
        current.filter(pk__in=gone).delete()  # row by row: each leaves its history
    changed = []
    for row in wanted:
        held = existing.get(getattr(row, key))
        if held is not None and any(getattr(held, f) != getattr(row, f) for f in fields):
            for name in fields:
                setattr(held, name, getattr(row, name))
            changed.append(held)
    if changed:
        audit.bulk_update_with_history(changed, current.model, list(fields))
    created = [row for row in wanted if getattr(row, key) not in existing]
    if created:
        audit.bulk_create_with_history(created, current.model)


def _set_pool(queue: ReviewQueue, reviewers: Sequence[Mapping[str, Any]]) -> None:
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
    _replace_rows(
        QueueReviewer.objects.filter(queue=queue),
        "membership_id",
        [
            QueueReviewer(
                organization_id=queue.organization_id,
                queue=queue,
                membership=memberships[int(entry["membership_id"])],
                skills=list(entry.get("skills") or []),
                languages=list(entry.get("languages") or []),
                is_senior=bool(entry.get("is_senior", False)),
            )
            for entry in reviewers
        ],
        ["skills", "languages", "is_senior"],
    )


def _check_queue_settings(fields: Mapping[str, Any]) -> None:
    errors = {}
    if "overlap" in fields and not 1 <= int(fields["overlap"]) <= 20:
        errors["overlap"] = ["Between 1 and 20 reviews per item."]
    if "lease_ttl_seconds" in fields and not (
        LEASE_TTL_RANGE[0] <= int(fields["lease_ttl_seconds"]) <= LEASE_TTL_RANGE[1]
    ):
        errors["lease_ttl_seconds"] = [f"Between {LEASE_TTL_RANGE[0]} s and 7 days."]
    if "claim_order" in fields and fields["claim_order"] not in ClaimOrder.values:
        errors["claim_order"] = ["breadth_first or complete_first."]
    if "audit_sample_rate" in fields and not 0 <= float(fields["audit_sample_rate"]) <= 1:
        errors["audit_sample_rate"] = ["A fraction between 0 and 1."]
    if errors:
        raise DomainError("Invalid queue settings.", details=errors)


def _check_suggestion_settings(fields: Mapping[str, Any], current: ReviewQueue | None) -> None:
    errors = suggestion_settings_errors(fields, current)
    if errors:
        reasons = " ".join(reason for found in errors.values() for reason in found)
        raise DomainError(f"Invalid suggestion settings: {reasons}", details=errors)


QUEUE_SETTINGS = (
    "name",
    "description",
    "overlap",
    "assignment_strategy",
    "claim_order",
    "blind_mode",
    "lease_ttl_seconds",
    "priority",
    "include_explanation",
    "include_expected_output",
    "audit_sample_rate",
    "suggestion_mode",
    "suggestions_in_blind",
    "suggestion_holdout_percent",
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
    _check_suggestion_settings(settings_, None)
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
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
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.select_for_update().get(pk=queue.pk)
        _check_suggestion_settings(changes, queue)
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
        changed = {name for name, value in changes.items() if getattr(queue, name) != value}
        for name in changed:
            setattr(queue, name, changes[name])
        if changed:  # saved as it was, a queue records no change
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
                    item_close(item, form)
    return queue


def queue_archive(*, actor: Actor, queue: ReviewQueue) -> ReviewQueue:
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.select_for_update().get(pk=queue.pk)
        if queue.archived_at is None:
            queue.archived_at = time_now()
            queue.save()
    return queue


def queue_pool_join(*, actor: Actor, membership: Membership, queue_ids: Sequence[int]) -> list[str]:
    """Adds ``membership`` to the reviewer pools of ``queue_ids`` (an invitation's queues,
    through ``projects.hooks``): queues of the organization in scope, not archived, in a
    project the member sees, when their role reviews; a pool they are already in stays
    as it is. Returns the names of those queues, whether joined now or before."""
    if membership.role not in REVIEW_ROLES or not queue_ids:
        return []
    with audit.acting_as(actor), transaction.atomic():
        queues = [
            queue
            for queue in ReviewQueue.objects.filter(
                pk__in=list(queue_ids), archived_at__isnull=True
            )
            .select_related("project")
            .order_by("name", "pk")
            if membership_sees_project(membership, queue.project)
        ]
        already = set(
            QueueReviewer.objects.filter(membership=membership, queue__in=queues).values_list(
                "queue_id", flat=True
            )
        )
        audit.bulk_create_with_history(
            [
                QueueReviewer(
                    organization_id=queue.organization_id, queue=queue, membership=membership
                )
                for queue in queues
                if queue.pk not in already
            ],
            QueueReviewer,
        )
    return [queue.name for queue in queues]
