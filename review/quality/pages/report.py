"""The quality report page of a project, for managers and auditors: agreement, one row
per question of a queue with its latest figure and a trend line over its newest reports
(the whole history a page of its own, paginated), each alignment mapping's confusion
matrix as a heat map, per-reviewer accuracy (calibration rounds and gold items), and
answers per hour. Every chart is server-side SVG (:mod:`review.quality.charts`) with its
table beside it; the figures are the stored reports, read, never computed here."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from hitl.forms import PageNumberForm
from hitl.replica import reads_from_replica
from projects.models import MANAGE_ROLES, Role
from review.models import Annotation, ScoreConfig
from review.page_base import ReviewProjectPage
from review.quality import charts
from review.quality.models import (
    AgreementReport,
    AlignmentMapping,
    AlignmentReport,
    CalibrationResult,
    GoldAccuracy,
    QualityAlert,
)
from review.quality.selectors.report import QuestionTrend, question_history, question_trends
from review.quality.services.alerts import alert_threshold, quality_thresholds
from traces.models import Trace
from traces.score_kinds import score_kind

HOURS = 24
HISTORY_PAGE_SIZE = 50


class QualityReportView(ReviewProjectPage):
    """The report reads no input: every figure is the project's stored reports."""

    allowed_roles = MANAGE_ROLES | {Role.AUDITOR}

    @reads_from_replica
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        trends, questions = question_trends(project)
        context = self.context(
            threshold=alert_threshold(),
            limits=quality_thresholds(project.pk),
            agreement=[_row(trend) for trend in trends],
            agreement_questions=questions,
            alignment=_alignment(project),
            accuracy=_accuracy(project),
            throughput=_throughput(project),
            alerts=list(QualityAlert.objects.filter(project=project)[:20]),
        )
        return render(request, "review/reports/quality.html", context)


def _title(report: AgreementReport) -> str:
    return f"{report.config.name} in {report.queue.name}: {report.level} over time"


def _points(rows: Any) -> list[tuple[str, float | None, float | None, float | None]]:
    return [
        (r["computed_at"].strftime("%Y-%m-%d %H:%M"), r["value"], r["ci_low"], r["ci_high"])
        for r in rows
    ]


def _row(trend: QuestionTrend) -> dict[str, Any]:
    """A question's row: the latest figure (or why none, or its small-sample warning)
    and a trend line over the newest reports."""
    latest = trend.latest
    title = _title(latest)
    return {
        "title": title,
        "queue": latest.queue,
        "config": latest.config,
        "latest": latest,
        "warning": latest.small_sample_warning,
        "trend": charts.trend(title, _points(trend.points)),
        "first": trend.points[0]["computed_at"] if trend.points else None,
        "shown": len(trend.points),
        "reports": trend.reports,
        "updating": trend.updating,
        "scale": scale_described(latest.config, latest.level),
    }


class AgreementHistoryView(ReviewProjectPage):
    """Every report of one question of one queue, newest first, a page at a time, with
    the line of the page's reports and their intervals. ``?page=`` is the only input."""

    allowed_roles = MANAGE_ROLES | {Role.AUDITOR}

    @reads_from_replica
    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, config_pk: int
    ) -> HttpResponse:
        reports = question_history(project=self.project, queue_id=queue_pk, config_id=config_pk)
        paginator = Paginator(reports.select_related("queue", "config"), HISTORY_PAGE_SIZE)
        page = paginator.get_page(PageNumberForm(request.GET).number())
        rows = list(page.object_list)
        if not rows:
            raise Http404("No such question in this project's agreement reports.")
        title = _title(rows[0])
        points = [
            (r.computed_at.strftime("%Y-%m-%d %H:%M"), r.value, r.ci_low, r.ci_high)
            for r in reversed(rows)
        ]
        context = self.context(
            title=title,
            queue=rows[0].queue,
            config=rows[0].config,
            svg=charts.line_with_band(title, points),
            rows=rows,
            page_obj=page,
            scale=scale_described(rows[0].config, rows[0].level),
        )
        return render(request, "review/reports/quality_history.html", context)


SCALE_WORDS = {
    "nominal": "unordered categories (nominal): any two different answers disagree",
    "ordinal": "ordered levels (ordinal): near answers nearly agree",
    "interval": "numbers (interval): the distance between answers counts",
}


