"""Agreement reports: which answers a queue's questions have, their coefficients
(:mod:`review.quality.agreement`), stored one row per computation.

When: a submission or an edit in a queue with overlap, or in a queue that mixes gold
items in, is announced (``review.hooks.answers_changed``) and quality's receiver calls
:func:`agreement_request` inside that transaction. That writes one
``review.agreement_refresh`` outbox message unless one is already waiting for the queue
(not yet taken by a worker). Submissions coalesce, none is dropped: every submission
that arrives while a message waits is covered by that message's run (it reads after they
commit), and one that arrives while a run is under way (its message row is locked)
writes the one next message, which runs as soon as the current run ends. So a queue
under steady reviewing has at most one run and one waiting message, and the report
covers a submission one run after the one under way at the latest (``bench/
agreement_freshness.py`` measures it). The worker runs
:func:`review.quality.services.refresh.quality_refresh`: the queue's agreement
(:func:`agreement_refresh`: it skips a queue whose answers are those of its latest
reports and otherwise computes every question of the queue's form) and the reviewers'
running accuracy on its gold items. Computations of one queue are serialized by an
advisory lock, and the queue row is held against deletion while one runs. The periodic
:func:`agreement_sweep` is a safety net (a message that failed, a question edited since
its report).

Whether a report is behind its answers is
:func:`review.quality.selectors.agreement.queue_refresh_pending`, one rule read by the
API, the pages and :func:`agreement_sweep`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from hitl import outbox, sql_rows, tenancy
from hitl.models import OutboxState
from hitl.replica import replica_snapshot
from hitl.tenancy import current_organization_id
from review.models import Annotation, ReviewQueue, ScoreConfig
from review.quality.agreement import Ratings, agreement_report
from review.quality.models import AgreementReport, QueueCalibration
from review.quality.selectors.agreement import (
    Coverage,
    latest_reports,
    queue_coverage,
    queue_refresh_pending,
    reports_cover,
    scale_of,
    scaled_answer,
    scaled_configs,
)
from review.quality.services.alerts import agreement_alert_check
from review.services.common import time_now

logger = logging.getLogger(__name__)

AGREEMENT_REFRESH = "review.agreement_refresh"
# pg_advisory_xact_lock(class, queue id): one computation per queue at a time.
_LOCK_CLASS = 0x4147  # "AG"


def queue_mixes_gold(queue_id: int) -> bool:
    return QueueCalibration.objects.filter(queue_id=queue_id, gold_rate__gt=0).exists()


_WAITING_STATES = (OutboxState.PENDING.value, OutboxState.PUBLISHED.value)
# The queue's request waiting for a worker, locked (skipping one a worker holds): asked
# on every submit, so written as SQL (an ORM query costs more Python than it takes).
_WAITING_SQL = """
SELECT id FROM hitl_outboxmessage
WHERE {scope} AND task = %s AND kwargs -> 'queue_id' = %s::jsonb
  AND state IN (%s, %s)
