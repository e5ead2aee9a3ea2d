"""The lead's pages: rubrics (score configs and their versions), queues (settings, form,
pool), routing rules with a live preview, the board, items and annotations with their
history, and adding every trace a filter matches to a queue.

Managers only (owner, admin): others answer 403, and a project the member may not see
answers 404 (``OrganizationPageView`` and the one visibility rule). Writes go through
``review.services`` as the signed-in person with source "web"; reads through
``review.lead_selectors`` and the review and trace selectors.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl import audit
from hitl.exceptions import DomainError
from projects.models import MANAGE_ROLES
from projects.pages import ProjectPageView
from projects.selectors import membership_sees_project
from review import lead_selectors, services
from review.models import (
    Annotation,
    AssignmentStrategy,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingSignal,
    ScoreConfig,
    ScoreTarget,
)
from traces.models import ScoreDataType

# Blank level rows offered under a rubric's levels, to add more.
EXTRA_LEVELS = 2


class LeadPageView(ProjectPageView):
    """A manager's page under ``.../projects/<project_slug>/``."""

    allowed_roles = MANAGE_ROLES

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "membership": self.membership,
            "project": self.project,
            **extra,
        }

    def url(self, name: str, **kwargs: Any) -> str:
        return reverse(
            name,
            kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug} | kwargs,
        )

    def queue(self, queue_pk: int) -> ReviewQueue:
        queue = ReviewQueue.objects.filter(project=self.project, pk=queue_pk).first()
        if queue is None:
            raise Http404
        return queue


def error_lines(exc: DomainError) -> list[str]:
    """A service error as sentences: the message, then each field's reasons."""
    lines = [exc.message]
    details = exc.details if isinstance(exc.details, dict) else {}
    for name, reasons in details.items():
        if isinstance(reasons, dict):
            for inner, inner_reasons in reasons.items():
                lines.append(f"{name} {inner}: {_join(inner_reasons)}")
        else:
            lines.append(f"{name}: {_join(reasons)}")
    return lines


def _join(reasons: Any) -> str:
    return ", ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)


def _number(raw: str) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return math.nan
    return value


# --- rubrics ------------------------------------------------------------------------------


class RubricListView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        configs = lead_selectors.configs_for_project(project)
        return render(request, "review/lead/rubrics.html", self.context(configs=configs))


def rubric_fields_from(post: QueryDict) -> tuple[dict[str, Any], list[str]]:
    """The config definition a rubric form posts, typed for the service; the levels
    are the rows with a label or a definition. Returns it and typing errors."""
    errors: list[str] = []
    data: dict[str, Any] = {
        "name": post.get("name", "").strip(),
        "description": post.get("description", "").strip(),
        "data_type": post.get("data_type", ""),
        "target": post.get("target", ScoreTarget.TRACE),
        "required": post.get("required") == "on",
        "writes_expected_output": post.get("writes_expected_output") == "on",
    }
    for name in ("min_value", "max_value", "step"):
        value = _number(post.get(name, ""))
        if value is not None and math.isnan(value):
            errors.append(f"{name}: a number is expected.")
            value = None
        data[name] = value
    options = []
    for line in post.get("options", "").splitlines():
        if not line.strip():
            continue
        label, sep, value = line.rpartition("=")
        number = _number(value) if sep else None
        if not sep or number is None or math.isnan(number):
            errors.append(f"Option “{line.strip()}”: write label = number, e.g. Correct = 1.")
            continue
        options.append({"label": label.strip(), "value": number})
    data["options"] = options
    levels = []
    index = 0
    while f"level-{index}-label" in post:
        label = post.get(f"level-{index}-label", "").strip()
        definition = post.get(f"level-{index}-definition", "").strip()
        examples = [
            e.strip() for e in post.get(f"level-{index}-examples", "").splitlines() if e.strip()
        ]
        if label or definition or examples:
            levels.append({"label": label, "definition": definition, "examples": examples})
        index += 1
    data["rubric"] = levels
    return data, errors


