"""Thin Celery tasks over trace-store services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from traces import partitions, retention


@shared_task(
    name="traces.maintain_span_partitions",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def maintain_span_partitions(**_: object) -> dict[str, object]:
    """Creates the span partitions of this month and the next ones, then applies each
        project's trace retention (``traces.retention``: its ``TraceRetention``, else
        ``HITL_TRACE_RETENTION_DAYS``; 0 keeps everything): drops the months nothing keeps,
        deletes the other expired traces in batches, with the threads left without a trace
    that nothing points at. Idempotent."""
    now = timezone.now()
    ensured = partitions.span_partitions_ensure_ahead(now=now)
    return {"ensured": ensured, **retention.retention_apply(now=now).as_dict()}
