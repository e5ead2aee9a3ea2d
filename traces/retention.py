"""Trace retention: each project's policy applied by the beat task.

A project keeps its traces for its ``TraceRetention.days`` (0: for ever); a project
without a policy follows ``HITL_TRACE_RETENTION_DAYS`` (0 by default: kept). A trace
has expired when it was first seen (``created_at``, the span partition key) more than
that many days ago.

Each run (``retention_apply``):

1. **Drops whole span partitions** (``traces.partitions``): a month is dropped when
   every project holding traces in it has expired the whole month (nothing in it is
   still kept) and nothing that outlives retention points at its traces or spans.
   Dropping a table leaves no dead rows to vacuum, which is why this comes first.
2. **Deletes expired traces row by row, per project**, in batches of ``BATCH`` traces,
   each its own short transaction inside the project's tenant scope: the spans with one
   statement on the span identity index (pruned to the expired months), then the trace
   rows through the ORM, so their automated scores and end-user feedback follow the
   models' ``on_delete``. This also clears the trace rows of months step 1 dropped.

**Kept, with a warning:** an expired trace that a review or a curated dataset still
needs. The rule is :func:`keeps`, in one place: a row outside the trace store that points
at the trace, one of its spans or its thread keeps it when deleting the trace would take
that row with it or be refused (``on_delete`` CASCADE, PROTECT or RESTRICT: queue items,
annotations, comments, gold answers), or when the link is a curated record's provenance
(``PROVENANCE``: a dataset item's source trace, span or thread); a human score on the
trace, its spans or its thread keeps it too. A reference that only loses its link
(``SET_NULL``) and is no provenance lets the trace go: an experiment result keeps its
``trace_external_id``, output and scores, and its ``trace`` becomes empty. History rows
(``DO_NOTHING``) keep nothing. The same rule decides the partition drop (step 1) and the
row-by-row delete (step 2). Reviews outlive retention until someone deletes them; the
trace and its spans stay with them, and its month's partition stays too.

**Threads** whose last trace the run deleted are deleted too, in the same transaction,
unless something still points at them: any score or feedback on the thread, or a
reference :func:`keeps` counts (a queue item, an annotation, a dataset item's
provenance). A score or review attached meanwhile makes the thread's delete fail its
constraint check, and the thread is simply kept this time. An ingest request that read
the thread's id just before the delete committed fails its own foreign-key check at
commit (nothing of it is stored, ingestion being one transaction); ingestion retries
such a batch (``traces.services._transient``), which creates the thread again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q

from hitl import audit, tenancy
from traces import partitions

logger = logging.getLogger(__name__)

# Traces deleted per transaction: small enough that each lock is brief (a few thousand
# span rows), large enough that a million expired traces take minutes, not hours.
BATCH = 500
# At most this many kept trace ids are named in a warning.
NAMED_IN_WARNING = 5


@dataclass(frozen=True)
class Referrer:
    """A column that points at traces, spans or threads and keeps what it points at."""

    table: str
    column: str
    target: str  # "trace", "span" or "thread"


# Links that only lose their target on delete (SET_NULL) but keep an expired trace: a
# curated record's provenance. Named "app_label.Model.field", so that retention imports
# no app above the trace store.
PROVENANCE = frozenset(
    {"datasets.DatasetItem.trace", "datasets.DatasetItem.span", "datasets.DatasetItem.thread"}
)


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)  # span partitions
    deleted: int = 0  # traces
    kept: int = 0  # expired traces kept because something needs them
    threads: int = 0  # threads deleted with their last trace (logged, not in as_dict)

    def as_dict(self) -> dict[str, object]:
        return {"dropped": self.dropped, "deleted": self.deleted, "kept": self.kept}


def keeps(model_field: Any) -> bool:
    """The retention rule for one reference to a trace, span or thread: does a row
    holding it keep an expired trace? Yes when deleting the trace would delete the row
    or be refused (CASCADE, PROTECT, RESTRICT: reviews), or when it is provenance
    (``PROVENANCE``); no for history rows (DO_NOTHING) and for every other reference
    that only loses its link (an experiment result's trace)."""
    from django.db import models

    on_delete = model_field.remote_field.on_delete
    if on_delete is models.DO_NOTHING:
        return False
    if on_delete in (models.CASCADE, models.PROTECT, models.RESTRICT):
        return True
    model = model_field.model
    return f"{model._meta.app_label}.{model.__name__}.{model_field.name}" in PROVENANCE


@functools.cache
def referrers() -> tuple[Referrer, ...]:
    """Every column whose rows keep the trace, span or thread they point at by
    :func:`keeps` (found from the models, so a new app's reference is decided by the
    rule the day it is added). Within the trace store, a trace's spans, automated scores
    and feedback belong to it and go with it (human scores are checked separately); a
    thread's scores and feedback keep the thread, not its traces."""
    from django.apps import apps

    from traces.models import Span, Thread, Trace

    targets = {Trace: "trace", Span: "span", Thread: "thread"}
    found = []
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if not model_field.is_relation or model_field.related_model not in targets:
                continue
            target = targets[model_field.related_model]
            if model._meta.app_label == "traces" and (target != "thread" or model is Trace):
                continue
            if keeps(model_field):
                found.append(Referrer(model._meta.db_table, model_field.column, target))
    return tuple(sorted(found, key=lambda r: (r.table, r.column)))


def _outside(ref: Referrer) -> bool:
    """A reference from outside the trace store (a review or a dataset): one that keeps
    traces, not only their thread."""
    from traces.models import Feedback, Score

    return ref.table not in (Score._meta.db_table, Feedback._meta.db_table)


# --- policies ----------------------------------------------------------------------------
def default_days() -> int:
    return max(0, int(settings.HITL_TRACE_RETENTION_DAYS))


@dataclass(frozen=True)
class ProjectRetention:
    project_id: int
    organization_id: int
    days: int  # effective: the project's policy, else the default; 0 keeps everything


def project_retentions() -> list[ProjectRetention]:
    """Every project's effective retention (read across tenants: the task serves all)."""
    from projects.models import Project
    from traces.models import TraceRetention

    policies = dict(TraceRetention.unscoped_across_tenants.values_list("project_id", "days"))
    fallback = default_days()
    return [
        ProjectRetention(project_id, organization_id, policies.get(project_id, fallback))
        for project_id, organization_id in Project.unscoped_across_tenants.order_by(
            "id"
        ).values_list("id", "organization_id")
    ]


# --- the run -------------------------------------------------------------------------------
def retention_apply(*, now: datetime, batch_size: int = BATCH) -> RetentionResult:
    """Applies every project's retention (see the module's docstring). Idempotent: a
    rerun finds nothing more to do; an interrupted run is finished by the next one."""
    result = RetentionResult()
    retentions = project_retentions()
    if not any(r.days > 0 for r in retentions):
        return result
    result.dropped = _drop_expired_partitions(now=now, retentions=retentions)
    for retention in retentions:
        if retention.days > 0:
            deleted, kept, threads = _delete_expired_traces(
                retention, cutoff=now - timedelta(days=retention.days), batch_size=batch_size
            )
            result.deleted += deleted
            result.kept += kept
            result.threads += threads
    return result


def _drop_expired_partitions(*, now: datetime, retentions: list[ProjectRetention]) -> list[str]:
    by_project = {r.project_id: r.days for r in retentions}
    shortest = min(r.days for r in retentions if r.days > 0)
    dropped = []
    for name, start, end in partitions.span_partitions():
        if end > now - timedelta(days=shortest):
            continue  # even the shortest policy in force still keeps part of it
        present = _projects_with_traces(start, end)
        # Every project with traces in the month has expired all of it (a project that
        # keeps everything, days 0, keeps the month).
        if not all(
            by_project.get(p, 0) > 0 and end <= now - timedelta(days=by_project[p]) for p in present
        ):
            continue
        try:
            with transaction.atomic():
                blockers = _window_referenced(name, start, end)
                if blockers:
                    logger.warning(
                        "span partition %s kept past retention: referenced from %s",
                        name,
                        blockers,
                    )
                    continue
                partitions.span_partition_drop(name)
        except OperationalError as exc:
            # The span table was busy (lock timeout): the next run drops it.
            logger.warning("span partition %s not dropped this time: %s", name, exc)
            continue
        dropped.append(name)
    return dropped


def _projects_with_traces(start: datetime, end: datetime) -> list[int]:
    """Projects with a trace first seen in [start, end): one probe of each project's
    (project, created_at) index, across tenants (read only)."""
    from projects.models import Project
    from traces.models import Trace

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.id FROM {Project._meta.db_table} p WHERE EXISTS ("  # noqa: S608
            f"SELECT 1 FROM {Trace._meta.db_table} t WHERE t.project_id = p.id "
            "AND t.created_at >= %s AND t.created_at < %s)",
            [start, end],
        )
        return [row[0] for row in cursor.fetchall()]


def _window_referenced(partition: str, start: datetime, end: datetime) -> list[str]:
    """Tables whose rows keep a trace first seen in [start, end) or one of the spans of
    ``partition`` (partitioned tables have no database constraints to tell)."""
    from traces.models import Score, Trace

    # Human scores on the month's traces (and their spans), or on their threads.
    checks = [
        (
            f"SELECT EXISTS (SELECT 1 FROM {Score._meta.db_table} r "  # noqa: S608
            f"JOIN {Trace._meta.db_table} t ON {join} WHERE r.source = 'human' "
            "AND t.created_at >= %s AND t.created_at < %s)",
            [start, end],
            f"{Score._meta.db_table} (human scores)",
        )
        for join in ("t.id = r.trace_id", "t.thread_id = r.thread_id")
    ]
    for ref in referrers():
        if ref.target == "thread":
            if not _outside(ref):
                continue  # a thread's own scores and feedback keep the thread only
            sql = (
                f"SELECT EXISTS (SELECT 1 FROM {ref.table} r "  # noqa: S608
                f"JOIN {Trace._meta.db_table} t ON t.thread_id = r.{ref.column} "
                "WHERE t.created_at >= %s AND t.created_at < %s)"
            )
            checks.append((sql, [start, end], ref.table))
        elif ref.target == "trace":
            sql = (
                f"SELECT EXISTS (SELECT 1 FROM {ref.table} r "  # noqa: S608
                f"JOIN {Trace._meta.db_table} t ON t.id = r.{ref.column} "
                "WHERE t.created_at >= %s AND t.created_at < %s)"
            )
            checks.append((sql, [start, end], ref.table))
        else:
            sql = (
                f"SELECT EXISTS (SELECT 1 FROM {ref.table} r "  # noqa: S608
                f"JOIN {partition} s ON s.id = r.{ref.column})"
            )
            checks.append((sql, [], ref.table))
    found = []
    with connection.cursor() as cursor:
        for sql, params, label in checks:
            cursor.execute(sql, params)
            if cursor.fetchone()[0] and label not in found:
                found.append(label)
    return found


def _delete_expired_traces(
    retention: ProjectRetention, *, cutoff: datetime, batch_size: int
) -> tuple[int, int, int]:
    """Deletes the project's traces first seen before ``cutoff`` that nothing keeps,
    oldest first, ``batch_size`` a transaction, and the threads left without a trace
    that nothing keeps. Returns (traces deleted, traces kept, threads deleted)."""
    from traces.models import Trace

    deleted = kept = threads = 0
    kept_named: list[int] = []
    after: tuple[datetime, int] | None = None
    # History rows of the deleted scores name the task as their author.
    with tenancy.tenant_scope(retention.organization_id), audit.acting_as(audit.Actor.system()):
        while True:
            expired = Trace.objects.filter(project_id=retention.project_id, created_at__lt=cutoff)
            if after is not None:
                expired = expired.filter(
                    Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1])
                )
            batch = list(expired.order_by("created_at", "id").values_list("id", "created_at")[
                :batch_size
            ])  # fmt: skip
            if not batch:
                break
            after = (batch[-1][1], batch[-1][0])
            ids = [trace_id for trace_id, _ in batch]
            with transaction.atomic():
                keep = _kept_trace_ids(ids, newest=after[0])
                doomed = [trace_id for trace_id in ids if trace_id not in keep]
                if doomed:
                    thread_ids = sorted(
                        set(
                            Trace.objects.filter(pk__in=doomed, thread__isnull=False).values_list(
                                "thread_id", flat=True
                            )
                        )
                    )
                    _delete_traces(retention.organization_id, doomed, newest=after[0])
                    threads += _delete_threads_left_empty(retention.organization_id, thread_ids)
            deleted += len(doomed)
            kept += len(keep)
            kept_named.extend(sorted(keep)[: NAMED_IN_WARNING - len(kept_named)])
    if kept:
        logger.warning(
            "project %s: %d traces past their %d-day retention kept: reviewed or referenced "
            "(trace ids %s%s)",
            retention.project_id,
            kept,
            retention.days,
            ", ".join(str(i) for i in kept_named),
            ", ..." if kept > len(kept_named) else "",
        )
    if deleted:
        logger.info(
            "project %s: %d traces past their %d-day retention deleted, and %d threads "
            "left without a trace",
            retention.project_id,
            deleted,
            retention.days,
            threads,
        )
    return deleted, kept, threads


