"""The lead's pages: rubrics (score configs and their versions), queues (settings, form,
pool), items and annotations with their history, and adding every trace a filter
matches to a queue. The board is :mod:`review.pages.board`, routing rules
:mod:`review.pages.routing`; both build on ``LeadPageView``.

Managers only (owner, admin): others answer 403, and a project the member may not see
answers 404 (``OrganizationPageView`` and the one visibility rule). Writes go through
``review.services`` as the signed-in person with source "web"; reads through
``review.pages.lead_selectors`` and the review and trace selectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl import audit
from hitl.exceptions import DomainError
from hitl.forms import error_lines, form_add_domain_error, form_error_lines
from projects.confirmations import Confirmation, confirmation_page
from projects.models import MANAGE_ROLES
from projects.selectors import membership_sees_project
from review import selectors, services
from review.models import (
    Annotation,
    AssignmentStrategy,
    QueueItem,
    ReviewQueue,
    ScoreConfig,
    ScoreTarget,
)
from review.page_base import ReviewProjectPage
from review.pages import lead_selectors, turn_selectors
from review.pages.lead_forms import (
    ArchiveForm,
    BulkAddForm,
    FilterForm,
    QueueForm,
)
from review.pages.rubric_forms import (
    BLANK_OPTION,
    OPTION,
    RubricForm,
    apply_row_action,
    scale_of_data,
    takes_numbers,
    takes_options,
)
from review.services.suggestions import suggestions_in_words
from review.services.turns import turns_in_words
from traces import filter_builder
from traces.models import ScoreDataType
from traces.score_kinds import score_kind

# Blank level rows offered under a rubric's levels, to add more.
EXTRA_LEVELS = 2


class LeadPageView(ReviewProjectPage):
    """A manager's page under ``.../projects/<project_slug>/``."""

    allowed_roles = MANAGE_ROLES

    def queue(self, queue_pk: int) -> ReviewQueue:
        queue = ReviewQueue.objects.filter(project=self.project, pk=queue_pk).first()
        if queue is None:
            raise Http404
        return queue

    def config(self, config_pk: int) -> ScoreConfig:
        config = ScoreConfig.objects.filter(project=self.project, pk=config_pk).first()
        if config is None:
            raise Http404
        return config


class EditHistoryView(LeadPageView):
    """The edit history of something a lead edits (a queue, a rubric, a routing rule) at
    its own address: the history card alone when htmx asks for it from the edit page
    (``_history_later.html``), else a page of its own. An edit page, drawn again on each
    refused post, no longer reads its history."""

    nav = "queues"

    def history_page(
        self, title: str, back_url: str, history: list[dict[str, Any]]
    ) -> HttpResponse:
        if self.request.headers.get("HX-Request"):
            # Into a details already headed "History" (the rules page's, ``history-of-N``):
            # the entries alone.
            bare = self.request.headers.get("HX-Target", "").startswith("history-of-")
            context = {"history": history, "bare": bare}
            return render(self.request, "review/lead/_history.html", context)
        context = self.context(title=title, back_url=back_url, history=history, nav=self.nav)
        return render(self.request, "review/lead/history.html", context)


class RubricListView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        configs = lead_selectors.configs_for_project(project)
        return render(request, "review/lead/rubrics.html", self.context(configs=configs))


def _rubric_form_context(
    data: dict[str, Any], form: RubricForm | None = None, extra: int = EXTRA_LEVELS
) -> dict[str, Any]:
    """A definition (saved, or as posted: :meth:`RubricForm.shown`) as the form shows it,
    with ``extra`` blank level rows under its levels."""
    levels = list(data.get("rubric") or [])
    levels += [{"label": "", "definition": "", "examples": []}] * extra
    options = data.get("options_text")
    if options is None:
        options = "\n".join(f"{o['label']} = {o['value']:g}" for o in data.get("options") or [])
    option_rows = data.get("option_rows") or _option_lines(options)
    option_rows = [*option_rows, *[BLANK_OPTION] * extra]
    form = form or RubricForm()
    return {
        "data": data,
        "form": form,
        "errors": form_error_lines(form) if form.is_bound else [],
        "levels": [
            {"index": i, **level, "examples_text": "\n".join(level.get("examples") or [])}
            for i, level in enumerate(levels)
        ],
        "options_text": options,
        "option_rows": [{"index": i, **row} for i, row in enumerate(option_rows)],
        # Each kind of answer with whether it has options and whether it takes numbers:
        # the options and their scale, and the numbers, are shown for those only,
        # switched by the script as the kind changes.
        "data_types": [
            (value, label, takes_options(value), takes_numbers(value))
            for value, label in ScoreDataType.choices
        ],
        "takes_options": takes_options(data.get("data_type")),
        "takes_numbers": takes_numbers(data.get("data_type")),
        "targets": ScoreTarget.choices,
        "scale": scale_of_data(data),
        "scale_field": form["scale"],
    }


