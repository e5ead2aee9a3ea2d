"""Reads of agreement reports: the latest per question of a queue, and their history."""

from __future__ import annotations

from typing import Any

from django.db.models.fields.json import KT

from review.agreement.report import small_sample_warning
from review.models import AgreementReport, ReviewQueue
from review.services.agreement import latest_reports, queue_refresh_pending, scale_of

HISTORY_LIMIT = 200
HISTORY_FIELDS = ("id", "config_id", "computed_at", "level", "value", "ci_low", "ci_high",
                  "n_items", "n_answers", "answers_covered", "reason")  # fmt: skip


def queue_agreement(queue: ReviewQueue, *, history_limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    """Per question of the queue's form (free text has none): the latest report, whole,
    and up to ``history_limit`` earlier headline figures, newest first."""
    latest = latest_reports(queue.pk)
    questions = []
    fields = queue.form_fields.select_related("config").order_by("position")
    for field in fields:
        config = field.config
        if scale_of(config) is None:
            continue
        report = latest.get(config.pk)
        history = [
            _history_entry(row)
            for row in AgreementReport.objects.filter(queue=queue, config=config)
            .order_by("-computed_at", "-id")
            .values(*HISTORY_FIELDS, pairable=KT("figures__n_pairable_items"))[:history_limit]
        ]
        questions.append(
            {
                "config": {"id": config.pk, "name": config.name, "data_type": config.data_type},
                "report": _report(report) if report else None,
                "reason": None if report else "Not computed yet: no overlapping answers so far.",
                "history": history,
            }
        )
    return {
        "queue": {"id": queue.pk, "name": queue.name, "overlap": queue.overlap},
        "refresh_pending": queue_refresh_pending(queue),
        "questions": questions,
    }


def _history_entry(row: dict[str, Any]) -> dict[str, Any]:
    pairable = row.pop("pairable")
    n = int(pairable) if pairable is not None else row["n_items"]
    row["warning"] = small_sample_warning(n) if row["value"] is not None else None
    return row


def _report(report: AgreementReport) -> dict[str, Any]:
    return {
        "id": report.pk,
        "computed_at": report.computed_at,
        "config_version": report.config_version,
        "answers_covered": report.answers_covered,
        "last_annotation_id": report.last_annotation_id,
        "last_change_at": report.last_change_at,
        "duration_ms": report.duration_ms,
        "level": report.level,
        "value": report.value,
        "ci_low": report.ci_low,
        "ci_high": report.ci_high,
        "reason": report.reason or None,
        "warning": report.small_sample_warning,
        "figures": report.figures,
    }


CSV_COLUMNS = ("config_id", "config", "computed_at", "scope", "reviewers", "coefficient",
               "value", "ci_low", "ci_high", "n_items", "n_answers", "reason",
               "warning")  # fmt: skip


def agreement_csv_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest figures as flat rows: each coefficient of each question, then each
    reviewer pair's."""
    rows = []
    for question in summary["questions"]:
        report = question["report"]
        if report is None:
            continue
        base = {
            "config_id": question["config"]["id"],
            "config": question["config"]["name"],
            "computed_at": report["computed_at"].isoformat(),
        }
        figures = report["figures"]
        for name, figure in figures["coefficients"].items():
            rows.append({**base, "scope": "all", "reviewers": "", "coefficient": name,
                         **_figure_columns(figure)})  # fmt: skip
        for pair in figures["pairs"]:
            reviewers = " ".join(str(r) for r in pair["reviewers"])
            for name, figure in pair.items():
                if name.startswith("cohen_kappa"):
                    rows.append({**base, "scope": "pair", "reviewers": reviewers,
                                 "coefficient": name, **_figure_columns(figure)})  # fmt: skip
    return rows


def _figure_columns(figure: dict[str, Any]) -> dict[str, Any]:
    columns = {key: figure[key] for key in ("value", "ci_low", "ci_high", "n_items", "n_answers",
                                            "reason")}  # fmt: skip
    columns["warning"] = (
        small_sample_warning(figure["n_items"]) if figure["value"] is not None else None
    )
    return columns
