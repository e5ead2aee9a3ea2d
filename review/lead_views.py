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
from review.rubric_forms import RubricScaleForm, scale_of_data
from review.services.items import SELECTABLE_COLUMNS, queue_items_update_each
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


# The largest id PostgreSQL's bigint holds.
ID_MAX = 2**63 - 1


def _whole(raw: str) -> int | None:
    """A non-negative whole number typed in ASCII digits (an id, a cap), else None;
    one past what PostgreSQL stores is None too."""
    raw = (raw or "").strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if value <= ID_MAX else None


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


def rubric_scale_from(post: QueryDict, data: dict[str, Any], errors: list[str]) -> RubricScaleForm:
    """The nominal/ordinal choice of a rubric post (:class:`RubricScaleForm`), set on
    ``data`` as ``ordered`` when posted; a refused choice adds its reason to ``errors``."""
    form = RubricScaleForm(post)
    if form.is_valid():
        ordered = form.ordered()
        if ordered is not None:
            data["ordered"] = ordered
    else:
        errors.extend(f"{form['scale'].label} {' '.join(r)}" for r in form.errors.values())
    return form


def _scale_service_errors(form: RubricScaleForm, exc: DomainError) -> None:
    """The service's refusal of the scale ("ordered") shown on the scale field too."""
    details = exc.details if isinstance(exc.details, dict) else {}
    if "ordered" in details:
        form.add_error("scale", [str(r) for r in details["ordered"]])


