"""Reads of agreement reports: the latest per question of a queue, and their history;
whether the latest reports cover a queue's answers; how a question's answers are coded
(its scale)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Max
from django.db.models.fields.json import KT

from hitl.replica import reads_from_replica
from review.models import Annotation, ReviewQueue, ScoreConfig
from review.quality.agreement import Level
from review.quality.agreement.report import small_sample_warning
from review.quality.models import AgreementReport
from review.selectors import queue_form
from traces.score_kinds import score_kind

HISTORY_LIMIT = 200
HISTORY_FIELDS = ("id", "config_id", "computed_at", "level", "value", "ci_low", "ci_high",
                  "n_items", "n_answers", "answers_covered", "reason")  # fmt: skip


@reads_from_replica
def queue_agreement(queue: ReviewQueue, *, history_limit: int = HISTORY_LIMIT) -> dict[str, Any]:
    """Per question of the queue's form (free text has none): the latest report, whole,
    and up to ``history_limit`` earlier headline figures, newest first; the reviewers
    the reports name, with their name and email (also beside each id in the figures)."""
    latest = latest_reports(queue.pk)
    people = _people(latest.values())
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
                "report": _report(report, people) if report else None,
                "reason": None if report else "Not computed yet: no overlapping answers so far.",
                "history": history,
            }
        )
    return {
        "queue": {"id": queue.pk, "name": queue.name, "overlap": queue.overlap},
        "refresh_pending": queue_refresh_pending(queue),
        "reviewers": sorted(people.values(), key=lambda p: (p["name"].lower(), p["id"])),
        "questions": questions,
    }


def _reviewer_ids(figures: dict[str, Any]) -> set[int]:
    ids = {r for pair in figures.get("pairs", ()) for r in pair["reviewers"]}
    ids |= {entry["reviewer"] for entry in figures.get("reviewers", ())}
    ids |= {
        answer["reviewer"]
        for item in figures.get("most_disagreeing_items", ())
        for answer in item["answers"]
    }
    return ids


def _people(reports: Any) -> dict[int, dict[str, Any]]:
    """The reviewers the reports name, by id: their name (the account's full name, else
    its username) and email."""
    ids = set().union(*(_reviewer_ids(r.figures or {}) for r in reports))
    rows = get_user_model().objects.filter(pk__in=ids)
    return {
        user.pk: {
            "id": user.pk,
            "name": user.get_full_name() or user.get_username(),
            "email": user.email,
        }
        for user in rows
    }


def _person(people: dict[int, dict[str, Any]], reviewer_id: int) -> dict[str, Any]:
    return people.get(reviewer_id) or {"id": reviewer_id, "name": "", "email": ""}


def _named(figures: dict[str, Any], people: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The stored figures with each reviewer id also given as name and email."""
    figures = copy.deepcopy(figures)
    for pair in figures.get("pairs", ()):
        pair["reviewer_details"] = [_person(people, r) for r in pair["reviewers"]]
    for entry in figures.get("reviewers", ()):
        person = _person(people, entry["reviewer"])
        entry["name"], entry["email"] = person["name"], person["email"]
    for item in figures.get("most_disagreeing_items", ()):
        for answer in item["answers"]:
            person = _person(people, answer["reviewer"])
            answer["name"], answer["email"] = person["name"], person["email"]
    return figures


def _history_entry(row: dict[str, Any]) -> dict[str, Any]:
    pairable = row.pop("pairable")
    n = int(pairable) if pairable is not None else row["n_items"]
    row["warning"] = small_sample_warning(n) if row["value"] is not None else None
    return row


def _report(report: AgreementReport, people: dict[int, dict[str, Any]]) -> dict[str, Any]:
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
        "figures": _named(report.figures, people),
    }


