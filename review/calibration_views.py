"""The lead's quality pages: calibration sets (questions, thresholds, traces with gold
answers), rounds sent to chosen reviewers and their results (accuracy against gold and
the group's agreement, per question and gold level; the set's rounds compared), metric
alignment mappings, and the project's alert thresholds.

Owners and admins write; auditors read (results name reviewers and their accuracy, as
on the quality report); other roles answer 403, and a project the member may not see
404. Writes go through ``review.services.calibration``, ``.alignment`` and ``.alerts``
as the signed-in person; reads through ``review.calibration_selectors``. A refused
write shows the page again with the reasons and status 422.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl.exceptions import DomainError
from projects.models import MANAGE_ROLES, Role
from projects.pages import ProjectPageView
from review import calibration_selectors as selectors
from review.calibration_forms import (
    TOLERANCE_PREFIX,
    AlignmentScopeForm,
    CalibrationThresholdsForm,
    add_service_errors,
)
from review.models import (
    AlignmentMapping,
    AlignmentScope,
    CalibrationRound,
    CalibrationSet,
    GoldAnswer,
    ReviewQueue,
)
from review.services import alerts, alignment, calibration
from review.views import answers_from_post
from traces.models import ScoreDataType, Trace

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class QualityPageView(ProjectPageView):
    """A page of the project's quality work: managers write, auditors read."""

    allowed_roles = MANAGE_ROLES | {Role.AUDITOR}

    def enter(self, **kwargs: Any) -> None:
        super().enter(**kwargs)
        if self.request.method not in SAFE_METHODS and self.membership.role not in MANAGE_ROLES:
            raise PermissionDenied

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "membership": self.membership,
            "project": self.project,
            "can_manage": self.membership.role in MANAGE_ROLES,
            **extra,
        }

    def url(self, name: str, **kwargs: Any) -> str:
        return reverse(
            name,
            kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug} | kwargs,
        )

    def calibration_set(self, pk: int) -> CalibrationSet:
        row = CalibrationSet.objects.filter(project=self.project, pk=pk).first()
        if row is None:
            raise Http404
        return row


def tolerance_shown(value: Any) -> str:
    """A numeric question's tolerance as written ("1", "0.5"), or "" when answers must
    equal gold."""
    return f"{value:g}" if isinstance(value, int | float) and value > 0 else ""


def tolerance_rows(configs: list[Any], tolerances: dict[str, Any]) -> list[dict[str, str]]:
    """Each numeric question with its tolerance as shown ("" when it must equal gold)."""
    return [
        {"name": c.name, "tolerance": tolerance_shown(tolerances.get(str(c.pk)))}
        for c in configs
        if c.data_type == ScoreDataType.NUMERIC
    ]


def error_lines(exc: DomainError) -> list[str]:
    """A service error as sentences: the message, then each field's reasons."""
    lines = [exc.message]
    details = exc.details if isinstance(exc.details, dict) else {}
    for name, reasons in details.items():
        if isinstance(reasons, dict):
            lines.extend(f"{name} {inner}: {_join(why)}" for inner, why in reasons.items())
        else:
            lines.append(f"{name}: {_join(reasons)}")
    if isinstance(exc.details, list):
        lines.extend(str(d) for d in exc.details)
    return lines


def _join(reasons: Any) -> str:
    return ", ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)


def _number(post: QueryDict, name: str, label: str, errors: list[str]) -> float | None:
    """A posted number (None when left empty); a typing error is added to ``errors``."""
    raw = post.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors.append(f"{label}: a number is expected, not “{raw}”.")
        return None
    return value


def _ids(post: QueryDict, name: str) -> list[int]:
    ids = (int(v) for v in post.getlist(name) if v.strip().isdigit())
    return [i for i in ids if i < 2**63]


def _text(post: QueryDict, name: str, label: str, limit: int, errors: list[str]) -> str:
    """A posted line of text; longer than the column holds is refused."""
    value = post.get(name, "").strip()
    if len(value) > limit:
        errors.append(f"{label}: at most {limit} characters.")
    return value


# --- calibration sets -------------------------------------------------------------------------


