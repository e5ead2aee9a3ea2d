"""Thin tasks over datasets services, run through the outbox."""

from __future__ import annotations

from django.db import OperationalError

from datasets import services
from hitl import outbox


@outbox.handler(services.EXPORT_TASK, retry_on=(OperationalError,))
def export_dataset_version(*, export_id: int, **_: object) -> None:
    """Writes an export's file (idempotent: a finished export is left alone). Runs
    inside the message's tenant scope."""
    services.dataset_export_run(export_id=export_id)
