"""Quality alerts: agreement between reviewers, a metric's alignment with them, or a
reviewer's accuracy on gold items fell below its threshold. Each alert is a row (the
API lists them) and an event (``review.agreement.alert``, ``review.alignment.alert``,
``review.calibration.failed`` for gold accuracy) written in the same transaction.

The agreement and alignment thresholds and the rolling window are the project's
(:class:`~review.quality.models.QualitySettings`, changed by :func:`quality_settings_update`);
a project without its own row uses ``HITL_QUALITY_ALERT_THRESHOLD`` and
``HITL_QUALITY_ALERT_WINDOW``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import DomainError
from projects.models import Project
from projects.notifications import event_emit, site_reverse
from projects.notifications.catalogue import EVENT_TYPES
from review.models import ReviewQueue
from review.quality.models import AlertKind, QualityAlert, QualitySettings
from review.services.common import is_number, time_now

logger = logging.getLogger(__name__)

EVENT_OF_KIND = {
    AlertKind.AGREEMENT: "review.agreement.alert",
    AlertKind.ALIGNMENT: "review.alignment.alert",
    AlertKind.GOLD_ACCURACY: "review.calibration.failed",
}


def alert_threshold() -> float:
    return settings.HITL_QUALITY_ALERT_THRESHOLD


def alert_window() -> int:
    return settings.HITL_QUALITY_ALERT_WINDOW


# The window counts reports; a longer one would hide a drop for days on busy queues.
WINDOW_RANGE = (1, 50)


@dataclass(frozen=True)
class QualityThresholds:
    """What a project's alert checks hold figures against."""

    agreement_threshold: float
    alignment_threshold: float
    window: int
    # False: no row of the project's own, the global settings apply.
    is_custom: bool = False
    updated_at: datetime | None = None
    updated_by_id: int | None = None


def quality_thresholds(project_id: int) -> QualityThresholds:
    """The project's thresholds and window, or the global defaults (one indexed query)."""
    row = QualitySettings.objects.filter(project_id=project_id).first()
    if row is None:
        default = alert_threshold()
        return QualityThresholds(
            agreement_threshold=default, alignment_threshold=default, window=alert_window()
        )
    return QualityThresholds(
        agreement_threshold=row.agreement_threshold,
        alignment_threshold=row.alignment_threshold,
        window=row.window,
        is_custom=True,
        updated_at=row.updated_at,
        updated_by_id=row.updated_by_id,
    )


def _quality_errors(agreement: Any, alignment: Any, window: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not is_number(agreement) or not -1 <= agreement <= 1:
        errors["agreement_threshold"] = [
            "A coefficient between -1 and 1 (Krippendorff's alpha, kappa: 0.8 is a common bar)."
        ]
    if not is_number(alignment) or not 0 <= alignment <= 1:
        errors["alignment_threshold"] = ["An agreement rate between 0 and 1."]
    low, high = WINDOW_RANGE
    if isinstance(window, bool) or not isinstance(window, int) or not low <= window <= high:
        errors["window"] = [f"A whole number of reports from {low} to {high}."]
    return errors


def quality_settings_update(
    *,
    actor: Actor,
    project: Project,
    agreement_threshold: float,
    alignment_threshold: float,
    window: int,
) -> QualitySettings:
    """Sets the project's alert thresholds (agreement: -1..1; alignment: 0..1) and the
    rolling window (reports); the next report of each question or mapping is judged
    against them. History is kept."""
    errors = _quality_errors(agreement_threshold, alignment_threshold, window)
    if errors:
        raise DomainError("Invalid quality settings.", details=errors)
    with audit.acting_as(actor), transaction.atomic():
        row = QualitySettings.objects.select_for_update().filter(project=project).first()
        if row is None:
            row = QualitySettings(project=project)
        row.agreement_threshold = float(agreement_threshold)
        row.alignment_threshold = float(alignment_threshold)
        row.window = int(window)
        row.updated_by = actor.user
        row.updated_at = time_now()
        row.save()
    return row


def rolling_crossed(
    values: Sequence[float | None], *, threshold: float, window: int
) -> float | None:
    """The rolling mean of the newest ``window`` figures (newest first, nulls left out)
    when it is under ``threshold`` and the window before it was not (a crossing, so a
    lasting low raises one alert); else None."""
    figures = [v for v in values if v is not None]
    if not figures:
        return None
    now = figures[:window]
    mean_now = sum(now) / len(now)
    if mean_now >= threshold:
        return None
    before = figures[1 : window + 1]
    if before and sum(before) / len(before) < threshold:
        return None
    return mean_now


def alert_raise(
    *,
    kind: str,
    project_id: int,
    value: float | None,
    threshold: float,
    window: int,
    message: str,
    queue: ReviewQueue | None = None,
    config_id: int | None = None,
    reviewer_id: int | None = None,
    subject: dict[str, Any] | None = None,
    score_names: Sequence[str] = (),
) -> QualityAlert:
    """Records an alert and its event inside the caller's transaction."""
    with transaction.atomic():
        alert = QualityAlert.objects.create(
            project_id=project_id,
            kind=kind,
            queue=queue,
            config_id=config_id,
            reviewer_id=reviewer_id,
            subject=subject or {},
            value=value,
            threshold=threshold,
            window=window,
            message=message,
        )
        event_type = EVENT_OF_KIND[kind]
        if event_type not in EVENT_TYPES:
            logger.warning("alert %s: event type %s is not in the catalogue", alert.pk, event_type)
            return alert
        project = Project.objects.select_related("organization").get(pk=project_id)
        event_emit(
            event_type,
            organization_id=alert.organization_id,
            project_id=project_id,
            queue_id=queue.pk if queue else None,
            score_names=score_names,
            payload={
                "summary": message,
                "url": site_reverse(
                    "quality-alert-detail",
                    org_slug=project.organization.slug,
                    project_slug=project.slug,
                    pk=alert.pk,
                ),
                "alert": {
                    "id": alert.pk,
                    "kind": kind,
                    "value": value,
                    "threshold": threshold,
                    "window": window,
                    "queue_id": queue.pk if queue else None,
                    "config_id": config_id,
                    "reviewer_id": reviewer_id,
                    **(subject or {}),
                },
                "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            },
        )
    return alert


def agreement_alert_check(*, queue: ReviewQueue, config_id: int) -> QualityAlert | None:
    """After a new agreement report: alerts when the rolling mean of the question's
    headline figure over the project's window of reports crossed under its agreement
    threshold (:func:`quality_thresholds`)."""
    from review.quality.models import AgreementReport

    limits = quality_thresholds(queue.project_id)
    threshold, window = limits.agreement_threshold, limits.window
    rows = list(
        AgreementReport.objects.filter(queue=queue, config_id=config_id)
        .order_by("-computed_at", "-id")
        .values_list("value", "config__name")[: window + 1]
    )
    mean = rolling_crossed([v for v, _ in rows], threshold=threshold, window=window)
    if mean is None:
        return None
    name = rows[0][1]
    return alert_raise(
        kind=AlertKind.AGREEMENT,
        project_id=queue.project_id,
        queue=queue,
        config_id=config_id,
        value=mean,
        threshold=threshold,
        window=min(window, len([v for v, _ in rows if v is not None])),
        message=(
            f"Agreement on {name!r} in the queue {queue.name!r} fell to {mean:.2f} "
            f"(rolling mean), under {threshold:.2f}."
        ),
        score_names=[name],
    )
