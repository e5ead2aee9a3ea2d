"""Reads of the quality report page: one row per question of a queue (its latest
agreement report and the trend of its newest ones), and a question's whole history,
newest first, for the history page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber

from review.quality.models import AgreementReport
from review.quality.selectors.agreement import queue_refresh_pending

# The questions the page lists (the queue and question most recently reported first)
# and the reports each trend draws.
QUESTIONS = 50
TREND_POINTS = 30

TREND_FIELDS = ("queue_id", "config_id", "computed_at", "value", "ci_low", "ci_high")


@dataclass
class QuestionTrend:
    """A question of a queue on the report page: its latest report (figure, interval,
    warning), the newest ``TREND_POINTS`` headline figures oldest first, how many reports
    it has, and whether newer answers are being computed."""

    latest: AgreementReport
    points: list[dict[str, Any]] = field(default_factory=list)
    reports: int = 0
    updating: bool = False

    @property
    def queue(self) -> Any:
        return self.latest.queue

    @property
    def config(self) -> Any:
        return self.latest.config


def question_trends(project: Any, *, limit: int = QUESTIONS) -> tuple[list[QuestionTrend], int]:
    """Each question's row of ``project``'s agreement report (at most ``limit``, the most
    recently reported first) and how many questions there are: three queries whatever
    the number of reports, plus one freshness check per queue shown."""
    latest_rows = list(
        AgreementReport.objects.filter(project=project)
        .order_by("queue_id", "config_id", "-computed_at", "-id")
        .distinct("queue_id", "config_id")
        .select_related("queue", "config")
    )
    latest_rows.sort(key=lambda r: (r.computed_at, r.pk), reverse=True)
    total = len(latest_rows)
    shown = latest_rows[:limit]
    keys = {(r.queue_id, r.config_id) for r in shown}
    trends = {key: QuestionTrend(latest=r) for key, r in zip(keys_of(shown), shown, strict=True)}
    if shown:
        ranked = (
            AgreementReport.objects.filter(project=project, queue_id__in={k[0] for k in keys})
            .annotate(
                rank=Window(
                    RowNumber(),
                    partition_by=[F("queue_id"), F("config_id")],
                    order_by=[F("computed_at").desc(), F("id").desc()],
                )
            )
            .values(*TREND_FIELDS, "rank")
        )
        for row in ranked.filter(rank__lte=TREND_POINTS).order_by(
            "queue_id", "config_id", "computed_at", "id"
        ):
            trend = trends.get((row["queue_id"], row["config_id"]))
            if trend is not None:
                trend.points.append(row)
        counts = (
            AgreementReport.objects.filter(project=project, queue_id__in={k[0] for k in keys})
            .values("queue_id", "config_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in counts:
            trend = trends.get((row["queue_id"], row["config_id"]))
            if trend is not None:
                trend.reports = row["n"]
    updating: dict[int, bool] = {}
    for trend in trends.values():
        queue = trend.latest.queue
        if queue.pk not in updating:
            updating[queue.pk] = queue_refresh_pending(queue)
        trend.updating = updating[queue.pk]
    return list(trends.values()), total


def keys_of(rows: list[AgreementReport]) -> list[tuple[int, int]]:
    return [(r.queue_id, r.config_id) for r in rows]


def question_history(*, project: Any, queue_id: int, config_id: int) -> QuerySet[AgreementReport]:
    """Every report of one question of one queue of ``project``, newest first (another
    project's queue or question: none)."""
    return AgreementReport.objects.filter(
        project=project, queue_id=queue_id, config_id=config_id
    ).order_by("-computed_at", "-id")