class RubricCreateView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        data = {"data_type": ScoreDataType.CATEGORICAL, "target": ScoreTarget.TRACE}
        return render(
            request, "review/lead/rubric_form.html", self.context(**_rubric_form_context(data))
        )

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        form = RubricForm(request.POST)
        if action := form.row_action():
            # rubric rows: a level row's button shows the form again, nothing saved.
            data = _rows_changed(form, action)
            context = self.context(**_rubric_form_context(data, form, extra=0))
            return render(request, "review/lead/rubric_form.html", context)
        if form.is_valid():
            try:
                config = services.score_config_create(
                    actor=self.actor, project=self.project, **form.definition()
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields=_rubric_form_names(form))
            else:
                messages.success(request, f"Created the rubric “{config.name}”.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        context = self.context(**_rubric_form_context(form.shown(), form))
        return render(request, "review/lead/rubric_form.html", context, status=422)


# A rubric service's field, as the form names it.
RUBRIC_FORM_NAME = {"ordered": "scale"}


def _rubric_form_names(form: RubricForm) -> dict[str, str]:
    """The service's field names as the form's, each level's (rubric rows) its row's."""
    return {**RUBRIC_FORM_NAME, **form.level_names()}


def _rows_changed(form: RubricForm, action: str) -> dict[str, Any]:
    """What was posted, its level or option rows changed by the row's button (rubric
    rows)."""
    data = form.shown(keep_blank=True)
    if action.startswith(OPTION):
        rows = data["option_rows"] or _option_lines(data["options_text"])
        data["option_rows"] = apply_row_action(rows, action.removeprefix(OPTION), BLANK_OPTION)
    else:
        data["rubric"] = apply_row_action(data["rubric"], action)
    return data


def _option_lines(text: str) -> list[dict[str, Any]]:
    """Options typed one a line as ``label = value`` (rubric rows), as rows."""
    rows = []
    for line in str(text or "").splitlines():
        label, sep, value = line.rpartition("=")
        if line.strip():
            rows.append(
                {"label": (label if sep else line).strip(), "value": value.strip() if sep else ""}
            )
    return rows


def rubric_archiving(config: ScoreConfig) -> str:
    """What archiving a rubric loses, as its button's dialog and the page that asks say it."""
    return (
        f"Archive “{config.name}”? It can no longer be edited or put in a queue's form, "
        "and archiving cannot be undone. Every answer and version stays."
    )


def queue_archiving(queue: ReviewQueue) -> str:
    """What archiving a queue loses, as its button's dialog and the page that asks say it."""
    return (
        f"Archive “{queue.name}”? Reviewers can no longer claim its items, its routing "
        "rules stop adding traces and it leaves My work; archiving cannot be undone. "
        "Its items, reviews and history stay."
    )


def ask_before_archiving(
    page: LeadPageView, *, title: str, lost: str, cancel_url: str
) -> HttpResponse:
    """The page that asks before an archive button without ``confirm`` acts."""
    return confirmation_page(
        page.request,
        Confirmation(title=title, lost=lost, button="Archive", cancel_url=cancel_url),
        page.context(),
    )


class RubricEditView(LeadPageView):
    """GET: the rubric's form, every version with what changed, its edit history (loaded
    after the page, :class:`RubricHistoryView`).
    POST: an edit (a new version), or ``archive``."""

    def render_page(
        self,
        config: ScoreConfig,
        data: dict[str, Any],
        status: int = 200,
        form: RubricForm | None = None,
        extra: int = EXTRA_LEVELS,
    ) -> HttpResponse:
        context = self.context(
            config=config,
            archiving=rubric_archiving(config),
            versions=lead_selectors.config_versions(config),
            history_url=self.url("lead-rubric-history", config_pk=config.pk),
            **_rubric_form_context(data, form, extra),
        )
        return render(self.request, "review/lead/rubric_form.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.config(config_pk)
        data = {name: getattr(config, name) for name in services.CONFIG_DEFINITION_FIELDS}
        return self.render_page(config, data)

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.config(config_pk)
        archive = ArchiveForm(request.POST)
        if archive.asked() and not archive.confirmed():
            return ask_before_archiving(
                self,
                title=f"Archive “{config.name}”?",
                lost=rubric_archiving(config),
                cancel_url=self.url("lead-rubric", config_pk=config.pk),
            )
        if archive.confirmed():
            services.score_config_archive(actor=self.actor, config=config)
            messages.success(request, f"Archived “{config.name}”.")
            return redirect(self.url("lead-rubrics"))
        form = RubricForm(request.POST)
        if action := form.row_action():
            # rubric rows: a level row's button shows the form again, nothing saved.
            data = _rows_changed(form, action)
            data.setdefault("ordered", config.ordered)
            return self.render_page(config, data, form=form, extra=0)
        if form.is_valid():
            try:
                updated = services.score_config_update(
                    actor=self.actor, config=config, **form.definition()
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields=_rubric_form_names(form))
            else:
                messages.success(request, f"Saved “{updated.name}”, version {updated.version}.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        data = form.shown()
        data.setdefault("ordered", config.ordered)
        return self.render_page(config, data, status=422, form=form)


class RubricHistoryView(EditHistoryView):
    nav = "rubrics"

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.config(config_pk)
        return self.history_page(
            f"the question “{config.name}”",
            self.url("lead-rubric", config_pk=config.pk),
            audit.history_for_display(config.history.all()),
        )


class QueueListView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        return render(
            request,
            "review/lead/queues.html",
            self.context(queues=lead_selectors.queues_for_project(project)),
        )


class QueueFormView(LeadPageView):
    """Create (no ``queue_pk``) or edit a queue: settings, questions with their
    adjudication rule, the reviewer pool (:class:`QueueForm`); the edit page loads the
    queue's history after it (:class:`QueueHistoryView`)."""

    def queue_form(self, *args: Any, **kwargs: Any) -> QueueForm:
        configs = lead_selectors.configs_for_project(self.project).filter(archived_at__isnull=True)
        return QueueForm(
            *args, configs=list(configs), candidates=selectors.pool_candidates(), **kwargs
        )

    def page(self, queue: ReviewQueue | None, form: QueueForm, status: int = 200) -> HttpResponse:
        rules = (
            {r["field"].config_id: r["rule"] for r in lead_selectors.queue_form_rules(queue)}
            if queue
            else {}
        )
        questions = []
        for config in form.configs:
            pk = config.pk
            kind = score_kind(config.data_type)
            numeric = kind.numeric
            adjudicates = form[f"adj-{pk}"].value()
            questions.append(
                {
                    "config": config,
                    "on": bool(form[f"q-{pk}"].value()),
                    "position": form[f"pos-{pk}"].value() or "",
                    "adjudicates": True if adjudicates is None else adjudicates,
                    "tolerance": form[f"tol-{pk}"].value() or "",
                    "tolerance_label": "Tolerated spread" if numeric else "Tolerated dissent (%)",
                    "rule": rules.get(pk, ""),
                    "is_text": kind.free_text,
                    "errors": [e for name in ("pos", "tol") for e in form[f"{name}-{pk}"].errors],
                }
            )
        members = [
            {
                "membership": m,
                "entry": bool(form[f"m-{m.pk}"].value()),
                "senior": bool(form[f"senior-{m.pk}"].value()),
                "skills": _words_shown(form[f"skills-{m.pk}"].value()),
                "languages": _words_shown(form[f"langs-{m.pk}"].value()),
                "errors": [
                    e for name in ("skills", "langs") for e in form[f"{name}-{m.pk}"].errors
                ],
                "sees_project": membership_sees_project(m, self.project),
            }
            for m in form.candidates
        ]
        context = self.context(
            queue=queue,
            form=form,
            questions=questions,
            members=members,
            errors=form_error_lines(form) if form.is_bound else [],
            strategies=AssignmentStrategy.choices,
            history_url=self.url("lead-queue-history", queue_pk=queue.pk) if queue else "",
            archiving=queue_archiving(queue) if queue else "",
        )
        return render(self.request, "review/lead/queue_form.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int | None = None
    ) -> HttpResponse:
        if queue_pk is None:
            settings_ = {
                "overlap": 1,
                "blind_mode": True,
                "include_explanation": True,
                "assignment_strategy": AssignmentStrategy.PULL,
                "lease_ttl_seconds": 1800,
                "priority": 0,
                "audit_sample_rate": 0.0,
                "suggestion_mode": "off",
                "suggestion_holdout_percent": 0,
            }
            return self.page(None, self.queue_form(initial=QueueForm.initial_of(settings_, [], [])))
        queue = self.queue(queue_pk)
        settings_ = {name: getattr(queue, name) for name in services.QUEUE_SETTINGS}
        entries = [
            {
                "config_id": r["field"].config_id,
                "adjudicates": r["field"].adjudicates,
                "max_dissent_share": r["field"].max_dissent_share,
                "numeric_tolerance": r["field"].numeric_tolerance,
            }
            for r in lead_selectors.queue_form_rules(queue)
        ]
        pool = [
            {
                "membership_id": r.membership_id,
                "skills": r.skills,
                "languages": r.languages,
                "is_senior": r.is_senior,
            }
            for r in lead_selectors.queue_pool(queue).values()
        ]
        initial = QueueForm.initial_of(settings_, entries, pool)
        return self.page(queue, self.queue_form(initial=initial))

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int | None = None
    ) -> HttpResponse:
        queue = self.queue(queue_pk) if queue_pk is not None else None
        archive = ArchiveForm(request.POST)
        if queue is not None and archive.asked() and not archive.confirmed():
            return ask_before_archiving(
                self,
                title=f"Archive “{queue.name}”?",
                lost=queue_archiving(queue),
                cancel_url=self.url("lead-queue-edit", queue_pk=queue.pk),
            )
        if queue is not None and archive.confirmed():
            services.queue_archive(actor=self.actor, queue=queue)
            messages.success(request, f"Archived “{queue.name}”.")
            return redirect(self.url("lead-queues"))
        form = self.queue_form(request.POST)
        if form.is_valid():
            try:
                if queue is None:
                    queue = services.queue_create(
                        actor=self.actor,
                        project=self.project,
                        form=form.entries(),
                        reviewers=form.pool(),
                        **form.settings(),
                    )
                    messages.success(request, f"Created the queue “{queue.name}”.")
                else:
                    queue = services.queue_update(
                        actor=self.actor,
                        queue=queue,
                        form=form.entries(),
                        reviewers=form.pool(),
                        **form.settings(),
                    )
                    messages.success(request, f"Saved “{queue.name}”.")
            except DomainError as exc:
                form_add_domain_error(form, exc, fields=QUEUE_FORM_NAME)
            else:
                return redirect(self.url("lead-queue-board", queue_pk=queue.pk))
        return self.page(queue, form, status=422)


# A queue service's field, as the form names it.
QUEUE_FORM_NAME = {"lease_ttl_seconds": "lease_minutes", "audit_sample_rate": "audit_percent"}


def _words_shown(value: Any) -> str:
    return ", ".join(value) if isinstance(value, list | tuple) else str(value or "")


class QueueHistoryView(EditHistoryView):
    """The queue's settings, form and pool edits together (``queue_history``)."""

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        return self.history_page(
            f"the queue “{queue.name}”",
            self.url("lead-queue-edit", queue_pk=queue.pk),
            lead_selectors.queue_history(queue),
        )


class ItemView(LeadPageView):
    """One item: its target, state, reviews and edit history."""

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, item_pk: int
    ) -> HttpResponse:
        project = self.project
        queue = self.queue(queue_pk)
        item = (
            QueueItem.objects.filter(queue=queue, pk=item_pk)
            .select_related("trace", "thread")
            .first()
        )
        if item is None:
            raise Http404
        names = lead_selectors.config_names(project)
        annotations = [
            {
                "annotation": a,
                "answers": [(names.get(k, k), v) for k, v in a.values.items()],
                "turns": turns_in_words(a.turns) if a.turns else "",
            }
            for a in lead_selectors.item_annotations(item)
        ]
        # The adjudicated decision, labelled as such, with who decided.
        decisions = [
            {"decision": d, "answers": [(names.get(k, k), v) for k, v in d.values.items()]}
            for d in item.adjudications.select_related("adjudicator").order_by("-created_at", "-id")
        ]
        context = self.context(
            queue=queue,
            item=item,
            annotations=annotations,
            decisions=decisions,
            history=audit.history_for_display(item.history.all()),
        )
        return render(request, "review/lead/item.html", context)


class AnnotationView(LeadPageView):
    """One annotation: the answers and every edit of them (who, when, before, after)."""

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, annotation_pk: int
    ) -> HttpResponse:
        project = self.project
        annotation = (
            Annotation.objects.filter(project=project, pk=annotation_pk)
            .select_related("reviewer", "queue", "item")
            .first()
        )
        if annotation is None:
            raise Http404
        names = lead_selectors.config_names(project)
        context = self.context(
            annotation=annotation,
            queue=annotation.queue,
            answers=[(names.get(k, k), v) for k, v in annotation.values.items()],
            turns=turn_selectors.turn_ratings_for_display(annotation),
            shown=suggestions_in_words(annotation.suggestions) if annotation.suggestions else "",
            history=audit.history_for_display(annotation.history.all()),
        )
        return render(request, "review/lead/annotation.html", context)