class CalibrationSetListView(QualityPageView):
    """GET: the project's calibration sets. POST: a new set (name, questions, what
    passing takes); its traces and gold answers are added on the set's page."""

    def page(
        self, *, posted: Any = None, errors: list[str] | None = None, status: int = 200
    ) -> HttpResponse:
        context = self.context(
            sets=selectors.calibration_sets_overview(self.project),
            configs=selectors.gold_configs(self.project),
            posted=posted or {"min_accuracy": "0.8"},
            picked=[str(i) for i in _ids(posted, "config")] if posted else [],
            errors=errors or [],
        )
        return render(self.request, "review/calibration/sets.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        errors: list[str] = []
        name = _text(request.POST, "name", "Name", 200, errors)
        if not name:
            errors.append("Name: required.")
        min_accuracy = _number(request.POST, "min_accuracy", "Accuracy to pass", errors)
        min_agreement = _number(request.POST, "min_agreement", "Agreement to pass", errors)
        if not errors:
            try:
                row = calibration.calibration_set_create(
                    actor=self.actor,
                    project=self.project,
                    name=name,
                    description=request.POST.get("description", "").strip(),
                    config_ids=_ids(request.POST, "config"),
                    min_accuracy=0.8 if min_accuracy is None else min_accuracy,
                    min_agreement=min_agreement,
                )
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(request, f"Created the calibration set “{row.name}”.")
                return redirect(self.url("calibration-set", calibration_set_pk=row.pk))
        return self.page(posted=request.POST, errors=errors, status=422)


class CalibrationSetView(QualityPageView):
    """GET: a set's questions, what passing takes (thresholds and, per numeric question,
    the tolerance an answer may be off gold by), its traces with their gold answers, the
    form to add one, the reviewers to send a round to, and its rounds compared.
    POST: new thresholds, tolerances and description (:class:`CalibrationThresholdsForm`)."""

    def page(
        self,
        calibration_set: CalibrationSet,
        *,
        failed: str = "",
        errors: list[str] | None = None,
        posted: Any = None,
        status: int = 200,
        thresholds: CalibrationThresholdsForm | None = None,
    ) -> HttpResponse:
        configs = selectors.set_questions(calibration_set)
        questions = selectors.question_form(configs)
        for question in questions:
            # The gold form shows what was posted again when it was refused.
            key = f"q-{question['config_id']}"
            question["posted"] = posted.get(key, "") if posted and failed == "gold" else ""
            question["tolerance"] = tolerance_shown(
                calibration_set.tolerances.get(str(question["config_id"]))
            )
        if thresholds is None:
            thresholds = CalibrationThresholdsForm(
                calibration_set=calibration_set, questions=configs
            )
        context = self.context(
            calibration_set=calibration_set,
            questions=questions,
            thresholds=thresholds,
            tolerance_rows=tolerance_rows(configs, calibration_set.tolerances),
            gold=selectors.gold_rows(calibration_set, configs),
            recent_traces=selectors.recent_trace_ids(self.project),
            reviewers=selectors.reviewer_choices(self.project),
            compared=selectors.rounds_compared(calibration_set),
            failed=failed,
            errors=errors or [],
            posted=posted or {},
            picked_reviewers=[str(i) for i in _ids(posted, "reviewer")] if posted else [],
        )
        return render(self.request, "review/calibration/set.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, calibration_set_pk: int
    ) -> HttpResponse:
        return self.page(self.calibration_set(calibration_set_pk))

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, calibration_set_pk: int
    ) -> HttpResponse:
        row = self.calibration_set(calibration_set_pk)
        form = CalibrationThresholdsForm(
            request.POST, calibration_set=row, questions=selectors.set_questions(row)
        )
        if form.is_valid():
            try:
                calibration.calibration_set_update(
                    actor=self.actor,
                    calibration_set=row,
                    min_accuracy=form.cleaned_data["min_accuracy"],
                    min_agreement=form.cleaned_data["min_agreement"],
                    description=form.cleaned_data["description"].strip(),
                    tolerances=form.tolerances(),
                )
            except DomainError as exc:
                add_service_errors(form, exc, {"tolerances": TOLERANCE_PREFIX})
            else:
                messages.success(request, "Saved what passing the set takes.")
                return redirect(self.url("calibration-set", calibration_set_pk=row.pk))
        return self.page(row, failed="thresholds", thresholds=form, status=422)


