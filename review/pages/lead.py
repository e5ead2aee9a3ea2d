"""The lead's pages: rubrics (score configs and their versions), queues (settings, form,
pool), routing rules with a live preview, the board, items and annotations with their
history, and adding every trace a filter matches to a queue.

Managers only (owner, admin): others answer 403, and a project the member may not see
answers 404 (``OrganizationPageView`` and the one visibility rule). Writes go through
``review.services`` as the signed-in person with source "web"; reads through
``review.pages.lead_selectors`` and the review and trace selectors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl import audit
from hitl.exceptions import DomainError
from hitl.forms import error_lines, form_add_domain_error, form_error_lines
from projects.models import MANAGE_ROLES
from projects.selectors import membership_sees_project
from review import services
from review.models import (
    Annotation,
    AssignmentStrategy,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    ScoreConfig,
    ScoreTarget,
)
from review.page_base import ReviewProjectPage
from review.pages import lead_selectors
from review.pages.lead_forms import (
    ArchiveForm,
    BoardChangeForm,
    BulkAddForm,
    FilterForm,
    QueueForm,
    RoutingRuleChangeForm,
    RoutingRuleForm,
)
from review.pages.rubric_forms import RubricForm, scale_of_data
from review.services.items import queue_items_update_each
from traces.models import ScoreDataType

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


# --- rubrics ------------------------------------------------------------------------------


class RubricListView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        configs = lead_selectors.configs_for_project(project)
        return render(request, "review/lead/rubrics.html", self.context(configs=configs))


def _rubric_form_context(data: dict[str, Any], form: RubricForm | None = None) -> dict[str, Any]:
    """A definition (saved, or as posted: :meth:`RubricForm.shown`) as the form shows it."""
    levels = list(data.get("rubric") or [])
    levels += [{"label": "", "definition": "", "examples": []}] * EXTRA_LEVELS
    options = data.get("options_text")
    if options is None:
        options = "\n".join(f"{o['label']} = {o['value']:g}" for o in data.get("options") or [])
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
        "data_types": ScoreDataType.choices,
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
        if form.is_valid():
            try:
                config = services.score_config_create(
                    actor=self.actor, project=self.project, **form.definition()
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields=RUBRIC_FORM_NAME)
            else:
                messages.success(request, f"Created the rubric “{config.name}”.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        context = self.context(**_rubric_form_context(form.shown(), form))
        return render(request, "review/lead/rubric_form.html", context, status=422)


# A rubric service's field, as the form names it.
RUBRIC_FORM_NAME = {"ordered": "scale"}


class RubricEditView(LeadPageView):
    """GET: the rubric's form, every version with what changed, its edit history.
    POST: an edit (a new version), or ``archive``."""

    def load(self, config_pk: int) -> ScoreConfig:
        config = ScoreConfig.objects.filter(project=self.project, pk=config_pk).first()
        if config is None:
            raise Http404
        return config

    def render_page(
        self,
        config: ScoreConfig,
        data: dict[str, Any],
        status: int = 200,
        form: RubricForm | None = None,
    ) -> HttpResponse:
        context = self.context(
            config=config,
            versions=lead_selectors.config_versions(config),
            history=audit.history_for_display(config.history.all()),
            **_rubric_form_context(data, form),
        )
        return render(self.request, "review/lead/rubric_form.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.load(config_pk)
        data = {name: getattr(config, name) for name in services.CONFIG_DEFINITION_FIELDS}
        return self.render_page(config, data)

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.load(config_pk)
        if ArchiveForm(request.POST).asked():
            services.score_config_archive(actor=self.actor, config=config)
            messages.success(request, f"Archived “{config.name}”.")
            return redirect(self.url("lead-rubrics"))
        form = RubricForm(request.POST)
        if form.is_valid():
            try:
                updated = services.score_config_update(
                    actor=self.actor, config=config, **form.definition()
                )
            except DomainError as exc:
                form_add_domain_error(form, exc, fields=RUBRIC_FORM_NAME)
            else:
                messages.success(request, f"Saved “{updated.name}”, version {updated.version}.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        data = form.shown()
        data.setdefault("ordered", config.ordered)
        return self.render_page(config, data, status=422, form=form)


# --- queues -------------------------------------------------------------------------------


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
    adjudication rule, the reviewer pool (:class:`QueueForm`); the edit page also shows
    the queue's history."""

    def queue_form(self, *args: Any, **kwargs: Any) -> QueueForm:
        configs = lead_selectors.configs_for_project(self.project).filter(archived_at__isnull=True)
        return QueueForm(
            *args, configs=list(configs), candidates=lead_selectors.pool_candidates(), **kwargs
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
            numeric = config.data_type == ScoreDataType.NUMERIC
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
                    "is_text": config.data_type == ScoreDataType.TEXT,
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
            history=lead_selectors.queue_history(queue) if queue else [],
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
        if queue is not None and ArchiveForm(request.POST).asked():
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


# --- board --------------------------------------------------------------------------------


class QueueBoardView(LeadPageView):
    """The kanban, per-assignee counts, time on task and reviews per hour. The columns
    refresh every few seconds (htmx polls ``board/live/``); the open cards can be
    selected (``static/js/lead.js`` keeps the selection across refreshes) and changed
    together through ``QueueItemsUpdateView``."""

    template = "review/lead/board.html"

    def render_board(
        self,
        queue: ReviewQueue,
        *,
        errors: list[str] | None = None,
        selected: set[int] | None = None,
        bulk: dict[str, str] | None = None,
        status: int = 200,
        form: BoardChangeForm | None = None,
    ) -> HttpResponse:
        board = lead_selectors.board(queue)
        selected = selected or set()
        shown = {card["item"].pk for column in board["columns"] for card in column["cards"]}
        context = self.context(
            queue=queue,
            board=board,
            form_rules=lead_selectors.queue_form_rules(queue),
            errors=errors or [],
            selected=selected,
            selected_hidden=sorted(selected - shown),
            bulk=bulk or {"priority": "", "assignee": "keep"},
            form=form or BoardChangeForm(),
        )
        return render(self.request, self.template, context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        return self.render_board(self.queue(queue_pk))


class QueueBoardLiveView(QueueBoardView):
    template = "review/lead/_board_live.html"


# Refused items named one by one in the result, then counted.
REFUSALS_LISTED = 10


class QueueItemsUpdateView(QueueBoardView):
    """POST: a new priority and/or assignee for one card (its own form) or for the
    board's selection (``item_id`` repeated), through ``queue_items_update_each``: one
    transaction, a history row per changed item; back to the queue also takes the item
    back from whoever holds a lease on it. The result says how many changed and which
    could not (and why); bad input answers the board again with the reason and the
    selection still ticked (422, or 409 for an archived queue).

    ``column`` (all the items of an open column, not only the cards shown; the posted
    ids are then ignored) first answers a confirmation with the column's count now and
    the change in words; posted again with ``confirm``, the change applies to what the
    column holds at that moment."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        form = BoardChangeForm(request.POST)
        status = 422
        result = None
        if form.is_valid():
            column = form.chosen_column()
            if column is not None and not form.cleaned_data["confirm"]:
                return self.confirm(queue, column, form)
            try:
                result = queue_items_update_each(
                    actor=self.actor,
                    queue=queue,
                    item_ids=form.item_ids(),
                    column=column,
                    **form.changes(),
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
                status = exc.status_code if exc.status_code >= 404 else 422
        if result is None:
            return self.render_board(
                queue,
                errors=form_error_lines(form),
                selected=form.selected(),
                bulk=form.shown(),
                status=status,
                form=form,
            )
        self.tell(queue, result)
        return redirect(self.url("lead-queue-board", queue_pk=queue.pk))

    def confirm(self, queue: ReviewQueue, column: str, form: BoardChangeForm) -> HttpResponse:
        """The count of the whole column now and the change in words, to confirm."""
        changes = form.changes()
        pool = dict(lead_selectors.board(queue)["pool"])
        words = []
        if "priority" in changes:
            words.append(f"priority {changes['priority']}")
        if changes.get("assignees") == []:
            words.append("back to the queue (anyone in the pool; live leases taken back)")
        elif "assignees" in changes:
            who = changes["assignees"][0]
            words.append(f"assigned to {pool.get(who, f'user {who}')}")
        context = self.context(
            queue=queue,
            column=column,
            column_label=lead_selectors.column_label(column),
            count=lead_selectors.column_count(queue, column),
            change=" and ".join(words),
            bulk=form.shown(),
        )
        return render(self.request, "review/lead/board_confirm.html", context)

    def tell(self, queue: ReviewQueue, result: dict[str, Any]) -> None:
        changed, unchanged, refused = result["changed"], result["unchanged"], result["refused"]
        if changed:
            messages.success(self.request, f"Changed {_items(len(changed))}.")
        if result.get("taken_back"):
            taken = len(result["taken_back"])
            messages.info(
                self.request,
                f"Took {_items(taken)} back from the reviewers holding "
                f"{'it' if taken == 1 else 'them'}; their open pages say so.",
            )
        if unchanged:
            had = "already had" if len(unchanged) > 1 else "already has"
            messages.info(self.request, f"{_items(len(unchanged)).capitalize()} {had} that.")
        if refused:
            labels = lead_selectors.item_labels(queue, [r["item_id"] for r in refused])
            named = [f"{labels[r['item_id']]} ({r['reason']})" for r in refused[:REFUSALS_LISTED]]
            if len(refused) > REFUSALS_LISTED:
                named.append(f"and {len(refused) - REFUSALS_LISTED} more")
            messages.warning(
                self.request, f"Could not change {_items(len(refused))}: {'; '.join(named)}."
            )


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


# --- routing rules ------------------------------------------------------------------------


class RoutingRulesView(LeadPageView):
    """GET: the queue's rules and a form for a new one (with its live preview; a
    ``?filter=`` from the explorer fills its filter). POST: create a rule."""

    def page(self, queue: ReviewQueue, form: RoutingRuleForm, *, status: int = 200) -> HttpResponse:
        rules = []
        for rule in RoutingRule.objects.filter(queue=queue).order_by("name"):
            rules.append(
                {
                    "rule": rule,
                    "filter": _filter_text(rule.filter_params),
                    "percent": f"{rule.sampling_rate * 100:g}",
                    "history": audit.history_for_display(rule.history.all(), limit=10),
                }
            )
        context = self.context(
            queue=queue,
            rules=rules,
            errors=form_error_lines(form) if form.is_bound else [],
            rule_fields=form.fields_shown(),
        )
        return render(self.request, "review/lead/rules.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        prefill = FilterForm(request.GET)
        query = prefill.cleaned_data["filter"] if prefill.is_valid() else ""
        form = RoutingRuleForm(initial={"filter": query})
        return self.page(self.queue(queue_pk), form)

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        form = RoutingRuleForm(request.POST)
        if form.is_valid():
            rule = form.draft()
            try:
                services.routing_rule_create(
                    actor=self.actor, project=self.project, queue_id=queue.pk, **rule
                )
            except DomainError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, f"Created the rule “{rule['name']}”.")
                return redirect(self.url("lead-queue-rules", queue_pk=queue.pk))
        return self.page(queue, form, status=422)


def _rule_initial(rule: RoutingRule) -> dict[str, Any]:
    """A saved rule as its form shows it."""
    return {
        "name": rule.name,
        "signal": rule.signal,
        "filter": _filter_text(rule.filter_params),
        "sampling_percent": f"{rule.sampling_rate * 100:g}",
        "daily_cap": "" if rule.daily_cap is None else str(rule.daily_cap),
        "item_priority": str(rule.item_priority),
        "enabled": rule.enabled,
    }


class RoutingRuleEditView(LeadPageView):
    """GET: a rule in the create form's fields, its live preview (the rule's own draw)
    and its edit history. POST: the edit (``routing_rule_update``); refused, the form
    comes back with each field's reason (422)."""

    def load(self, queue_pk: int, rule_pk: int) -> tuple[ReviewQueue, RoutingRule]:
        queue = self.queue(queue_pk)
        rule = RoutingRule.objects.filter(queue=queue, pk=rule_pk).first()
        if rule is None:
            raise Http404
        return queue, rule

    def page(
        self, queue: ReviewQueue, rule: RoutingRule, form: RoutingRuleForm, *, status: int = 200
    ) -> HttpResponse:
        context = self.context(
            queue=queue,
            rule=rule,
            errors=form_error_lines(form) if form.is_bound else [],
            rule_fields=form.fields_shown(),
            history=audit.history_for_display(rule.history.all()),
        )
        return render(self.request, "review/lead/rule_edit.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = self.load(queue_pk, rule_pk)
        form = RoutingRuleForm(initial=_rule_initial(rule), editing=True)
        return self.page(queue, rule, form)

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = self.load(queue_pk, rule_pk)
        form = RoutingRuleForm(request.POST, editing=True)
        if form.is_valid():
            try:
                rule = services.routing_rule_update(actor=self.actor, rule=rule, **form.draft())
            except DomainError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, f"Saved the rule “{rule.name}”.")
                return redirect(self.url("lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk))
        return self.page(queue, rule, form, status=422)


class RoutingRuleChangeView(LeadPageView):
    """POST: switch a rule on or off, or delete it."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        rule = RoutingRule.objects.filter(queue=queue, pk=rule_pk).first()
        if rule is None:
            raise Http404
        form = RoutingRuleChangeForm(request.POST)
        form.is_valid()  # two boxes: anything else reads as unticked
        if form.cleaned_data.get("delete"):
            services.routing_rule_delete(actor=self.actor, rule=rule)
            messages.success(request, f"Deleted the rule “{rule.name}”.")
        else:
            services.routing_rule_update(
                actor=self.actor, rule=rule, enabled=bool(form.cleaned_data.get("enabled"))
            )
            messages.success(request, f"Saved the rule “{rule.name}”.")
        return redirect(self.url("lead-queue-rules", queue_pk=queue.pk))


class RoutingPreviewView(LeadPageView):
    """GET (htmx, as the rule form changes): which recent traces the rule would take;
    with ``rule=<id>`` (the edit form) the saved rule's own draw."""

    http_method_names = ["get"]

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        form = RoutingRuleForm(request.GET)
        preview = None
        rate = 1.0
        errors = []
        if not form.is_valid():
            errors = form_error_lines(form)
        else:
            draft = form.draft()
            rate = draft["sampling_rate"]
            rule = None
            if form.cleaned_data["rule"] is not None:
                rule = RoutingRule.objects.filter(queue=queue, pk=form.cleaned_data["rule"]).first()
            if not draft["filter_params"]:
                errors = ["Give a trace filter (a rule takes only what its filter matches)."]
            else:
                try:
                    preview = lead_selectors.routing_preview(
                        project=self.project,
                        filter_params=draft["filter_params"],
                        sampling_rate=rate,
                        rule=rule,
                    )
                except DomainError as exc:
                    errors = error_lines(exc)
        context = self.context(
            queue=queue, preview=preview, errors=errors, rate=rate, percent=f"{rate * 100:g}"
        )
        return render(request, "review/lead/_rule_preview.html", context)


def _filter_text(params: dict[str, Any]) -> str:
    from traces.views import filter_query

    return filter_query(params)


# --- items and annotations ----------------------------------------------------------------


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
            {"annotation": a, "answers": [(names.get(k, k), v) for k, v in a.values.items()]}
            for a in lead_selectors.item_annotations(item)
        ]
        context = self.context(
            queue=queue,
            item=item,
            annotations=annotations,
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
            history=audit.history_for_display(annotation.history.all()),
        )
        return render(request, "review/lead/annotation.html", context)


# --- everything a trace filter matches, into a queue ------------------------------------------


class BulkAddView(LeadPageView):
    """GET: how many traces the filter matches (all pages) and a queue to add them to;
    POST: add them (``queue_items_add_from_filter``), skipping those already queued."""

    def render_page(self, form: FilterForm, *, status: int = 200) -> HttpResponse:
        from traces.selectors import traces_matching
        from traces.views import filter_query

        params = form.params()
        query = filter_query(params)
        errors = form_error_lines(form) if form.is_bound else []
        matched = None
        if "filter" not in form.errors:  # a refused filter counts nothing
            try:
                matched = traces_matching(project=self.project, params=params).count()
            except DomainError as exc:
                errors = error_lines(exc) + errors
        queues = ReviewQueue.objects.filter(project=self.project, archived_at__isnull=True)
        context = self.context(
            query=query,
            params=params,
            matched=matched,
            errors=errors,
            form=form,
            queues=queues,
            explorer_url=self.url("traces-explorer") + (f"?{query}" if query else ""),
        )
        return render(self.request, "review/lead/bulk_add.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self.render_page(FilterForm(request.GET))

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        form = BulkAddForm(request.POST, project=self.project)
        if form.is_valid():
            queue = form.cleaned_data["queue"]
            try:
                result = services.queue_items_add_from_filter(
                    actor=self.actor, queue=queue, params=form.params()
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