ORDER BY id DESC LIMIT 1
FOR UPDATE SKIP LOCKED
"""


def agreement_request(*, queue: ReviewQueue) -> None:
    """Asks for the queue's agreement (overlap of two or more) and gold accuracy (gold
    items mixed in) to be recomputed after this transaction commits. Writes nothing if
    a request for the queue is already waiting for a worker."""
    if queue.overlap < 2 and not queue_mixes_gold(queue.pk):
        return
    scope, params = tenancy.scope_sql("organization_id")
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(
            _WAITING_SQL.format(scope=scope),
            [*params, AGREEMENT_REFRESH, json.dumps(queue.pk), *_WAITING_STATES],
        )
        waiting = cursor.fetchone()
    # A waiting message locked here runs after this commit and reads these answers; one
    # a worker holds (locked, so skipped) may have read before them: write another.
    if waiting is None:
        outbox.enqueue(
            task=AGREEMENT_REFRESH,
            organization_id=queue.organization_id,
            kwargs={"queue_id": queue.pk},
        )


def config_ratings(queue_id: int, config: ScoreConfig) -> tuple[Ratings, dict[str, Any]] | None:
    """The queue's answers to one question, coded on its scale (None for free text).
    Answers no longer on the scale (an option renamed since) are left out."""
    scale = scale_of(config)
    if scale is None:
        return None
    key = str(config.pk)
    known = None if scale["categories"] is None else set(scale["categories"])
    answers = []
    # From a caught-up read replica when there is one (hitl/replica.py), else the primary.
    with replica_snapshot() as database:
        rows = (
            Annotation.objects.using(database.alias)
            .filter(queue_id=queue_id, values__has_key=key)
            .order_by("item_id", "reviewer_id")
            .values_list("item_id", "reviewer_id", "values")
        )
        for item_id, reviewer_id, values in rows.iterator(chunk_size=10_000):
            value = values.get(key)
            if value is None:
                continue
            coded = scaled_answer(value, scale)
            if known is None or coded in known:
                answers.append((item_id, reviewer_id, coded))
    ratings = Ratings.from_answers(
        answers, categories=scale["categories"], ordered=scale["ordered"]
    )
    return ratings, scale


def _lock_queue(queue_id: int) -> ReviewQueue | None:
    """Holds the queue row against deletion (``FOR KEY SHARE``: edits go on)."""
    table = ReviewQueue._meta.db_table  # our own table name, not input
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = %s AND organization_id = %s FOR KEY SHARE",  # noqa: S608
            [queue_id, current_organization_id()],
        )
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, queue_id])
    return ReviewQueue.objects.filter(pk=queue_id).first()


def agreement_refresh(
    *,
    queue_id: int,
    force: bool = False,
    min_interval: timedelta | None = None,
    resamples: int | None = None,
) -> str:
    """Recomputes the agreement of every question of the queue's form; returns
    ``"computed"``, ``"unchanged"`` (the latest reports cover these answers),
    ``"deferred"`` (reported less than ``min_interval`` ago) or ``"missing"`` (the
    queue is gone). Idempotent: a rerun over the same answers writes nothing."""
    resamples = settings.HITL_AGREEMENT_RESAMPLES if resamples is None else resamples
    with transaction.atomic():
        queue = _lock_queue(queue_id)
        if queue is None:
            return "missing"
        configs = scaled_configs(queue)
        coverage = queue_coverage(queue_id)
        latest = latest_reports(queue_id)
        if not force:
            if configs and reports_cover(configs, latest, coverage):
                return "unchanged"
            newest = max((r.computed_at for r in latest.values()), default=None)
            if min_interval and newest is not None and newest > time_now() - min_interval:
                return "deferred"
        for config in configs:
            _compute_one(queue, config, coverage, resamples)
            agreement_alert_check(queue=queue, config_id=config.pk)
    return "computed"


def _compute_one(
    queue: ReviewQueue, config: ScoreConfig, coverage: Coverage, resamples: int
) -> AgreementReport:
    started = time.perf_counter()
    ratings, scale = config_ratings(queue.pk, config)
    report = agreement_report(ratings, level=scale["level"], resamples=resamples, seed=config.pk)
    report["config"] = {
        "id": config.pk,
        "name": config.name,
        "version": config.version,
        "data_type": config.data_type,
        "measurement": str(scale["level"]),
    }
    primary = report["coefficients"][report["primary"]]
    row = AgreementReport.objects.create(
        project_id=queue.project_id,
        queue=queue,
        config=config,
        config_version=config.version,
        computed_at=time_now(),
        answers_covered=coverage.answers,
        last_annotation_id=coverage.last_annotation_id,
        last_change_at=coverage.last_change_at,
        n_items=report["n_items"],
        n_answers=report["n_answers"],
        level=report["level"],
        value=primary["value"],
        ci_low=primary["ci_low"],
        ci_high=primary["ci_high"],
        reason=primary["reason"] or "",
        figures=report,
        duration_ms=round((time.perf_counter() - started) * 1000),
    )
    logger.info(
        "agreement of config %s in queue %s: %s over %s answers in %s ms",
        config.pk, queue.pk, primary["value"], report["n_answers"], row.duration_ms,
    )  # fmt: skip
    return row


def agreement_sweep() -> int:
    """Requests a refresh of every queue with overlap (in the organization in scope)
    whose latest reports do not cover its answers (:func:`queue_refresh_pending`);
    returns how many."""
    requested = 0
    queues = ReviewQueue.objects.filter(overlap__gte=2, archived_at__isnull=True)
    for queue in queues:
        if not queue_refresh_pending(queue):
            continue
        with transaction.atomic():
            agreement_request(queue=queue)
        requested += 1
    return requested
