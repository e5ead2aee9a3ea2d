"""The lead's quality pages: calibration sets (questions, thresholds, traces with gold
answers), rounds sent to chosen reviewers and their results (accuracy against gold and
the group's agreement, per question and gold level; the set's rounds compared), metric
alignment mappings, and the project's alert thresholds.

Owners and admins write; auditors read (results name reviewers and their accuracy, as
on the quality report); other roles answer 403, and a project the member may not see
404. Writes go through ``review.quality.services.calibration``, ``.alignment`` and ``.alerts``
as the signed-in person; reads through ``review.quality.selectors.calibration``. A refused
write shows the page again with the reasons and status 422.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from hitl.exceptions import DomainError
from hitl.forms import form_add_domain_error, form_error_lines
from projects.models import MANAGE_ROLES, Role
from projects.pages import OrganizationPageView
from review.models import ReviewQueue
from review.page_base import ReviewProjectPage
from review.quality.forms import (
    ANSWER_PREFIX,
    TOLERANCE_PREFIX,
    AlignmentMappingForm,
    AlignmentScopeForm,
    CalibrationSetForm,
    CalibrationThresholdsForm,
    GoldAnswerForm,
    QualitySettingsForm,
    RoundStartForm,
    add_service_errors,
)
from review.quality.models import (
    AlignmentMapping,
    AlignmentScope,
    CalibrationRound,
    CalibrationSet,
    GoldAnswer,
)
from review.quality.selectors import calibration as selectors
from review.quality.services import alerts, alignment, calibration
from traces.score_kinds import score_kind

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class QualityPageView(ReviewProjectPage):
    """A page of the project's quality work: managers write, auditors read."""

    allowed_roles = MANAGE_ROLES | {Role.AUDITOR}

    def enter(self, **kwargs: Any) -> None:
        super().enter(**kwargs)
        if self.request.method not in SAFE_METHODS and self.membership.role not in MANAGE_ROLES:
            raise PermissionDenied

    def context(self, **extra: Any) -> dict[str, Any]:
        return super().context(can_manage=self.membership.role in MANAGE_ROLES, **extra)

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
        if score_kind(c.data_type).numeric
    ]


def _picked(form: Any, name: str) -> list[str]:
    """The values ticked in a refused form's ``name``, to tick them again."""
    return [str(v) for v in form.data.getlist(name)] if form is not None and form.is_bound else []


# --- calibration sets -------------------------------------------------------------------------