class GoldAnswerView(CalibrationSetView):
    """POST: the gold answers for one trace of the set (named by its id in the
    explorer), written or rewritten."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, calibration_set_pk: int
    ) -> HttpResponse:
        row = self.calibration_set(calibration_set_pk)
        questions = selectors.question_form(selectors.set_questions(row))
        values, typing = answers_from_post(questions, request.POST)
        errors = list(typing.values())
        external_id = request.POST.get("trace", "").strip()
        trace_pk = (
            Trace.objects.filter(project=self.project, external_id=external_id)
            .values_list("pk", flat=True)
            .first()
        )
        if not external_id:
            errors.insert(0, "Trace: the trace's id is required.")
        elif trace_pk is None:
            errors.insert(0, f"Trace: no trace “{external_id}” in this project.")
        if not errors:
            try:
                calibration.gold_answer_set(
                    actor=self.actor,
                    calibration_set=row,
                    trace_id=trace_pk,
                    values=values,
                    explanation=request.POST.get("explanation", "").strip(),
                )
            except DomainError as exc:
                names = {str(q["config_id"]): q["name"] for q in questions}
                errors = [exc.message] + [
                    f"{names.get(key, key)}: {why}"
                    for key, why in ((exc.details or {}).get("values") or {}).items()
                ]
            else:
                messages.success(request, f"Saved the gold answers for “{external_id}”.")
                return redirect(self.url("calibration-set", calibration_set_pk=row.pk) + "#gold")
        return self.page(row, failed="gold", errors=errors, posted=request.POST, status=422)


class GoldAnswerRemoveView(CalibrationSetView):
    """POST: takes a trace out of the set."""

    http_method_names = ["post"]

    def post(
        self,
        request: HttpRequest,
        org_slug: str,
        project_slug: str,
        calibration_set_pk: int,
        gold_answer_pk: int,
    ) -> HttpResponse:
        row = self.calibration_set(calibration_set_pk)
        gold = GoldAnswer.objects.filter(calibration_set=row, pk=gold_answer_pk).first()
        if gold is None:
            raise Http404
        calibration.gold_answer_remove(actor=self.actor, gold=gold)
        messages.success(request, "Removed the trace from the set.")
        return redirect(self.url("calibration-set", calibration_set_pk=row.pk) + "#gold")


class CalibrationRoundStartView(CalibrationSetView):
    """POST: sends the set to the chosen reviewers (a new round)."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, calibration_set_pk: int
    ) -> HttpResponse:
        row = self.calibration_set(calibration_set_pk)
        chosen = set(_ids(request.POST, "reviewer"))
        allowed = {m.user_id for m in selectors.reviewer_choices(self.project)}
        errors: list[str] = []
        if chosen - allowed:
            errors.append("Reviewers: choose among the members listed.")
        if not errors:
            try:
                round_ = calibration.calibration_round_start(
                    actor=self.actor, calibration_set=row, reviewer_ids=sorted(chosen)
                )
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(
                    request, f"Round {round_.number} sent to {len(chosen)} reviewer(s)."
                )
                return redirect(self.url("calibration-round", calibration_round_pk=round_.pk))
        return self.page(row, failed="round", errors=errors, posted=request.POST, status=422)


# --- rounds -----------------------------------------------------------------------------------


class CalibrationRoundView(QualityPageView):
    """GET: a round's progress and results; POST (``.../score/``): scores it from the
    answers given so far (a rerun replaces the results)."""

    def load(self, calibration_round_pk: int) -> CalibrationRound:
        row = (
            CalibrationRound.objects.filter(project=self.project, pk=calibration_round_pk)
            .select_related("calibration_set", "queue")
            .first()
        )
        if row is None:
            raise Http404
        return row

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, calibration_round_pk: int
    ) -> HttpResponse:
        round_ = self.load(calibration_round_pk)
        detail = selectors.round_detail(round_)
        scored = {
            str(q["config_id"]): q.get("tolerance")
            for q in (round_.figures or {}).get("questions", [])
            if "tolerance" in q
        }
        if round_.scored_at is not None and scored:
            tolerances, note = scored, "as this round was scored"
        else:
            tolerances = round_.calibration_set.tolerances
            note = "the set's tolerances, used by the next scoring"
        context = self.context(
            round=round_,
            calibration_set=round_.calibration_set,
            detail=detail,
            tolerance_rows=tolerance_rows(detail["configs"], tolerances),
            tolerance_note=note,
            compared=selectors.rounds_compared(round_.calibration_set),
        )
        return render(request, "review/calibration/round.html", context)


