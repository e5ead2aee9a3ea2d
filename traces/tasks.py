"""Thin Celery tasks over trace-store services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from traces import partitions


@shared_task(
    name="traces.maintain_span_partitions",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    acks_late=True,
)
def maintain_span_partitions(**_: object) -> dict[str, list[str]]:
    """Creates the span partitions of this month and the next ones, and drops those
    past the retention (``HITL_TRACE_RETENTION_DAYS``; 0 keeps everything). Idempotent."""
    now = timezone.now()
    return {
        "ensured": partitions.span_partitions_ensure_ahead(now=now),
        "dropped": partitions.span_partitions_drop_expired(
            now=now, keep_days=settings.HITL_TRACE_RETENTION_DAYS
        ),
    }