def _rubric_form_context(data: dict[str, Any]) -> dict[str, Any]:
    levels = list(data.get("rubric") or [])
    levels += [{"label": "", "definition": "", "examples": []}] * EXTRA_LEVELS
    options = "\n".join(f"{o['label']} = {o['value']:g}" for o in data.get("options") or [])
    return {
        "data": data,
        "levels": [
            {"index": i, **level, "examples_text": "\n".join(level.get("examples") or [])}
            for i, level in enumerate(levels)
        ],
        "options_text": options,
        "data_types": ScoreDataType.choices,
        "targets": ScoreTarget.choices,
    }


class RubricCreateView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        data = {"data_type": ScoreDataType.CATEGORICAL, "target": ScoreTarget.TRACE}
        return render(
            request, "review/lead/rubric_form.html", self.context(**_rubric_form_context(data))
        )

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        data, errors = rubric_fields_from(request.POST)
        if not errors:
            try:
                config = services.score_config_create(actor=self.actor, project=project, **data)
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(request, f"Created the rubric “{config.name}”.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        context = self.context(errors=errors, **_rubric_form_context(data))
        return render(request, "review/lead/rubric_form.html", context, status=422)


class RubricEditView(LeadPageView):
    """GET: the rubric's form, every version with what changed, its edit history.
    POST: an edit (a new version)."""

    def load(self, project_slug: str, config_pk: int) -> ScoreConfig:
        project = self.project
        config = ScoreConfig.objects.filter(project=project, pk=config_pk).first()
        if config is None:
            raise Http404
        return config

    def render_page(
        self, config: ScoreConfig, data: dict[str, Any], errors: list[str], status: int = 200
    ) -> HttpResponse:
        context = self.context(
            config=config,
            errors=errors,
            versions=lead_selectors.config_versions(config),
            history=audit.history_for_display(config.history.all()),
            **_rubric_form_context(data),
        )
        return render(self.request, "review/lead/rubric_form.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.load(project_slug, config_pk)
        data = {name: getattr(config, name) for name in services.CONFIG_DEFINITION_FIELDS}
        return self.render_page(config, data, [])

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, config_pk: int
    ) -> HttpResponse:
        config = self.load(project_slug, config_pk)
        if request.POST.get("archive") == "1":
            services.score_config_archive(actor=self.actor, config=config)
            messages.success(request, f"Archived “{config.name}”.")
            return redirect(self.url("lead-rubrics"))
        data, errors = rubric_fields_from(request.POST)
        if not errors:
            try:
                updated = services.score_config_update(actor=self.actor, config=config, **data)
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(request, f"Saved “{updated.name}”, version {updated.version}.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        return self.render_page(config, data, errors, status=422)


# --- queues -------------------------------------------------------------------------------


class QueueListView(LeadPageView):
    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        return render(
            request,
            "review/lead/queues.html",
            self.context(queues=lead_selectors.queues_for_project(project)),
        )


def queue_fields_from(
    post: QueryDict, configs: list[ScoreConfig], candidates: list[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Settings, form and pool as a queue form posts them, typed for the services."""
    errors: list[str] = []
    settings_: dict[str, Any] = {
        "name": post.get("name", "").strip(),
        "description": post.get("description", "").strip(),
        "assignment_strategy": post.get("assignment_strategy", AssignmentStrategy.PULL),
        "blind_mode": post.get("blind_mode") == "on",
        "include_explanation": post.get("include_explanation") == "on",
        "include_expected_output": post.get("include_expected_output") == "on",
    }
    if not settings_["name"]:
        errors.append("name: a queue needs a name.")
    if settings_["assignment_strategy"] not in AssignmentStrategy.values:
        errors.append("assignment_strategy: choose one of the strategies.")
    for name, label, kind, scale in (
        ("overlap", "Reviews per item", int, 1),
        ("priority", "Priority", int, 1),
        ("lease_minutes", "Lease time (minutes)", float, 60),
        ("audit_percent", "Audit sample (%)", float, 0.01),
    ):
        raw = post.get(name, "").strip()
        try:
            value = kind(raw) if raw else None
        except ValueError:
            errors.append(f"{label}: a number is expected.")
            continue
        if value is None:
            continue
        if name == "lease_minutes":
            settings_["lease_ttl_seconds"] = round(value * scale)
        elif name == "audit_percent":
            settings_["audit_sample_rate"] = value * scale
        else:
            settings_[name] = value
    form = []
    for config in configs:
        if post.get(f"q-{config.pk}") != "on":
            continue
        position = _number(post.get(f"pos-{config.pk}", ""))
        tolerance = _number(post.get(f"tol-{config.pk}", ""))
        if tolerance is not None and math.isnan(tolerance):
            errors.append(f"{config.name}: the tolerance is a number.")
            tolerance = None
        entry: dict[str, Any] = {
            "config_id": config.pk,
            "adjudicates": post.get(f"adj-{config.pk}") == "on",
            "_position": position if position is not None and not math.isnan(position) else 999,
        }
        if tolerance is not None:
            key = (
                "numeric_tolerance"
                if config.data_type == ScoreDataType.NUMERIC
                else "max_dissent_share"
            )
            entry[key] = tolerance / 100 if key == "max_dissent_share" else tolerance
        form.append(entry)
    form.sort(key=lambda e: e.pop("_position"))
    pool = []
    for membership in candidates:
        if post.get(f"m-{membership.pk}") != "on":
            continue
        pool.append(
            {
                "membership_id": membership.pk,
                "skills": _words(post.get(f"skills-{membership.pk}", "")),
                "languages": _words(post.get(f"langs-{membership.pk}", "")),
                "is_senior": post.get(f"senior-{membership.pk}") == "on",
            }
        )
    return settings_, form, pool, errors


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.replace(";", ",").split(",") if w.strip()]


class QueueFormView(LeadPageView):
    """Create (no ``queue_pk``) or edit a queue: settings, questions with their
    adjudication rule, the reviewer pool; the edit page also shows the queue's history."""

    def page(
        self,
        queue: ReviewQueue | None,
        *,
        settings_: dict[str, Any],
        form: list[dict[str, Any]],
        pool: list[dict[str, Any]],
        errors: list[str],
        status: int = 200,
    ) -> HttpResponse:
        configs = list(
            lead_selectors.configs_for_project(self.project).filter(archived_at__isnull=True)
        )
        chosen = {entry["config_id"]: (i, entry) for i, entry in enumerate(form)}
        rules = (
            {r["field"].config_id: r["rule"] for r in lead_selectors.queue_form_rules(queue)}
            if queue
            else {}
        )
        questions = []
        for config in configs:
            position, entry = chosen.get(config.pk, (None, {}))
            numeric = config.data_type == ScoreDataType.NUMERIC
            tolerance = entry.get("numeric_tolerance" if numeric else "max_dissent_share")
            questions.append(
                {
                    "config": config,
                    "on": position is not None,
                    "position": (position + 1) if position is not None else "",
                    "adjudicates": entry.get("adjudicates", True) if entry else True,
                    "tolerance": ""
                    if tolerance is None
                    else (f"{tolerance:g}" if numeric else f"{tolerance * 100:g}"),
                    "tolerance_label": "Tolerated spread" if numeric else "Tolerated dissent (%)",
                    "rule": rules.get(config.pk, ""),
                    "is_text": config.data_type == ScoreDataType.TEXT,
                }
            )
        by_member = {entry["membership_id"]: entry for entry in pool}
        members = [
            {
                "membership": m,
                "entry": by_member.get(m.pk),
                "skills": ", ".join(by_member.get(m.pk, {}).get("skills", [])),
                "languages": ", ".join(by_member.get(m.pk, {}).get("languages", [])),
                "sees_project": membership_sees_project(m, self.project),
            }
            for m in lead_selectors.pool_candidates()
        ]
        context = self.context(
            queue=queue,
            settings=settings_,
            questions=questions,
            members=members,
            errors=errors,
            strategies=AssignmentStrategy.choices,
            lease_minutes=f"{settings_.get('lease_ttl_seconds', 1800) / 60:g}",
            audit_percent=f"{settings_.get('audit_sample_rate', 0.0) * 100:g}",
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
            return self.page(None, settings_=settings_, form=[], pool=[], errors=[])
        queue = self.queue(queue_pk)
        settings_ = {name: getattr(queue, name) for name in services.QUEUE_SETTINGS}
        form = [
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
        return self.page(queue, settings_=settings_, form=form, pool=pool, errors=[])

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int | None = None
    ) -> HttpResponse:
        project = self.project
        queue = self.queue(queue_pk) if queue_pk is not None else None
        if queue is not None and request.POST.get("archive") == "1":
            services.queue_archive(actor=self.actor, queue=queue)
            messages.success(request, f"Archived “{queue.name}”.")
            return redirect(self.url("lead-queues"))
        configs = list(lead_selectors.configs_for_project(project).filter(archived_at__isnull=True))
        settings_, form, pool, errors = queue_fields_from(
            request.POST, configs, lead_selectors.pool_candidates()
        )
        if not errors:
            try:
                if queue is None:
                    queue = services.queue_create(
                        actor=self.actor, project=project, form=form, reviewers=pool, **settings_
                    )
                    messages.success(request, f"Created the queue “{queue.name}”.")
                else:
                    queue = services.queue_update(
                        actor=self.actor, queue=queue, form=form, reviewers=pool, **settings_
                    )
                    messages.success(request, f"Saved “{queue.name}”.")
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                return redirect(self.url("lead-queue-board", queue_pk=queue.pk))
        return self.page(
            queue, settings_=settings_, form=form, pool=pool, errors=errors, status=422
        )


# --- board --------------------------------------------------------------------------------


class QueueBoardView(LeadPageView):
    """The kanban, per-assignee counts, time on task and reviews per hour. The columns
    refresh every few seconds (htmx polls ``board/live/``)."""

    template = "review/lead/board.html"

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        context = self.context(
            queue=queue,
            board=lead_selectors.board(queue),
            form_rules=lead_selectors.queue_form_rules(queue),
        )
        return render(request, self.template, context)


class QueueBoardLiveView(QueueBoardView):
    template = "review/lead/_board_live.html"


class QueueItemsUpdateView(LeadPageView):
    """POST: reprioritise or reassign an item from the board."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = self.queue(queue_pk)
        item_ids = [int(v) for v in request.POST.getlist("item_id") if v.isdigit()]
        priority_raw = request.POST.get("priority", "").strip()
        assignee = request.POST.get("assignee", "keep")
        changes: dict[str, Any] = {}
        try:
            if priority_raw:
                changes["priority"] = int(priority_raw)
            if assignee == "anyone":
                changes["assignees"] = []
            elif assignee.isdigit():
                changes["assignees"] = [int(assignee)]
            services.queue_items_update(actor=self.actor, queue=queue, item_ids=item_ids, **changes)
        except ValueError:
            messages.error(request, "Priority: a whole number is expected.")
        except DomainError as exc:
            messages.error(request, " ".join(error_lines(exc)))
        else:
            messages.success(request, "Item updated.")
        return redirect(self.url("lead-queue-board", queue_pk=queue.pk))


# --- routing rules ------------------------------------------------------------------------


def _rule_from(post: QueryDict) -> tuple[dict[str, Any], list[str]]:
    from traces.views import filter_params_from

    errors = []
    data: dict[str, Any] = {
        "name": post.get("name", "").strip(),
        "signal": post.get("signal", RoutingSignal.OTHER),
        "enabled": post.get("enabled", "on") == "on",
        "filter_params": filter_params_from(QueryDict(post.get("filter", "").lstrip("?"))),
    }
    rate = _number(post.get("sampling_percent", "100"))
    if rate is None or math.isnan(rate):
        errors.append("Sampling rate: a percentage is expected.")
    else:
        data["sampling_rate"] = rate / 100
    cap = post.get("daily_cap", "").strip()
    if cap:
        if cap.isdigit():
            data["daily_cap"] = int(cap)
        else:
            errors.append("Daily cap: a whole number, or empty for no cap.")
    else:
        data["daily_cap"] = None
    priority = post.get("item_priority", "").strip()
    if priority:
        try:
            data["item_priority"] = int(priority)
        except ValueError:
            errors.append("Item priority: a whole number is expected.")
    return data, errors


class RoutingRulesView(LeadPageView):
    """GET: the queue's rules and a form for a new one (with its live preview).
    POST: create a rule."""

    def page(
        self, queue: ReviewQueue, *, errors: list[str], posted: Any, status: int = 200
    ) -> HttpResponse:
        rules = []
        for rule in RoutingRule.objects.filter(queue=queue).order_by("name"):
            rules.append(
                {
                    "rule": rule,
                    "filter": _filter_text(rule.filter_params),
                    "history": audit.history_for_display(rule.history.all(), limit=10),
                }
            )
        context = self.context(
            queue=queue,
            rules=rules,
            errors=errors,
            posted=posted,
            prefill_filter=posted.get("filter") or self.request.GET.get("filter", ""),
            signals=RoutingSignal.choices,
        )
        return render(self.request, "review/lead/rules.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        return self.page(self.queue(queue_pk), errors=[], posted={})

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        project = self.project
        queue = self.queue(queue_pk)
        data, errors = _rule_from(request.POST)
        if not errors:
            try:
                services.routing_rule_create(
                    actor=self.actor, project=project, queue_id=queue.pk, **data
                )
            except DomainError as exc:
                errors = error_lines(exc)
            else:
                messages.success(request, f"Created the rule “{data['name']}”.")
                return redirect(self.url("lead-queue-rules", queue_pk=queue.pk))
        return self.page(queue, errors=errors, posted=request.POST, status=422)


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
        if request.POST.get("delete") == "1":
            services.routing_rule_delete(actor=self.actor, rule=rule)
            messages.success(request, f"Deleted the rule “{rule.name}”.")
        else:
            services.routing_rule_update(
                actor=self.actor, rule=rule, enabled=request.POST.get("enabled") == "on"
            )
            messages.success(request, f"Saved the rule “{rule.name}”.")
        return redirect(self.url("lead-queue-rules", queue_pk=queue.pk))


class RoutingPreviewView(LeadPageView):
    """GET (htmx, as the rule form changes): which recent traces the rule would take."""

    http_method_names = ["get"]

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        project = self.project
        queue = self.queue(queue_pk)
        data, errors = _rule_from(request.GET)
        rule = None
        rule_pk = request.GET.get("rule", "")
        if rule_pk.isdigit():
            rule = RoutingRule.objects.filter(queue=queue, pk=int(rule_pk)).first()
        preview = None
        rate = data.get("sampling_rate", 1.0)
        if not errors and not 0 < rate <= 1:
            errors = ["Sampling rate: above 0 and at most 100 %."]
        if not errors:
            if not data["filter_params"]:
                errors = ["Give a trace filter (a rule takes only what its filter matches)."]
            else:
                try:
                    preview = lead_selectors.routing_preview(
                        project=project,
                        filter_params=data["filter_params"],
                        sampling_rate=rate,
                        rule=rule,
                    )
                except DomainError as exc:
                    errors = error_lines(exc)
        context = self.context(queue=queue, preview=preview, errors=errors, rate=rate)
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

    def filter_of(self, data: QueryDict) -> tuple[dict[str, list[str]], str]:
        from traces.views import filter_params_from, filter_query

        params = filter_params_from(QueryDict(data.get("filter", "")))
        return params, filter_query(params)

    def render_page(
        self, *, params: dict[str, Any], query: str, status: int = 200, **extra: Any
    ) -> HttpResponse:
        from traces.selectors import traces_matching

        errors: list[str] = []
        matched = None
        try:
            matched = traces_matching(project=self.project, params=params).count()
        except DomainError as exc:
            errors = error_lines(exc)
        queues = ReviewQueue.objects.filter(project=self.project, archived_at__isnull=True)
        context = self.context(
            query=query,
            params=params,
            matched=matched,
            errors=errors + extra.pop("errors", []),
            queues=queues,
            explorer_url=reverse(
                "traces-explorer",
                kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug},
            )
            + (f"?{query}" if query else ""),
            **extra,
        )
        return render(self.request, "review/lead/bulk_add.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        params, query = self.filter_of(request.GET)
        return self.render_page(params=params, query=query)

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        params, query = self.filter_of(request.POST)
        queue_pk = request.POST.get("queue", "")
        queue = (
            ReviewQueue.objects.filter(project=self.project, pk=int(queue_pk)).first()
            if queue_pk.isdigit()
            else None
        )
        if queue is None:
            return self.render_page(
                params=params, query=query, errors=["Choose a queue."], status=422
            )
        try:
            result = services.queue_items_add_from_filter(
                actor=self.actor, queue=queue, params=params
            )
        except DomainError as exc:
            return self.render_page(params=params, query=query, errors=error_lines(exc), status=422)
        messages.success(
            request,
            f"Added {result['added']} of {result['matched']} matching traces to “{queue.name}”"
            f" ({result['already_queued']} were already in it).",
        )
        return redirect(self.url("lead-queue-board", queue_pk=queue.pk))


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