class CalibrationRoundScoreView(CalibrationRoundView):
    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, calibration_round_pk: int
    ) -> HttpResponse:
        round_ = self.load(calibration_round_pk)
        calibration.calibration_round_score(actor=self.actor, round_=round_)
        messages.success(request, f"Scored round {round_.number}.")
        return redirect(self.url("calibration-round", calibration_round_pk=round_.pk))


# --- alignment --------------------------------------------------------------------------------


class AlignmentMappingListView(QualityPageView):
    """GET: automated scores mapped to questions, each with whose answers it counts
    (its scope) and its latest report. POST: a new mapping with its scope
    (:class:`AlignmentScopeForm`); its first report is requested from a worker."""

    def page(
        self,
        *,
        posted: Any = None,
        errors: list[str] | None = None,
        status: int = 200,
        scope_form: AlignmentScopeForm | None = None,
        refused: tuple[int, AlignmentScopeForm] | None = None,
    ) -> HttpResponse:
        queues = selectors.alignment_queue_choices(self.project)
        mappings = selectors.alignment_overview(self.project)
        for row in mappings:
            mapping = row["mapping"]
            if refused is not None and refused[0] == mapping.pk:
                row["scope_form"] = refused[1]
            else:
                row["scope_form"] = AlignmentScopeForm(
                    queues=_with_current(queues, mapping),
                    initial={"scope": mapping.scope, "queue": mapping.queue_id},
                )
            row["scope_label"] = AlignmentScope(mapping.scope).label
        context = self.context(
            mappings=mappings,
            queues=queues,
            questions=selectors.question_form(selectors.gold_configs(self.project)),
            scope_form=scope_form or AlignmentScopeForm(queues=queues),
            posted=posted or {},
            errors=errors or [],
        )
        return render(self.request, "review/calibration/alignment.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        post = request.POST
        errors: list[str] = []
        score_name = _text(post, "score_name", "Automated score", 256, errors)
        source_version = _text(post, "source_version", "Judge version", 128, errors)
        labels = [label.strip() for label in post.get("human_pass_labels", "").split(",")]
        labels = [label for label in labels if label]
        if any(len(label) > 200 for label in labels):
            errors.append("Labels that pass: at most 200 characters each.")
        if not score_name:
            errors.append("Automated score: its name is required.")
        config_id = post.get("config_id", "").strip()
        if not config_id.isdigit() or int(config_id) >= 2**63:
            errors.append("Question: choose one.")
        metric_threshold = _number(post, "metric_threshold", "Metric passes from", errors)
        human_threshold = _number(post, "human_threshold", "Reviewers pass from", errors)
        scope_form = AlignmentScopeForm(
            post, queues=selectors.alignment_queue_choices(self.project)
        )
        scope_ok = scope_form.is_valid()
        if not errors and scope_ok:
            try:
                with transaction.atomic():
                    mapping = alignment.alignment_mapping_create(
                        actor=self.actor,
                        project=self.project,
                        score_name=score_name,
                        source_version=source_version,
                        config_id=int(config_id),
                        metric_threshold=metric_threshold,
                        human_threshold=human_threshold,
                        human_pass_labels=labels,
                        scope=scope_form.cleaned_data["scope"],
                        queue_id=scope_form.queue_id(),
                    )
                    alignment.alignment_request(mapping=mapping)
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(
                    request, f"Mapped “{mapping.score_name}”; its first report is on its way."
                )
                return redirect(self.url("alignment-mappings"))
        if not scope_ok:
            errors += [
                f"{scope_form[name].label}: {' '.join(reasons)}"
                for name, reasons in scope_form.errors.items()
            ]
        return self.page(posted=post, errors=errors, status=422, scope_form=scope_form)


def _with_current(queues: list[ReviewQueue], mapping: AlignmentMapping) -> list[ReviewQueue]:
    """The queues a mapping's scope may name: the live ones, and the one it names now
    (archived since, it stays choosable until changed)."""
    if mapping.queue_id is None or any(q.pk == mapping.queue_id for q in queues):
        return queues
    current = ReviewQueue.objects.filter(project=mapping.project_id, pk=mapping.queue_id).first()
    return [*queues, current] if current is not None else queues


class AlignmentScopeView(AlignmentMappingListView):
    """POST: whose answers a mapping counts (production answers or every answer,
    optionally one queue's); a new report is requested, earlier ones keep theirs."""

    http_method_names = ["post"]

    def post(  # type: ignore[override]
        self, request: HttpRequest, org_slug: str, project_slug: str, alignment_mapping_pk: int
    ) -> HttpResponse:
        mapping = (
            AlignmentMapping.objects.filter(project=self.project, pk=alignment_mapping_pk)
            .select_related("project")
            .first()
        )
        if mapping is None:
            raise Http404
        form = AlignmentScopeForm(
            request.POST,
            queues=_with_current(selectors.alignment_queue_choices(self.project), mapping),
        )
        if form.is_valid():
            try:
                alignment.alignment_mapping_scope_set(
                    actor=self.actor,
                    mapping=mapping,
                    scope=form.cleaned_data["scope"],
                    queue_id=form.queue_id(),
                )
            except DomainError as exc:
                add_service_errors(form, exc, {"queue_id": "queue"})
            else:
                label = AlignmentScope(mapping.scope).label
                messages.success(
                    request,
                    f"“{mapping.score_name}” now counts {label}; a new report is on its way.",
                )
                return redirect(self.url("alignment-mappings"))
        return self.page(status=422, refused=(mapping.pk, form))


class AlignmentRefreshView(QualityPageView):
    """POST: asks a worker for a new report of the mapping."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, alignment_mapping_pk: int
    ) -> HttpResponse:
        mapping = AlignmentMapping.objects.filter(
            project=self.project, pk=alignment_mapping_pk
        ).first()
        if mapping is None:
            raise Http404
        with transaction.atomic():
            alignment.alignment_request(mapping=mapping)
        messages.success(request, f"A new report of “{mapping.score_name}” is on its way.")
        return redirect(self.url("alignment-mappings"))


# --- quality settings -------------------------------------------------------------------------


class QualitySettingsView(QualityPageView):
    """GET: the thresholds the project's alerts use (the site's defaults until set).
    POST: new thresholds and window."""

    def page(
        self, *, posted: Any = None, errors: list[str] | None = None, status: int = 200
    ) -> HttpResponse:
        limits = alerts.quality_thresholds(self.project.pk)
        values = posted or {
            "agreement_threshold": f"{limits.agreement_threshold:g}",
            "alignment_threshold": f"{limits.alignment_threshold:g}",
            "window": str(limits.window),
        }
        context = self.context(
            limits=limits,
            values=values,
            window_range=alerts.WINDOW_RANGE,
            errors=errors or [],
        )
        return render(self.request, "review/calibration/settings.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        post = request.POST
        errors: list[str] = []
        agreement = _number(post, "agreement_threshold", "Agreement threshold", errors)
        aligned = _number(post, "alignment_threshold", "Alignment threshold", errors)
        window_raw = post.get("window", "").strip()
        window = int(window_raw) if window_raw.isdigit() else None
        for value, label in ((agreement, "Agreement threshold"), (aligned, "Alignment threshold")):
            if value is None and not any(e.startswith(label) for e in errors):
                errors.append(f"{label}: required.")
        if window is None:
            errors.append("Window: a whole number of reports is expected.")
        if not errors:
            try:
                alerts.quality_settings_update(
                    actor=self.actor,
                    project=self.project,
                    agreement_threshold=agreement,
                    alignment_threshold=aligned,
                    window=window,
                )
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(request, "Saved the quality alert thresholds.")
                return redirect(self.url("reports-quality-settings"))
        return self.page(posted=post, errors=errors, status=422)
