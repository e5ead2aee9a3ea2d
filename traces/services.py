"""Writes of the trace store: ingestion of traces, spans, scores and feedback; saved
views of the trace explorer; each project's trace retention."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from hitl import audit
from hitl.exceptions import Conflict, DomainError, conflict_on_duplicate
from projects.models import Project
from traces.hooks import traces_changed
from traces.ingest.records import Batch, FeedbackRecord, IngestResult, ScoreRecord
from traces.ingest.store import store_batch
from traces.models import RETENTION_MAX_DAYS, Feedback, SavedView, Score, Trace, TraceRetention

logger = logging.getLogger(__name__)

# Waiting longer than this for another batch of the same traces means overload.
LOCK_TIMEOUT = "10s"
ATTEMPTS = 3


class IngestionOverloaded(DomainError):
    """The database is too busy right now; the client should retry later."""

    status_code = 503
    code = "overloaded"
    retry_after_seconds = 5


def _transient(exc: BaseException) -> bool:
    """Races a batch can lose, which retrying wins: a deadlock, the same new score id
    from two batches, or a thread that retention deleted (its last trace expired)
    between the batch reading its id and committing (the retry creates it again)."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    return isinstance(
        cause,
        psycopg.errors.DeadlockDetected
        | psycopg.errors.SerializationFailure
        | psycopg.errors.UniqueViolation
        | psycopg.errors.ForeignKeyViolation,
    )


def _overload(exc: BaseException) -> bool:
    """Timeouts, too many connections, a lost connection: the database is busy or away,
    and nothing of the batch was committed, so the client may safely retry."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    return isinstance(cause, psycopg.OperationalError)


def ingest_batch(*, actor: audit.Actor, project: Project, batch: Batch) -> IngestResult:
    """Stores every valid record of ``batch`` in one transaction.

    Client ids are the identity: a re-sent record updates or leaves its row, never adds
    one. The result lists each rejected event with its index and reason.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with audit.acting_as(actor), transaction.atomic():
                with transaction.get_connection().cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                result = store_batch(project=project, batch=batch)
                # The apps above hear of every trace the batch created or changed (a
                # trace's error or cost may only be known once its spans arrive), in this
                # transaction: review routes them through the outbox.
                if result.trace_ids:
                    traces_changed.send(
                        sender=Trace, project=project, trace_ids=list(result.trace_ids)
                    )
                return result
        except (psycopg.Error, DatabaseError) as exc:
            if _transient(exc) and attempt < ATTEMPTS:
                logger.info("ingestion batch retried after %s", type(exc.__cause__ or exc).__name__)
                time.sleep(0.05 * attempt)
                continue
            if _overload(exc):
                logger.warning("ingestion overloaded: %s", exc)
                raise IngestionOverloaded(
                    "The trace store is busy; retry after a few seconds."
                ) from exc
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _single(result: IngestResult) -> None:
    if result.rejections:
        rejection = result.rejections[0]
        raise DomainError(rejection.reason, code=rejection.code)


def score_ingest(*, actor: audit.Actor, project: Project, record: ScoreRecord) -> Score:
    """One automated score (LLM judge or code check), upserted by its client id."""
    result = ingest_batch(actor=actor, project=project, batch=Batch(scores=[record], received=1))
    _single(result)
    queryset = Score.objects.filter(project=project)
    if record.external_id:
        return queryset.get(external_id=record.external_id)
    return queryset.filter(name=record.name).latest("created_at", "id")


def feedback_ingest(*, actor: audit.Actor, project: Project, record: FeedbackRecord) -> Feedback:
    """One piece of end-user feedback, upserted by its client id."""
    result = ingest_batch(actor=actor, project=project, batch=Batch(feedback=[record], received=1))
    _single(result)
    queryset = Feedback.objects.filter(project=project)
    if record.external_id:
        return queryset.get(external_id=record.external_id)
    return queryset.latest("created_at", "id")


# --- saved views of the trace explorer -------------------------------------------------


def saved_view_create(
    *,
    actor: audit.Actor,
    project: Project,
    name: str,
    filter_params: Mapping[str, Any],
    columns: Sequence[str] = (),
    sort: str = "",
) -> SavedView:
    """Saves a trace filter, columns and order under a name (unique per project); the
    filter and the order are validated and stored normalized, as routing rules store
    their filters. A score condition on a name no score of the project has is refused,
    as routing rules, bulk add and promote-matching refuse it (it would match nothing)."""
    from traces.filters import DEFAULT_SORT, parse_sort
    from traces.selectors import trace_filter_check_score_names, validate_trace_filter

    try:
        sort_key = parse_sort(sort).key
    except ValidationError as exc:
        raise DomainError("Invalid sort.", details={"sort": exc.messages}) from exc

    name = name.strip()
    if not name:
        raise DomainError("A saved view needs a name.", details={"name": ["required"]})
    normalized = validate_trace_filter(filter_params)
    trace_filter_check_score_names(project=project, params=normalized)
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        if SavedView.objects.filter(project=project, name=name).exists():
            raise Conflict(f"A saved view named '{name}' exists.", details={"name": ["taken"]})
        return SavedView.objects.create(
            project=project,
            name=name,
            filter_params=normalized,
            columns=list(columns),
            sort="" if sort_key == DEFAULT_SORT else sort_key,
            created_by=actor.user,
        )


def saved_view_delete(*, actor: audit.Actor, saved_view: SavedView) -> None:
    with audit.acting_as(actor), transaction.atomic():
        saved_view.delete()


# --- retention ---------------------------------------------------------------------------


def trace_retention_set(
    *, actor: audit.Actor, project: Project, days: int | None
) -> TraceRetention | None:
    """Sets how many days ``project`` keeps its traces (0: for ever), applied by the
    beat task (``traces.retention``). ``None`` removes the project's own policy, so the
    default (``HITL_TRACE_RETENTION_DAYS``) applies again. History records who did it."""
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= RETENTION_MAX_DAYS
    ):
        raise DomainError(
            f"Retention is a whole number of days from 0 (keep everything) to "
            f"{RETENTION_MAX_DAYS}.",
            details={"days": ["invalid"]},
        )
    with audit.acting_as(actor), transaction.atomic():
        current = TraceRetention.objects.select_for_update().filter(project=project).first()
        if days is None:
            if current is not None:
                current.delete()
            return None
        if current is None:
            return TraceRetention.objects.create(
                project=project, days=days, updated_by=actor.user, updated_at=timezone.now()
            )
        if current.days != days:
            current.days = days
            current.updated_by = actor.user
            current.updated_at = timezone.now()
            current.save(update_fields=["days", "updated_by", "updated_at"])
        return current
