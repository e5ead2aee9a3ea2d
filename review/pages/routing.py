"""The lead's routing pages: a project's routing rules, a rule's form with a live preview
of the traces it would route, and a rule switched on, off or deleted.

A rule's filter is built with the explorer's condition rows (``traces.filter_builder``:
a field, an operator and a value, the project's score names offered), with a filter
typed as a query string as the advanced way beside them; both spell the filter object
the API takes (``filter_params``). Choosing a signal starts the condition it suggests.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from hitl import audit
from hitl.exceptions import DomainError
from hitl.forms import error_lines, form_error_lines
from projects.confirmations import Confirmation, confirmation_page
from review import services
from review.models import (
    ReviewQueue,
    RoutingRule,
    RoutingSignal,
    RoutingStrategy,
    RoutingTarget,
)
from review.pages import lead_selectors
from review.pages.lead import EditHistoryView, LeadPageView, builder_context
from review.pages.lead_forms import (
    FilterForm,
    RoutingRuleChangeForm,
    RoutingRuleForm,
)
from review.services.routing_strategies import DraftSpec, strategy_check, strategy_describe
from review.services.thread_routing import (
    thread_conditions_words,
    thread_rule_check,
    thread_rule_preview,
)
from traces import filter_builder
from traces import selectors as trace_selectors

# What choosing a signal starts in the rule's builder: (field, operator, value), a
# score's condition on the project's first score name. "Other" starts nothing.
SIGNAL_PRESETS: dict[str, tuple[str, str, str]] = {
    RoutingSignal.LOW_SCORE: ("score", "lt", "0.5"),
    RoutingSignal.THUMBS_DOWN: ("feedback", "is", "thumbs_down"),
    RoutingSignal.ERROR: ("status", "is", "error"),
    RoutingSignal.TOOL_FAILURE: ("has_error", "is", "true"),
    RoutingSignal.HIGH_LATENCY: ("duration", "ge", "10000"),
    RoutingSignal.HIGH_COST: ("cost", "ge", "0.1"),
    RoutingSignal.TAG: ("tags", "has", ""),
}


def signal_presets(builder: filter_builder.Context) -> dict[str, dict[str, str]]:
    """Each signal's starting condition as the form's signal options carry it."""
    first_score = builder.score_names[0] if builder.score_names else ""
    return {
        signal: {
            "field": field,
            "op": op,
            "value": value,
            "key": first_score if field == "score" else "",
        }
        for signal, (field, op, value) in SIGNAL_PRESETS.items()
    }


def rule_builder(form: RoutingRuleForm, params: Any = None) -> dict[str, Any]:
    """The rule form's builder: the rows as posted (with their reasons), else the
    conditions of ``params`` (a saved rule's filter, the explorer's)."""
    if form.is_bound:
        rows, row_params = form.rows, form.row_params
    else:
        given = params if isinstance(params, dict) else {}
        rows = filter_builder.conditions_from_params(given)
        row_params = {k: v if isinstance(v, list) else [v] for k, v in given.items()}
    presets = signal_presets(form.builder)
    return {
        **filter_builder.page_context(
            rows, params=row_params, errors=form.filter_errors, builder=form.builder
        ),
        "signal_options": [
            {"value": value, "label": label, "preset": presets.get(value)}
            for value, label in RoutingSignal.choices
        ],
    }


class RoutingRulesView(LeadPageView):
    """GET: the queue's rules and a form for a new one (with its live preview; a
    ``?filter=`` from the explorer fills its filter). POST: create a rule."""

    def page(
        self,
        queue: ReviewQueue,
        form: RoutingRuleForm,
        *,
        status: int = 200,
        params: Any = None,
    ) -> HttpResponse:
        rules = []
        for rule in RoutingRule.objects.filter(queue=queue).order_by("name"):
            rules.append(
                {
                    "rule": rule,
                    "filter": _filter_text(rule.filter_params),
                    "words": rule_words(rule),
                    "deletion": rule_deletion(rule, queue),
                    "percent": f"{rule.sampling_rate * 100:g}",
                    "strategy": _strategy_words(rule),
                }
            )
        context = self.context(
            queue=queue,
            rules=rules,
            errors=form_error_lines(form) if form.is_bound else [],
            rule_fields=form.fields_shown(),
            **rule_builder(form, params),
        )
        return render(self.request, "review/lead/rules.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        prefill = FilterForm(request.GET)
        queue = self.queue(queue_pk)
        form = RoutingRuleForm(builder=builder_context(self), queues=_other_queues(queue))
        return self.page(queue, form, params=prefill.params())

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        form = RoutingRuleForm(
            request.POST, builder=builder_context(self), queues=_other_queues(queue)
        )
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
        "sampling_percent": f"{rule.sampling_rate * 100:g}",
        "daily_cap": "" if rule.daily_cap is None else str(rule.daily_cap),
        "item_priority": str(rule.item_priority),
        "enabled": rule.enabled,
        # Routing strategies: the strategy's fields.
        "strategy": rule.strategy,
        "score_name": rule.strategy_params.get("score_name", ""),
        "band_low": _shown_number(rule.strategy_params.get("low")),
        "band_high": _shown_number(rule.strategy_params.get("high")),
        "score_a": rule.strategy_params.get("score_a", ""),
        "score_b": rule.strategy_params.get("score_b", ""),
        "min_difference": _shown_number(rule.strategy_params.get("min_difference")),
        "source_queue": "" if rule.source_queue_id is None else str(rule.source_queue_id),
        # Thread rules: what it routes and its conditions.
        "target": rule.target,
        "thread_thumbs_down": bool(rule.thread_conditions.get("thumbs_down")),
        "thread_error": bool(rule.thread_conditions.get("error")),
        "thread_min_turns": _shown_number(rule.thread_conditions.get("min_turns")),
        "thread_idle_minutes": _shown_number(rule.thread_conditions.get("idle_minutes")),
    }


def rule_words(rule: RoutingRule) -> str:
    """What a rule takes, in words: its trace filter ("status is error"), or for a
    thread rule its conditions ("threads with a thumbs-down in any turn and at least 3
    turns, ended after 30 minutes idle")."""
    if rule.target == RoutingTarget.THREAD:
        given = rule.filter_params or {}
        return thread_conditions_words(
            rule.thread_conditions, filter_builder.as_words(given) if given else ""
        )
    return filter_builder.as_words(rule.filter_params)


def _strategy_words(rule: RoutingRule) -> str:
    """A strategy rule's pick in words (empty for match and sample)."""
    if rule.strategy == RoutingStrategy.MATCH_AND_SAMPLE:
        return ""
    source = ReviewQueue.objects.filter(pk=rule.source_queue_id).first()
    return strategy_describe(rule, source.name if source is not None else "")


def _shown_number(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float | int) else str(value)


def _other_queues(queue: ReviewQueue) -> list[tuple[int, str]]:
    """The project's other queues, for a reviewers_disagree rule's source queue."""
    return list(
        ReviewQueue.objects.filter(project_id=queue.project_id)
        .exclude(pk=queue.pk)
        .order_by("name")
        .values_list("pk", "name")
    )


def queue_rule(page: LeadPageView, queue_pk: int, rule_pk: int) -> tuple[ReviewQueue, RoutingRule]:
    """The queue of the page's project and its rule, or 404."""
    queue = page.queue(queue_pk)
    rule = RoutingRule.objects.filter(queue=queue, pk=rule_pk).first()
    if rule is None:
        raise Http404
    return queue, rule


class RoutingRuleEditView(LeadPageView):
    """GET: a rule in the create form's fields, its live preview (the rule's own draw)
    and its edit history (loaded after the page, :class:`RoutingRuleHistoryView`).
    POST: the edit (``routing_rule_update``); refused, the form comes back with each
    field's reason (422)."""

    def load(self, queue_pk: int, rule_pk: int) -> tuple[ReviewQueue, RoutingRule]:
        return queue_rule(self, queue_pk, rule_pk)

    def page(
        self, queue: ReviewQueue, rule: RoutingRule, form: RoutingRuleForm, *, status: int = 200
    ) -> HttpResponse:
        context = self.context(
            queue=queue,
            rule=rule,
            filter=_filter_text(rule.filter_params),
            words=rule_words(rule),
            strategy=_strategy_words(rule),
            errors=form_error_lines(form) if form.is_bound else [],
            rule_fields=form.fields_shown(),
            history_url=self.url("lead-rule-history", queue_pk=queue.pk, rule_pk=rule.pk),
            **rule_builder(form, rule.filter_params),
        )
        return render(self.request, "review/lead/rule_edit.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = self.load(queue_pk, rule_pk)
        form = RoutingRuleForm(
            initial=_rule_initial(rule),
            editing=True,
            builder=builder_context(self),
            queues=_other_queues(queue),
        )
        return self.page(queue, rule, form)

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = self.load(queue_pk, rule_pk)
        form = RoutingRuleForm(
            request.POST, editing=True, builder=builder_context(self), queues=_other_queues(queue)
        )
        if form.is_valid():
            try:
                rule = services.routing_rule_update(actor=self.actor, rule=rule, **form.draft())
            except DomainError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, f"Saved the rule “{rule.name}”.")
                return redirect(self.url("lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk))
        return self.page(queue, rule, form, status=422)


class RoutingRuleHistoryView(EditHistoryView):
    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = queue_rule(self, queue_pk, rule_pk)
        return self.history_page(
            f"the rule “{rule.name}”",
            self.url("lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk),
            audit.history_for_display(rule.history.all()),
        )


def rule_deletion(rule: RoutingRule, queue: ReviewQueue) -> str:
    """What deleting ``rule`` loses, as the button's dialog and the page that asks say it."""
    return (
        f"Delete the rule “{rule.name}”? New traces that match it are no longer routed to "
        f"“{queue.name}”; the items it already added stay in the queue, and its history "
        "stays. This cannot be undone: a new rule starts its own count and draw."
    )


class RoutingRuleChangeView(LeadPageView):
    """POST: switch a rule on or off, or delete it (asks first: ``confirm``; a POST
    without it deletes nothing and answers the page that asks)."""

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
        if form.cleaned_data.get("delete") and not form.cleaned_data.get("confirm"):
            return confirmation_page(
                request,
                Confirmation(
                    title=f"Delete the rule “{rule.name}”?",
                    lost=rule_deletion(rule, queue),
                    button="Delete the rule",
                    cancel_url=self.url("lead-queue-rules", queue_pk=queue.pk),
                ),
                self.context(queue=queue),
            )
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
        form = RoutingRuleForm(request.GET, builder=builder_context(self))
        preview = None
        rate = 1.0
        errors: list[str] = []
        unfinished = [
            f"{filter_builder.FIELDS[row.field].label if row.spec else 'A condition'}: "
            + " ".join(row.errors)
            for row in form.rows
            if row.errors
        ]
        words = ""
        if unfinished:
            pass  # a row being written: said quietly, nothing searched
        elif not form.is_valid():
            errors = form_error_lines(form)
        else:
            draft = form.draft()
            rate = draft["sampling_rate"]
            given = draft["filter_params"]
            words = filter_builder.as_words(given) if given else ""
            rule = None
            if form.cleaned_data["rule"] is not None:
                rule = RoutingRule.objects.filter(queue=queue, pk=form.cleaned_data["rule"]).first()
            # The rules list's preview sends no target: the saved rule's own.
            if rule is not None and "target" not in request.GET:
                draft.update(target=rule.target, thread_conditions=rule.thread_conditions)
            if draft["target"] == RoutingTarget.THREAD:
                return self.thread_preview(queue, draft, rule, rate)
            # A strategy picks among every trace when no condition is given; the rules
            # list's preview sends no strategy: the saved rule's own.
            own = rule is not None and "strategy" not in request.GET
            strategy = rule.strategy if own else draft["strategy"]
            if draft["filter_params"] or strategy != RoutingStrategy.MATCH_AND_SAMPLE:
                try:
                    trace_selectors.trace_filter_check_score_names(
                        project=self.project, params=draft["filter_params"]
                    )
                    preview = lead_selectors.routing_preview(
                        project=self.project,
                        filter_params=draft["filter_params"],
                        sampling_rate=rate,
                        rule=rule,
                        strategy=None if own else self.draft_strategy(queue, draft),
                    )
                except DomainError as exc:
                    errors = error_lines(exc)
        context = self.context(
            queue=queue,
            preview=preview,
            errors=errors,
            rate=rate,
            percent=f"{rate * 100:g}",
            words=words,
            unfinished=unfinished,
        )
        return render(request, "review/lead/_rule_preview.html", context)

    def thread_preview(
        self, queue: ReviewQueue, draft: dict[str, Any], rule: RoutingRule | None, rate: float
    ) -> HttpResponse:
        """A thread rule's preview: the threads it would match now, with the count."""
        preview, errors = None, []
        given = draft["filter_params"]
        words = thread_conditions_words(
            draft["thread_conditions"], filter_builder.as_words(given) if given else ""
        )
        try:
            thread_rule_check(
                target=RoutingTarget.THREAD,
                conditions=draft["thread_conditions"],
                filter_params=given,
                strategy=draft["strategy"],
            )
            trace_selectors.trace_filter_check_score_names(project=self.project, params=given)
            preview = thread_rule_preview(
                project=self.project,
                conditions=draft["thread_conditions"],
                filter_params=given,
                sampling_rate=rate,
                rule_id=rule.pk if rule is not None else None,
                queue=queue,
            )
        except DomainError as exc:
            errors = error_lines(exc)
        context = self.context(
            queue=queue,
            thread_preview=preview,
            errors=errors,
            rate=rate,
            percent=f"{rate * 100:g}",
            words=words,
            unfinished=[],
        )
        return render(self.request, "review/lead/_rule_preview.html", context)

    def draft_strategy(self, queue: ReviewQueue, draft: dict[str, Any]) -> DraftSpec:
        """The form's strategy, checked as the services check it (``DomainError``)."""
        checked = strategy_check(
            project=self.project,
            strategy=draft["strategy"],
            params=draft["strategy_params"],
            source_queue_id=draft["source_queue_id"],
            queue_id=queue.pk,
        )
        source = checked["source_queue"]
        return DraftSpec(
            strategy=checked["strategy"],
            strategy_params=checked["strategy_params"],
            source_queue_id=source.pk if source is not None else None,
        )


def _filter_text(params: Any) -> str:
    """The rule's filter as a query string (what its form holds); one that is not a
    filter's parameters at all reads as stored."""
    from traces.views import filter_query

    try:
        return filter_query(params)
    except (TypeError, ValueError, AttributeError):
        return str(params)
