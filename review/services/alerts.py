"""Quality alerts: agreement between reviewers, a metric's alignment with them, or a
reviewer's accuracy on gold items fell below its threshold. Each alert is a row (the
API lists them) and an event (``review.agreement.alert``, ``review.alignment.alert``,
``review.calibration.failed`` for gold accuracy) written in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from projects.models import Project
from projects.notifications import event_emit, site_url
from projects.notifications.catalogue import EVENT_TYPES
from review.models import AlertKind, QualityAlert, ReviewQueue

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
                "url": site_url(
                    f"api/orgs/{project.organization.slug}/projects/{project.slug}/alerts/{alert.pk}/"
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
    headline figure over the last ``HITL_QUALITY_ALERT_WINDOW`` reports crossed under the
    threshold."""
    from review.models import AgreementReport

    threshold, window = alert_threshold(), alert_window()
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