class CalibrationSetListView(QualityPageView):
    """GET: the project's calibration sets. POST: a new set (name, questions, what
    passing takes; :class:`CalibrationSetForm`); its traces and gold answers are added
    on the set's page."""

    def page(self, form: CalibrationSetForm | None = None, *, status: int = 200) -> HttpResponse:
        configs = selectors.gold_configs(self.project)
        form = form or CalibrationSetForm(configs=configs)
        context = self.context(
            sets=selectors.calibration_sets_overview(self.project),
            configs=configs,
            form=form,
            posted=form.data if form.is_bound else {"min_accuracy": "0.8"},
            picked=_picked(form, "config"),
            errors=form_error_lines(form) if form.is_bound else [],
        )
        return render(self.request, "review/calibration/sets.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        form = CalibrationSetForm(request.POST, configs=selectors.gold_configs(self.project))
        if form.is_valid():
            try:
                row = calibration.calibration_set_create(
                    actor=self.actor, project=self.project, **form.service_fields()
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields={"config_ids": "config"})
            else:
                messages.success(request, f"Created the calibration set “{row.name}”.")
                return redirect(self.url("calibration-set", calibration_set_pk=row.pk))
        return self.page(form, status=422)


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
        form: GoldAnswerForm | RoundStartForm | None = None,
        status: int = 200,
        thresholds: CalibrationThresholdsForm | None = None,
    ) -> HttpResponse:
        configs = selectors.set_questions(calibration_set)
        questions = selectors.question_form(configs)
        gold_form = form if isinstance(form, GoldAnswerForm) else None
        for question in questions:
            # The gold form shows what was posted again, and why, when it was refused.
            key = f"{ANSWER_PREFIX}{question['config_id']}"
            question["posted"] = str(gold_form.data.get(key, "")) if gold_form else ""
            question["errors"] = list(gold_form[key].errors) if gold_form else []
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
            form=form,
            errors=form_error_lines(form) if form is not None else [],
            posted=form.data if form is not None else {},
            picked_reviewers=_picked(form, "reviewer"),
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
        form = GoldAnswerForm(request.POST, project=self.project, questions=questions)
        if form.is_valid():
            try:
                calibration.gold_answer_set(
                    actor=self.actor,
                    calibration_set=row,
                    trace_id=form.cleaned_data["trace"],
                    values=form.values(),
                    explanation=form.cleaned_data["explanation"],
                )
            except DomainError as exc:
                add_service_errors(form, exc, {"values": ANSWER_PREFIX, "trace_id": "trace"})
            else:
                messages.success(request, f"Saved the gold answers for “{form.external_id}”.")
                return redirect(self.url("calibration-set", calibration_set_pk=row.pk) + "#gold")
        return self.page(row, failed="gold", form=form, status=422)


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
        form = RoundStartForm(request.POST, reviewers=selectors.reviewer_choices(self.project))
        if form.is_valid():
            chosen = sorted(set(form.cleaned_data["reviewer"]))
            try:
                round_ = calibration.calibration_round_start(
                    actor=self.actor, calibration_set=row, reviewer_ids=chosen
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields={"reviewer_ids": "reviewer"})
            else:
                messages.success(
                    request, f"Round {round_.number} sent to {len(chosen)} reviewer(s)."
                )
                return redirect(self.url("calibration-round", calibration_round_pk=round_.pk))
        return self.page(row, failed="round", form=form, status=422)


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
        status: int = 200,
        form: AlignmentMappingForm | None = None,
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
        configs = selectors.gold_configs(self.project)
        form = form or AlignmentMappingForm(queues=queues, configs=configs)
        context = self.context(
            mappings=mappings,
            queues=queues,
            questions=selectors.question_form(configs),
            score_names=AlignmentMappingForm.score_names_for(self.project, self.request.user),
            scope_form=form,
            form=form,
            posted=form.data if form.is_bound else {},
            errors=form_error_lines(form) if form.is_bound else [],
        )
        return render(self.request, "review/calibration/alignment.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        form = AlignmentMappingForm(
            request.POST,
            queues=selectors.alignment_queue_choices(self.project),
            configs=selectors.gold_configs(self.project),
        )
        if form.is_valid():
            try:
                mapping = alignment.alignment_mapping_create(
                    actor=self.actor, project=self.project, **form.service_fields()
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields={"queue_id": "queue"})
            else:
                messages.success(
                    request, f"Mapped “{mapping.score_name}”; its first report is on its way."
                )
                return redirect(self.url("alignment-mappings"))
        return self.page(form=form, status=422)


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

    def page(self, form: QualitySettingsForm | None = None, *, status: int = 200) -> HttpResponse:
        limits = alerts.quality_thresholds(self.project.pk)
        values = (
            form.data
            if form is not None
            else {
                "agreement_threshold": f"{limits.agreement_threshold:g}",
                "alignment_threshold": f"{limits.alignment_threshold:g}",
                "window": str(limits.window),
            }
        )
        context = self.context(
            limits=limits,
            values=values,
            form=form or QualitySettingsForm(),
            window_range=alerts.WINDOW_RANGE,
            errors=form_error_lines(form) if form is not None else [],
        )
        return render(self.request, "review/calibration/settings.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        form = QualitySettingsForm(request.POST)
        if form.is_valid():
            try:
                alerts.quality_settings_update(
                    actor=self.actor, project=self.project, **form.cleaned_data
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Saved the quality alert thresholds.")
                return redirect(self.url("reports-quality-settings"))
        return self.page(form, status=422)


class MyCalibrationView(OrganizationPageView):
    """A reviewer's calibration rounds: what each asks, how far they are, their result
    once scored, and the queues passing it opens. Where a member with a round to take
    lands after signing in; reads no input (starting a round is My work's "start"
    form on the round's queue)."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        rounds = selectors.my_rounds(membership=self.membership)
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "rounds": rounds,
            "to_do": [r for r in rounds if r["to_do"]],
        }
        return render(request, "review/calibration/mine.html", context)