def _kept_trace_ids(trace_ids: list[int], *, newest: datetime) -> set[int]:
    """The traces among ``trace_ids`` (first seen at ``newest`` or before) that
    something outside the trace store, or a human score, still needs (``keeps``)."""
    from traces.models import Score, Span, Trace

    span_table = Span._meta.db_table
    trace_table = Trace._meta.db_table
    queries = [
        (
            f"SELECT DISTINCT trace_id FROM {Score._meta.db_table} "  # noqa: S608
            "WHERE source = 'human' AND trace_id = ANY(%s)",
            [trace_ids],
        ),
        (
            f"SELECT DISTINCT t.id FROM {trace_table} t "  # noqa: S608
            f"JOIN {Score._meta.db_table} r ON r.thread_id = t.thread_id "
            "WHERE r.source = 'human' AND t.id = ANY(%s)",
            [trace_ids],
        ),
    ]
    for ref in referrers():
        if ref.target == "thread":
            if not _outside(ref):
                continue  # a thread's own scores and feedback keep the thread only
            sql = (
                f"SELECT DISTINCT t.id FROM {trace_table} t "  # noqa: S608
                f"JOIN {ref.table} r ON r.{ref.column} = t.thread_id WHERE t.id = ANY(%s)"
            )
            queries.append((sql, [trace_ids]))
        elif ref.target == "trace":
            sql = (
                f"SELECT DISTINCT r.{ref.column} FROM {ref.table} r "  # noqa: S608
                f"WHERE r.{ref.column} = ANY(%s)"
            )
            queries.append((sql, [trace_ids]))
        else:
            # The spans of these traces by the identity index, pruned to their months.
            sql = (
                f"SELECT DISTINCT s.trace_id FROM {span_table} s "  # noqa: S608
                f"JOIN {ref.table} r ON r.{ref.column} = s.id "
                "WHERE s.trace_id = ANY(%s) AND s.created_at <= %s"
            )
            queries.append((sql, [trace_ids, newest]))
    kept: set[int] = set()
    with connection.cursor() as cursor:
        for sql, params in queries:
            cursor.execute(sql, params)
            kept.update(row[0] for row in cursor.fetchall())
    return kept