def _rubric_form_context(
    data: dict[str, Any], scale_form: RubricScaleForm | None = None
) -> dict[str, Any]:
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
        "scale": scale_of_data(data),
        "scale_field": (scale_form or RubricScaleForm())["scale"],
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
        scale_form = rubric_scale_from(request.POST, data, errors)
        if not errors:
            try:
                config = services.score_config_create(actor=self.actor, project=project, **data)
            except DomainError as exc:
                errors = error_lines(exc)
                _scale_service_errors(scale_form, exc)
            else:
                messages.success(request, f"Created the rubric “{config.name}”.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        context = self.context(errors=errors, **_rubric_form_context(data, scale_form))
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
        self,
        config: ScoreConfig,
        data: dict[str, Any],
        errors: list[str],
        status: int = 200,
        scale_form: RubricScaleForm | None = None,
    ) -> HttpResponse:
        context = self.context(
            config=config,
            errors=errors,
            versions=lead_selectors.config_versions(config),
            history=audit.history_for_display(config.history.all()),
            **_rubric_form_context(data, scale_form),
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
        scale_form = rubric_scale_from(request.POST, data, errors)
        if not errors:
            try:
                updated = services.score_config_update(actor=self.actor, config=config, **data)
            except DomainError as exc:
                errors = error_lines(exc)
                _scale_service_errors(scale_form, exc)
            else:
                messages.success(request, f"Saved “{updated.name}”, version {updated.version}.")
                return redirect(self.url("lead-rubric", config_pk=config.pk))
        data.setdefault("ordered", config.ordered)
        return self.render_page(config, data, errors, status=422, scale_form=scale_form)


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
        if isinstance(value, float) and not math.isfinite(value):  # NaN, inf, 1e400
            errors.append(f"{label}: a finite number is expected.")
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
        column = request.POST.get("column", "").strip() or None
        raw_ids = [] if column else request.POST.getlist("item_id")
        item_ids = [n for n in map(_whole, raw_ids) if n is not None]
        priority_raw = request.POST.get("priority", "").strip()
        assignee = request.POST.get("assignee", "keep").strip()
        errors: list[str] = []
        status = 422
        if len(item_ids) != len(raw_ids):
            errors.append("Items: an item is named by its number.")
        if column is not None and column not in SELECTABLE_COLUMNS:
            errors.append("Column: one of the open columns (pending, in progress, submitted).")
        changes: dict[str, Any] = {}
        if priority_raw:
            try:
                changes["priority"] = int(priority_raw)
            except ValueError:
                errors.append("Priority: a whole number is expected.")
        if assignee == "anyone":
            changes["assignees"] = []
        elif _whole(assignee) is not None:
            changes["assignees"] = [_whole(assignee)]
        elif assignee != "keep":
            errors.append("Assign to: keep, back to the queue, or a reviewer of the pool.")
        if column is not None and not errors and not changes:
            errors.append("Choose a new priority or whom to assign the selected items to.")
        if column is not None and not errors and request.POST.get("confirm") != "1":
            return self.confirm(queue, column, priority_raw, assignee, changes)
        result = None
        if not errors:
            try:
                result = queue_items_update_each(
                    actor=self.actor,
                    queue=queue,
                    item_ids=item_ids,
                    column=column,
                    **changes,
                )
            except DomainError as exc:
                errors = error_lines(exc)
                status = exc.status_code if exc.status_code >= 404 else 422
        if result is None:
            bulk = {"priority": priority_raw, "assignee": assignee}
            return self.render_board(
                queue, errors=errors, selected=set(item_ids), bulk=bulk, status=status
            )
        self.tell(queue, result)
        return redirect(self.url("lead-queue-board", queue_pk=queue.pk))

    def confirm(
        self,
        queue: ReviewQueue,
        column: str,
        priority_raw: str,
        assignee: str,
        changes: dict[str, Any],
    ) -> HttpResponse:
        """The count of the whole column now and the change in words, to confirm."""
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
            bulk={"priority": priority_raw, "assignee": assignee},
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

# The rule form's fields: name, label, kind, hint. The edit form adds "enabled".
RULE_FIELDS = (
    ("name", "Name", "text", ""),
    ("signal", "Signal", "select", ""),
    (
        "filter",
        "Trace filter",
        "text",
        "As in the explorer's address, e.g. status=error&tags=billing.",
    ),
    ("sampling_percent", "Sampling rate (%)", "number", "Above 0, at most 100."),
    ("daily_cap", "Daily cap", "number", "Empty: no cap."),
    ("item_priority", "Item priority", "number", "Higher is claimed first."),
)
RULE_ENABLED = ("enabled", "On: new traces are routed by this rule", "checkbox", "")
_RULE_LABELS = {name: label for name, label, _kind, _hint in (*RULE_FIELDS, RULE_ENABLED)}
# A service error's field, as the form names it.
_RULE_FORM_NAME = {"filter_params": "filter", "sampling_rate": "sampling_percent"}


def _rule_from(
    post: QueryDict, *, with_enabled: bool = False
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The rule a form (or the preview's query) gives, typed for the services, and its
    typing errors by form field. Without ``with_enabled`` (the create form) a rule is
    on; the edit form posts its "enabled" box."""
    from traces.views import filter_params_from

    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {
        "name": post.get("name", "").strip(),
        "signal": post.get("signal", RoutingSignal.OTHER),
        "enabled": post.get("enabled") == "on" if with_enabled else True,
        "filter_params": filter_params_from(QueryDict(post.get("filter", "").lstrip("?"))),
    }
    rate = _number(post.get("sampling_percent", "100"))
    if rate is None or math.isnan(rate):
        errors["sampling_percent"] = ["A percentage is expected."]
    elif not 0 < rate <= 100:
        errors["sampling_percent"] = ["Above 0 and at most 100 %."]
    else:
        data["sampling_rate"] = rate / 100
    cap = post.get("daily_cap", "").strip()
    if cap:
        if _whole(cap) is not None:
            data["daily_cap"] = _whole(cap)
        else:
            errors["daily_cap"] = ["A whole number, or empty for no cap."]
    else:
        data["daily_cap"] = None
    priority = post.get("item_priority", "").strip()
    if priority:
        try:
            data["item_priority"] = int(priority)
        except ValueError:
            errors["item_priority"] = ["A whole number is expected."]
    return data, errors


def _rule_service_errors(exc: DomainError) -> dict[str, list[str]]:
    """A rule service's refusal by form field (a bad filter: each parameter's reason)."""
    errors: dict[str, list[str]] = {}
    details = exc.details if isinstance(exc.details, dict) else {}
    for name, reasons in details.items():
        field = _RULE_FORM_NAME.get(name, name)
        if field not in _RULE_LABELS:
            field = "form"
        if isinstance(reasons, dict):
            lines = [f"{inner}: {_join(why)}" for inner, why in reasons.items()]
        elif reasons == ["required"]:
            lines = [exc.message]
        else:
            lines = [_join(reasons)]
        errors.setdefault(field, []).extend(lines)
    if not errors:
        errors["form"] = [exc.message]
    return errors


def _rule_error_lines(errors: dict[str, list[str]], message: str = "") -> list[str]:
    lines = [message] if message else []
    for field, reasons in errors.items():
        label = _RULE_LABELS.get(field)
        lines.extend(f"{label}: {reason}" if label else reason for reason in reasons)
    return lines


def _rule_values(rule: RoutingRule) -> dict[str, Any]:
    """A saved rule as its form shows it."""
    return {
        "name": rule.name,
        "signal": rule.signal,
        "filter": _filter_text(rule.filter_params),
        "sampling_percent": f"{rule.sampling_rate * 100:g}",
        "daily_cap": "" if rule.daily_cap is None else str(rule.daily_cap),
        "item_priority": str(rule.item_priority),
        "enabled": "on" if rule.enabled else "",
    }


def rule_form_fields(
    values: Any, errors: dict[str, list[str]], *, editing: bool
) -> list[dict[str, Any]]:
    """The rule form's fields for ``_rule_form.html``: value, errors, choices."""
    defaults = {"signal": RoutingSignal.OTHER, "sampling_percent": "100", "item_priority": "0"}
    fields = []
    for name, label, kind, hint in (*RULE_FIELDS, *((RULE_ENABLED,) if editing else ())):
        value = values.get(name, defaults.get(name, ""))
        fields.append(
            {
                "name": name,
                "id": f"rule-{name.replace('_', '-')}",
                "label": label,
                "kind": kind,
                "hint": hint,
                "value": value,
                "checked": kind == "checkbox" and value == "on",
                "errors": errors.get(name, []),
                "choices": RoutingSignal.choices if name == "signal" else (),
                "wide": name == "filter",
                "step": "any" if name == "sampling_percent" else "1",
            }
        )
    return fields


class RoutingRulesView(LeadPageView):
    """GET: the queue's rules and a form for a new one (with its live preview).
    POST: create a rule."""

    def page(
        self,
        queue: ReviewQueue,
        *,
        errors: dict[str, list[str]],
        summary: list[str],
        posted: Any,
        status: int = 200,
    ) -> HttpResponse:
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
        values = dict(posted.items()) if posted else {}
        if not posted:
            values["filter"] = self.request.GET.get("filter", "")
        context = self.context(
            queue=queue,
            rules=rules,
            errors=summary,
            rule_fields=rule_form_fields(values, errors, editing=False),
        )
        return render(self.request, "review/lead/rules.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        return self.page(self.queue(queue_pk), errors={}, summary=[], posted={})

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        project = self.project
        queue = self.queue(queue_pk)
        data, errors = _rule_from(request.POST)
        message = ""
        if not errors:
            try:
                services.routing_rule_create(
                    actor=self.actor, project=project, queue_id=queue.pk, **data
                )
            except DomainError as exc:
                errors, message = _rule_service_errors(exc), exc.message
            else:
                messages.success(request, f"Created the rule “{data['name']}”.")
                return redirect(self.url("lead-queue-rules", queue_pk=queue.pk))
        return self.page(
            queue,
            errors=errors,
            summary=_rule_error_lines(errors, message),
            posted=request.POST,
            status=422,
        )


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
        self,
        queue: ReviewQueue,
        rule: RoutingRule,
        *,
        values: Any,
        errors: dict[str, list[str]],
        summary: list[str],
        status: int = 200,
    ) -> HttpResponse:
        context = self.context(
            queue=queue,
            rule=rule,
            errors=summary,
            rule_fields=rule_form_fields(values, errors, editing=True),
            history=audit.history_for_display(rule.history.all()),
        )
        return render(self.request, "review/lead/rule_edit.html", context, status=status)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = self.load(queue_pk, rule_pk)
        return self.page(queue, rule, values=_rule_values(rule), errors={}, summary=[])

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int, rule_pk: int
    ) -> HttpResponse:
        queue, rule = self.load(queue_pk, rule_pk)
        data, errors = _rule_from(request.POST, with_enabled=True)
        message = ""
        if not errors:
            try:
                rule = services.routing_rule_update(actor=self.actor, rule=rule, **data)
            except DomainError as exc:
                errors, message = _rule_service_errors(exc), exc.message
            else:
                messages.success(request, f"Saved the rule “{rule.name}”.")
                return redirect(self.url("lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk))
        return self.page(
            queue,
            rule,
            values=dict(request.POST.items()),
            errors=errors,
            summary=_rule_error_lines(errors, message),
            status=422,
        )


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
    """GET (htmx, as the rule form changes): which recent traces the rule would take;
    with ``rule=<id>`` (the edit form) the saved rule's own draw."""

    http_method_names = ["get"]

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        project = self.project
        queue = self.queue(queue_pk)
        data, field_errors = _rule_from(request.GET)
        errors = _rule_error_lines(field_errors)
        rule = None
        rule_pk = request.GET.get("rule", "")
        if _whole(rule_pk) is not None:
            rule = RoutingRule.objects.filter(queue=queue, pk=_whole(rule_pk)).first()
        preview = None
        rate = data.get("sampling_rate", 1.0)
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
            ReviewQueue.objects.filter(project=self.project, pk=_whole(queue_pk)).first()
            if _whole(queue_pk) is not None
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