def builder_context(page: LeadPageView) -> filter_builder.Context:
    """What a lead's filter builder offers: the score names the lead may read in the
    project (tenant-scoped, blind-safe: ``traces.selectors.score_names``) and its people."""
    from traces import selectors as trace_selectors

    return filter_builder.Context(
        score_names=trace_selectors.score_names(project=page.project, viewer=page.request.user),
        reviewers=trace_selectors.project_people(project=page.project),
    )


class BulkAddView(LeadPageView):
    """GET: the filter as the builder's condition rows (the explorer's, given as its
    ``?filter=``, or rows built here), how many traces it matches (all pages) and a
    queue to add them to; POST: add them (``queue_items_add_from_filter``), skipping
    those already queued. A score condition on a name the project has no score of is
    refused (it would add nothing)."""

    def matching_count(self, params: dict[str, list[str]]) -> int:
        """How many traces ``params`` matches; raises ``DomainError`` for a refused filter."""
        from traces.selectors import trace_filter_check_score_names, traces_matching

        trace_filter_check_score_names(project=self.project, params=params)
        return traces_matching(project=self.project, params=params).count()

    def render_page(self, form: FilterForm, *, status: int = 200) -> HttpResponse:
        from traces.views import filter_query

        params = form.params()
        query = filter_query(params)
        errors = form_error_lines(form) if form.is_bound else []
        matched = None
        filter_errors: dict[str, list[str]] = {}
        # A refused filter or an unfinished condition counts nothing.
        if "filter" not in form.errors and not any(row.errors for row in form.rows):
            try:
                matched = self.matching_count(params)
            except DomainError as exc:
                errors = error_lines(exc) + errors
                if isinstance(exc.details, Mapping):
                    filter_errors = {k: list(v) for k, v in exc.details.items()}
        rows = form.rows or filter_builder.conditions_from_params(form.typed_params())
        queues = ReviewQueue.objects.filter(project=self.project, archived_at__isnull=True)
        context = self.context(
            query=query,
            filter_summary=filter_builder.as_words(params),
            params=params,
            matched=matched,
            errors=errors,
            form=form,
            queues=queues,
            explorer_url=self.url("traces-explorer") + (f"?{query}" if query else ""),
            # Typed beside rows, the typed filter stays typed; alone, it shows as rows.
            typed_filter=(form.data.get("filter") or "") if form.rows else "",
            **filter_builder.page_context(
                rows, params=params, errors=filter_errors, builder=form.builder
            ),
        )
        return render(self.request, "review/lead/bulk_add.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        form = FilterForm(request.GET, builder=builder_context(self))
        form.is_valid()
        return self.render_page(form)

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        from traces import selectors as trace_selectors

        form = BulkAddForm(request.POST, project=self.project, builder=builder_context(self))
        if form.is_valid():
            queue = form.cleaned_data["queue"]
            try:
                params = form.params()
                trace_selectors.trace_filter_check_score_names(project=self.project, params=params)
                result = services.queue_items_add_from_filter(
                    actor=self.actor, queue=queue, params=params
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(
                    request,
                    f"Added {result['added']} of {result['matched']} matching traces to"
                    f" “{queue.name}” ({result['already_queued']} were already in it).",
                )
                return redirect(self.url("lead-queue-board", queue_pk=queue.pk))
        return self.render_page(form, status=422)


def explorer_actions(*, membership: Any, project: Any, query: str) -> list[dict[str, str]]:
    """The trace explorer's actions review offers (registered in ``ReviewConfig.ready()``
    with ``traces.hooks``): managers add everything the filter matches to a queue."""
    if membership.role not in MANAGE_ROLES:
        return []
    url = reverse(
        "lead-bulk-add",
        kwargs={"org_slug": membership.organization.slug, "project_slug": project.slug},
    )
    return [
        {"label": "Add all matching to a queue…", "url": f"{url}?{urlencode({'filter': query})}"}
    ]