def _delete_traces(organization_id: int, trace_ids: Iterable[int], *, newest: datetime) -> None:
    """Deletes these traces of the organization in scope: their spans in one statement
    (raw SQL, so stated in scope), then the trace rows through the ORM (scores and
    feedback by ``on_delete``; the spans' cascade finds nothing left)."""
    from traces.models import Span, Trace

    ids = list(trace_ids)
    tenancy.assert_writing_in_scope(organization_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Span._meta.db_table} WHERE organization_id = %s "  # noqa: S608
            "AND trace_id = ANY(%s) AND created_at <= %s",
            [organization_id, ids, newest],
        )
    Trace.objects.filter(pk__in=ids).delete()


def _delete_threads_left_empty(organization_id: int, thread_ids: list[int]) -> int:
    """Deletes those of ``thread_ids`` (the threads of traces just deleted, in the
    organization in scope) that no trace is left in and nothing points at (any score or
    feedback on the thread, a review or a dataset item's provenance: ``referrers``),
    in a savepoint of the batch's transaction. The rows are locked first, so the check
    reads what committed before; a reference inserted meanwhile fails the constraint
    check run at once here, and then no thread is deleted this time. Returns how many
    were deleted."""
    from traces.models import Thread, Trace

    if not thread_ids:
        return 0
    tenancy.assert_writing_in_scope(organization_id)
    table = Thread._meta.db_table
    # Table and column names come from the models, never from input.
    unused = [f"NOT EXISTS (SELECT 1 FROM {Trace._meta.db_table} t WHERE t.thread_id = th.id)"]  # noqa: S608
    unused += [
        f"NOT EXISTS (SELECT 1 FROM {ref.table} r WHERE r.{ref.column} = th.id)"  # noqa: S608
        for ref in referrers()
        if ref.target == "thread"
    ]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {table} WHERE organization_id = %s "  # noqa: S608
                "AND id = ANY(%s) ORDER BY id FOR UPDATE",
                [organization_id, thread_ids],
            )
            cursor.execute(
                f"DELETE FROM {table} th WHERE th.organization_id = %s "  # noqa: S608
                f"AND th.id = ANY(%s) AND {' AND '.join(unused)}",
                [organization_id, thread_ids],
            )
            gone = cursor.rowcount
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except IntegrityError as exc:
        logger.warning("threads %s kept this time: referenced meanwhile (%s)", thread_ids, exc)
        return 0
    return gone