def scale_described(config: ScoreConfig, level: str) -> dict[str, str]:
    """How the latest report read the question's answers (its level), in words, and,
    for a categorical question whose nominal/ordinal choice changed since, the choice
    the next report will use."""
    described = {"level": level, "words": SCALE_WORDS.get(level, level), "next": ""}
    if score_kind(config.data_type).has_options:
        chosen = "ordinal" if config.ordered else "nominal"
        if chosen != level:
            described["next"] = SCALE_WORDS[chosen]
    return described


def _alignment(project: Any) -> list[dict[str, Any]]:
    mappings = list(
        AlignmentMapping.objects.filter(project=project).select_related("config", "queue")
    )
    latest = {
        r.mapping_id: r
        for r in AlignmentReport.objects.filter(mapping__in=mappings)
        .order_by("mapping_id", "-computed_at", "-id")
        .distinct("mapping_id")
    }
    worst_ids = {
        w["item"]["trace_id"]
        for r in latest.values()
        for w in r.figures.get("worst_items", [])
        if isinstance(w.get("item"), dict)
    }
    external = dict(Trace.objects.filter(pk__in=worst_ids).values_list("pk", "external_id"))
    out = []
    for mapping in mappings:
        report = latest.get(mapping.pk)
        entry: dict[str, Any] = {
            "mapping": mapping,
            "report": report,
            "scope": (report.figures.get("scope") if report else None)
            or {"label": "every answer to the question", "left_out": {}},
        }
        entry["anchoring"] = report.figures.get("anchoring") if report else None
        confusion = report.figures.get("confusion") if report else None
        if confusion:
            title = f"{mapping.score_name} against {mapping.config.name}: confusion matrix"
            entry["svg"] = charts.heat_map(
                title,
                ["reviewers pass", "reviewers fail"],
                ["metric passes", "metric fails"],
                [
                    [confusion["true_positive"], confusion["false_negative"]],
                    [confusion["false_positive"], confusion["true_negative"]],
                ],
            )
            entry["confusion"] = confusion
            entry["numeric"] = report.figures.get("numeric") or {}
            entry["worst"] = [
                {
                    **w,
                    "external_id": external.get(w["item"].get("trace_id")),
                    "kind_label": w["kind"].replace("_", " "),
                }
                for w in report.figures.get("worst_items", [])
                if isinstance(w.get("item"), dict)
            ]
        out.append(entry)
    return out


def _accuracy(project: Any) -> dict[str, Any]:
    results = list(
        CalibrationResult.objects.filter(round__project=project)
        .select_related("reviewer", "round__calibration_set")
        .order_by("calibration_set_id", "reviewer_id", "-round__number")
        .distinct("calibration_set_id", "reviewer_id")
    )
    gold = list(
        GoldAccuracy.objects.filter(queue__project=project).select_related("reviewer", "queue")
    )
    items = [
        (f"{r.reviewer.email} · {r.round.calibration_set.name} #{r.round.number}", r.accuracy)
        for r in results
    ] + [(f"{g.reviewer.email} · gold in {g.queue.name}", g.accuracy) for g in gold]
    title = "Accuracy against gold, per reviewer"
    return {
        "results": results,
        "gold": gold,
        "svg": charts.bars(title, items, threshold=alert_threshold()) if items else None,
    }


def _throughput(project: Any) -> dict[str, Any]:
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=HOURS - 1)
    rows = list(
        Annotation.objects.filter(project=project, submitted_at__gte=start)
        .annotate(hour=TruncHour("submitted_at"))
        .values("hour", "reviewer__email")
        .annotate(n=Count("id"))
        .order_by("hour", "reviewer__email")
    )
    per_hour: dict[Any, int] = defaultdict(int)
    for row in rows:
        per_hour[row["hour"]] += row["n"]
    hours = [start + timedelta(hours=h) for h in range(HOURS)]
    items = [(h.strftime("%H:00"), per_hour.get(h, 0)) for h in hours]
    return {
        "svg": charts.columns(f"Answers per hour, last {HOURS} hours", items),
        "rows": rows,
        "total": sum(per_hour.values()),
    }