CSV_COLUMNS = ("config_id", "config", "computed_at", "scope", "reviewers", "reviewer_ids",
               "coefficient",
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
            rows.append({**base, "scope": "all", "reviewers": "", "reviewer_ids": "",
                         "coefficient": name, **_figure_columns(figure)})  # fmt: skip
        for pair in figures["pairs"]:
            people = pair.get("reviewer_details") or [
                {"id": r, "name": "", "email": ""} for r in pair["reviewers"]
            ]
            named = {
                "reviewers": "; ".join(f"{p['name']} <{p['email']}>" for p in people),
                "reviewer_ids": " ".join(str(p["id"]) for p in people),
            }
            for name, figure in pair.items():
                if name.startswith("cohen_kappa"):
                    rows.append({**base, "scope": "pair", **named, "coefficient": name,
                                 **_figure_columns(figure)})  # fmt: skip
    return rows


def _figure_columns(figure: dict[str, Any]) -> dict[str, Any]:
    columns = {key: figure[key] for key in ("value", "ci_low", "ci_high", "n_items", "n_answers",
                                            "reason")}  # fmt: skip
    columns["warning"] = (
        small_sample_warning(figure["n_items"]) if figure["value"] is not None else None
    )
    return columns


# A numeric question with a step and at most this many levels is a graded (ordinal)
# scale; otherwise its answers are numbers on an interval scale.
MAX_GRADED_LEVELS = 200


@dataclass(frozen=True)
class Coverage:
    """Which answers of a queue a report covers."""

    answers: int
    last_annotation_id: int | None
    last_change_at: datetime | None


def queue_coverage(queue_id: int) -> Coverage:
    row = Annotation.objects.filter(queue_id=queue_id).aggregate(
        answers=Count("id"), last=Max("id"), changed=Max("updated_at")
    )
    return Coverage(row["answers"], row["last"], row["changed"])


def _covers(report: AgreementReport, coverage: Coverage) -> bool:
    return (
        report.answers_covered == coverage.answers
        and report.last_annotation_id == coverage.last_annotation_id
        and report.last_change_at == coverage.last_change_at
    )


def reports_cover(
    configs: list[ScoreConfig], latest: dict[int, AgreementReport], coverage: Coverage
) -> bool:
    """Whether the latest reports cover these answers, each on its question's version."""
    return all(
        c.pk in latest
        and latest[c.pk].config_version == c.version
        and _covers(latest[c.pk], coverage)
        for c in configs
    )


def scaled_configs(queue: ReviewQueue) -> list[ScoreConfig]:
    return [q.config for q in queue_form(queue) if scale_of(q.config) is not None]


def queue_refresh_pending(queue: ReviewQueue) -> bool:
    """Whether the queue has answers its latest agreement reports do not cover (newer
    or edited answers, or a question edited since its report): the figures shown are
    being brought up to date. False for a queue without overlap or without answers."""
    if queue.overlap < 2:
        return False
    coverage = queue_coverage(queue.pk)
    if not coverage.answers:
        return False
    configs = scaled_configs(queue)
    return bool(configs) and not reports_cover(configs, latest_reports(queue.pk), coverage)


def latest_reports(queue_id: int) -> dict[int, AgreementReport]:
    """The newest report of each question of the queue, by config id."""
    rows = (
        AgreementReport.objects.filter(queue_id=queue_id)
        .order_by("config_id", "-computed_at", "-id")
        .distinct("config_id")
    )
    return {report.config_id: report for report in rows}


def scale_of(config: ScoreConfig) -> dict[str, Any] | None:
    """How a question's answers are coded: categories in order, level, whether ordered;
    None for free text (no agreement figure)."""
    kind = score_kind(config.data_type)
    if kind.yes_no:
        return {"categories": [False, True], "level": Level.NOMINAL, "ordered": False}
    if kind.has_options:
        # Nominal or ordinal as the question says (ScoreConfig.ordered), never guessed
        # from its option values.
        options = list(config.options)
        if config.ordered:
            options.sort(key=lambda o: o["value"])
        return {
            "categories": [o["label"] for o in options],
            "level": Level.ORDINAL if config.ordered else Level.NOMINAL,
            "ordered": bool(config.ordered),
        }
    if kind.numeric:
        lo, hi, step = config.min_value, config.max_value, config.step
        if step and lo is not None and hi is not None and (hi - lo) / step <= MAX_GRADED_LEVELS:
            levels = round((hi - lo) / step) + 1
            grid = [round(lo + k * step, 10) for k in range(levels)]
            return {"categories": grid, "level": Level.ORDINAL, "ordered": True, "grid": (lo, step)}
        return {"categories": None, "level": Level.INTERVAL, "ordered": True}
    return None


def scaled_answer(value: Any, scale: dict[str, Any]) -> Any:
    if "grid" in scale:
        lo, step = scale["grid"]
        index = round((float(value) - lo) / step)
        return scale["categories"][min(max(index, 0), len(scale["categories"]) - 1)]
    if scale["level"] == Level.INTERVAL:
        return float(value)
    return value
