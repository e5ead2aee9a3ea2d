"""The trace explorer: the trace list's filters as a form, saved views, chosen columns,
and the trace detail (span tree, scores human and automated side by side, feedback,
annotations and comments).

Thin views over ``traces.selectors``: the list is ``trace_list_filter_apply`` (the API's
selector, so the same validation and speed), the detail ``trace_detail`` with the
reader as ``viewer``, so the blind rule decides which scores, annotations and comments
appear. Actions on everything a filter matches (add to a queue) belong to the apps
above and appear through ``traces.hooks.explorer_actions``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from hitl.exceptions import DomainError
from hitl.forms import error_lines, form_error_lines
from projects.confirmations import Confirmation, confirmation_page
from projects.models import MANAGE_ROLES
from projects.pages import ProjectPageView
from traces import filter_builder, hooks, selectors, services
from traces.filter_builder import builder_fields, condition_rows
from traces.filters import (
    DEFAULT_SORT,
    SORT_COLUMNS,
    FeedbackChoice,
    TraceSort,
    parse_sort,
    sort_cursor,
)
from traces.forms import (
    ExplorerPageForm,
    SavedViewDeleteForm,
    SavedViewForm,
    TraceActionForm,
    TracePageQueryForm,
)
from traces.models import SavedView, ScoreSource, Status, Trace
from traces.payloads import render_payload

PAGE_SIZE = 50

# Columns a reader may choose, in display order; the default set first.
COLUMNS: OrderedDict[str, str] = OrderedDict(
    [
        ("name", "Name"),
        ("status", "Status"),
        ("start_time", "Started"),
        ("latency_ms", "Latency"),
        ("span_count", "Spans"),
        ("scores", "Scores"),
        ("feedback", "Feedback"),
        ("total_tokens", "Tokens"),
        ("cost", "Cost"),
        ("tags", "Tags"),
        ("user_id", "End user"),
        ("environment", "Environment"),
        ("release", "Release"),
        ("thread_id", "Thread"),
    ]
)
DEFAULT_COLUMNS = ("name", "status", "start_time", "latency_ms", "span_count", "scores", "feedback")

# Page parameters beside the filter's own.
PAGE_PARAMS = ("col", "sort", "after", "view")
# Repeatable filters typed into one field: tags comma-separated, the others one a line.
SPLIT_ON = {"tags": ",", "metadata": "\n", "score": "\n"}


def filter_params_from(query: QueryDict) -> dict[str, list[str]]:
    """The trace filter's parameters in a query string, page parameters left out and
    repeatable values typed into one field split apart; blank values dropped. They are
    read by the filter's FilterSet (``TraceFilter``), the page parameters by
    ``traces.forms.ExplorerPageForm``."""
    params: dict[str, list[str]] = {}
    for key in query:
        if key in PAGE_PARAMS:
            continue
        values = []
        for value in query.getlist(key):
            parts = value.split(SPLIT_ON[key]) if key in SPLIT_ON else [value]
            values.extend(p.strip() for p in parts if p.strip())
        if values:
            params[key] = values
    return params


def filter_query(params: dict[str, Any]) -> str:
    """The filter as a query string (repeatable values repeated)."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((key, item))
    return urlencode(pairs)


class ProjectTracePageView(ProjectPageView):
    """A page of one project's traces (``ProjectPageView``: a project this member may not
    see answers 404, the same as a missing one)."""

    @property
    def is_manager(self) -> bool:
        return self.membership.role in MANAGE_ROLES

    def explorer_url(self, query: str = "") -> str:
        url = reverse(
            "traces-explorer",
            kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug},
        )
        return f"{url}?{query}" if query else url


def _field_reasons(exc: DomainError) -> dict[str, list[str]]:
    """A refusal's reasons by field, as the page shows them beside each field."""
    return {k: list(v) for k, v in (exc.details or {}).items()}


class TraceExplorerView(ProjectTracePageView):
    """GET: the filter form, the matching traces in the order chosen (newest first unless
    told; a page at a time) with their count, the project's saved views and the actions on
    everything the filter matches."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        if any(name in request.GET for name in filter_builder.ROW_PARAMS):
            return self.built(request.GET)
        return self.explorer(request.GET)

    def builder_context(self) -> filter_builder.Context:
        """What the builder's pickers offer: the project's score names and people."""
        return filter_builder.Context(
            score_names=selectors.score_names(project=self.project, viewer=self.request.user),
            reviewers=selectors.project_people(project=self.project),
        )

    def built(self, query_dict: QueryDict) -> HttpResponse:
        """The filter builder's rows (``traces.filter_builder``) as the filter's own
        parameters: the explorer of those (a redirect, so the address is the filter the
        API takes), or, when a row is not a condition, the rows again with the reason."""
        builder = self.builder_context()
        rows = filter_builder.rows_from_query(query_dict)
        params = filter_builder.params_from_conditions(rows, builder)
        if any(row.errors for row in rows):
            return self.explorer(query_dict, built_rows=rows, builder=builder)
        columns = [c for c in query_dict.getlist("col") if c]
        page = [] if columns == list(DEFAULT_COLUMNS) else [("col", c) for c in columns]
        page += [("sort", s) for s in query_dict.getlist("sort")[-1:] if s and s != DEFAULT_SORT]
        return redirect(self.explorer_url(join_query(filter_query(params), urlencode(page))))

    def explorer(
        self,
        query_dict: QueryDict,
        *,
        status: int = 200,
        built_rows: list[filter_builder.Condition] | None = None,
        builder: filter_builder.Context | None = None,
    ) -> HttpResponse:
        """The explorer for a query string (the filter and the page parameters); with
        ``built_rows``, the builder's rows as typed, one at least refused: nothing is searched."""
        request = self.request
        project = self.project
        builder = builder or self.builder_context()
        params = {} if built_rows is not None else filter_params_from(query_dict)
        page_form = ExplorerPageForm(query_dict, columns=COLUMNS.items())
        page_form.is_valid()
        page_input = page_form.cleaned_data
        columns = page_input.get("col") or list(DEFAULT_COLUMNS)
        errors: dict[str, list[str]] = {}
        if built_rows is not None:
            errors["filter"] = ["A condition is not complete; see its reason."]
        rows: list[dict[str, Any]] = []
        next_cursor = None
        try:
            matching = selectors.trace_list_filter_apply(
                Trace.objects.all(), params, project=project, viewer=request.user
            )
        except DomainError as exc:
            errors = _field_reasons(exc)
            matching = None
        # A page parameter that is refused reads as the filter's error: nothing is searched.
        errors.update({name: list(problems) for name, problems in page_form.errors.items()})
        if errors:
            matching = None
        sort = page_input.get("sort") or parse_sort("")
        match_count = None
        if matching is not None:
            after = page_input.get("after")
            try:
                traces = selectors.trace_list_page(
                    selectors.trace_list_rows(matching),
                    sort=sort,
                    limit=PAGE_SIZE + 1,
                    after=after,
                    viewer=request.user,
                    project=project,
                )
            except DomainError as exc:  # an order refused: its reason beside the sort
                errors.update(_field_reasons(exc))
                matching = None
        if matching is not None:
            if len(traces) > PAGE_SIZE:
                traces = traces[:PAGE_SIZE]
                last = traces[-1]
                next_cursor = sort_cursor(sort, last.sort_value, last.pk)
            if after is None and len(traces) < PAGE_SIZE:
                match_count = len(traces)  # the whole list is on this page
            else:
                match_count = selectors.trace_list_count(matching)
            rows = selectors.trace_list_data(traces, viewer=request.user)
            for row in rows:
                row["cells"] = [_cell(key, row) for key in columns]
        query = filter_query(params)
        column_query = urlencode([("col", c) for c in columns])
        sort_query = "" if sort.key == DEFAULT_SORT else urlencode([("sort", sort.key)])
        page_query = join_query(column_query, sort_query)
        conditions = condition_rows(
            built_rows if built_rows is not None else filter_builder.conditions_from_params(params),
            params=params,
            errors=errors,
            builder=builder,
            remove_url=lambda rest: self.explorer_url(join_query(filter_query(rest), page_query)),
        )
        known = {row["param"] for row in conditions} | {"filter"}
        unknown = [k for k in errors if k not in known]
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "project": project,
            "conditions": conditions,
            "builder_fields": builder_fields(builder),
            "all_operators": list(filter_builder.OPERATORS.items()),
            "score_names": builder.score_names,
            "known_values": sorted(
                {label for name in filter_builder.FIELDS for _v, label in builder.choices(name)}
            ),
            "unknown_errors": {k: errors[k] for k in unknown},
            "has_errors": bool(errors),
            "rows": rows,
            "columns": [(key, COLUMNS[key]) for key in columns],
            "all_columns": [(key, label, key in columns) for key, label in COLUMNS.items()],
            "query": query,
            "column_query": column_query,
            "sort": sort,
            "sort_choices": sort_choices(sort, builder.score_names),
            "sort_errors": errors.get("sort", []),
            "column_heads": [
                (
                    key,
                    COLUMNS[key],
                    self.explorer_url(join_query(query, column_query, sort_param(sort, key)))
                    if key in SORT_COLUMNS
                    else "",
                    ("descending" if sort.descending else "ascending")
                    if key == sort.column
                    else "",
                )
                for key in columns
            ],
            "match_count": match_count,
            "match_cap": f"{selectors.MATCH_COUNT_CAP:,}",
            "more_than_cap": match_count is not None and match_count > selectors.MATCH_COUNT_CAP,
            "first_url": self.explorer_url(join_query(query, column_query, sort_query)),
            "next_url": (
                self.explorer_url(
                    join_query(query, column_query, sort_query, urlencode([("after", next_cursor)]))
                )
                if next_cursor
                else ""
            ),
            "first_page": not page_input.get("after"),
            "saved_views": [
                {
                    "view": view,
                    "deletion": saved_view_deletion(view),
                    "url": self.explorer_url(
                        "&".join(
                            p
                            for p in (
                                filter_query(view.filter_params),
                                urlencode([("col", c) for c in view.columns]),
                                urlencode([("sort", view.sort)]) if view.sort else "",
                                urlencode([("view", view.pk)]),
                            )
                            if p
                        )
                    ),
                }
                for view in SavedView.objects.filter(project=project)
            ],
            "current_view": str(page_input.get("view") or ""),
            "actions": []
            if errors
            else hooks.explorer_actions(membership=self.membership, project=project, query=query),
            "is_manager": self.is_manager,
            "status_choices": Status.choices,
            "feedback_choices": FeedbackChoice.choices,
        }
        return render(request, "traces/explorer.html", context, status=status)


def join_query(*parts: str) -> str:
    """Query strings joined, empty ones left out."""
    return "&".join(p for p in parts if p)


def sort_param(current: TraceSort, column: str) -> str:
    """The ``sort`` parameter a column's heading links to: that column, highest (newest)
    first, or the other way round when the list is already sorted so."""
    descending = not (current.column == column and current.descending)
    key = ("-" if descending else "") + column
    return "" if key == DEFAULT_SORT else urlencode([("sort", key)])


def sort_choices(current: TraceSort, score_names: Iterable[str]) -> list[tuple[str, str]]:
    """The sort control's choices: each column both ways, then each of the project's
    scores (and the score sorted by, if the project has none of that name)."""
    sorts = [TraceSort(column=c, descending=d) for c in SORT_COLUMNS for d in (True, False)]
    names = list(score_names)
    if current.score_name and current.score_name not in names:
        names.append(current.score_name)
    for name in names:
        for descending in (True, False):
            sorts.append(TraceSort(column="score", descending=descending, score_name=name))
    return [(s.key, s.label) for s in sorts]


NUMERIC_COLUMNS = frozenset({"latency_ms", "span_count", "total_tokens", "cost"})


def _cell(key: str, row: dict[str, Any]) -> tuple[str, str]:
    """One table cell of the explorer as (css class, escaped HTML): built here rather
    than in the template, where a branch per column per row costs most of the page."""
    value = row.get(key)
    css = "num" if key in NUMERIC_COLUMNS else ""
    if key == "status":
        return css, format_html('<span class="badge{}">{}</span>',
                                " bad" if value == "error" else "", value)  # fmt: skip
    if key == "start_time":
        return css, value.strftime("%Y-%m-%d %H:%M:%S") if value else ""
    if key == "latency_ms":
        return css, f"{value:.0f} ms" if value is not None else ""
    if key == "tags":
        return css, format_html_join(" ", '<span class="badge">{}</span>', ((t,) for t in value))
    if key == "scores":
        return "scores-cell", format_html_join(
            " ",
            '<span class="score {}" title="{}, {} score(s)">{} {}</span>',
            (
                (
                    "human" if s["source"] == ScoreSource.HUMAN else "auto",
                    s["source"],
                    s["count"],
                    s["name"],
                    "" if s["average"] is None else f"{s['average']:.2f}",
                )
                for s in row["score_summary"]
            ),
        )
    if key == "feedback":
        summary = row["feedback_summary"]
        parts = []
        if summary["thumbs_up"]:
            parts.append(f"{summary['thumbs_up']} up")
        if summary["thumbs_down"]:
            parts.append(f"{summary['thumbs_down']} down")
        if summary["average_rating"] is not None:
            parts.append(f"rated {summary['average_rating']:.1f}")
        return css, ", ".join(parts)
    return css, "" if value is None else str(value)


class SavedViewCreateView(TraceExplorerView):
    """POST (managers): save the current filter and columns under a name. A view that
    cannot be saved answers the explorer of that filter with the reasons (400)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        project = self.project
        if not self.is_manager:
            raise PermissionDenied
        form = SavedViewForm(request.POST, columns=COLUMNS.items())
        if not form.is_valid():
            messages.error(request, " ".join(["The view was not saved:", *form_error_lines(form)]))
            query = form.cleaned_data.get("query", "")
            return self.explorer(QueryDict(query), status=400)
        query = form.cleaned_data["query"]
        columns = form.cleaned_data["col"]
        try:
            view = services.saved_view_create(
                actor=self.actor,
                project=project,
                name=form.cleaned_data["name"],
                filter_params=filter_params_from(QueryDict(query)),
                columns=columns,
                sort=form.cleaned_data["sort"].key,
            )
        except DomainError as exc:
            messages.error(request, " ".join(["The view was not saved:", *error_lines(exc)]))
            return self.explorer(QueryDict(query), status=400)
        messages.success(request, f"Saved the view “{view.name}”.")
        parts = [filter_query(view.filter_params), urlencode([("col", c) for c in columns])]
        parts.append(urlencode([("sort", view.sort)]) if view.sort else "")
        parts.append(urlencode([("view", view.pk)]))
        return redirect(self.explorer_url("&".join(p for p in parts if p)))


def saved_view_deletion(view: SavedView) -> str:
    """What deleting a saved view loses, as its button's dialog and the page that asks say it."""
    return (
        f"Delete the view “{view.name}”? It is gone for everyone in the project, and so "
        "are the links to it; the traces and the filter's results stay."
    )


class SavedViewDeleteView(ProjectTracePageView):
    """POST (managers): delete a saved view (asks first: ``confirm``)."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, saved_view_pk: int
    ) -> HttpResponse:
        project = self.project
        if not self.is_manager:
            raise PermissionDenied
        view = SavedView.objects.filter(project=project, pk=saved_view_pk).first()
        if view is None:
            raise Http404
        form = SavedViewDeleteForm(request.POST)
        if not (form.is_valid() and form.cleaned_data["confirm"]):
            return confirmation_page(
                request,
                Confirmation(
                    title=f"Delete the view “{view.name}”?",
                    lost=saved_view_deletion(view),
                    button="Delete the view",
                    cancel_url=self.explorer_url(),
                ),
                {
                    "organization": self.organization,
                    "membership": self.membership,
                    "project": project,
                },
            )
        services.saved_view_delete(actor=self.actor, saved_view=view)
        messages.success(request, f"Deleted the view “{view.name}”.")
        return redirect(self.explorer_url())


class TraceDetailView(ProjectTracePageView):
    """GET: one trace as the reader may see it."""

    http_method_names = ["get"]

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, trace_external_id: str
    ) -> HttpResponse:
        return self.detail(self.trace_of(trace_external_id))

    def trace_of(self, external_id: str) -> Trace:
        """The project's trace by its id; another project's answers 404 like a missing one."""
        try:
            return selectors.trace_get(
                queryset=Trace.objects.filter(project=self.project), external_id=external_id
            )
        except DomainError as exc:
            raise Http404 from exc

    def detail(
        self,
        trace: Trace,
        *,
        status: int = 200,
        action_forms: dict[str, TraceActionForm] | None = None,
    ) -> HttpResponse:
        """The trace page; ``action_forms``: a refused action's form, shown with its errors."""
        request = self.request
        project = self.project
        action_forms = action_forms or {}
        page = selectors.trace_page(
            trace=trace, viewer=request.user, span=TracePageQueryForm(request.GET).span_id()
        )
        detail, spans = page["trace"], page["spans"]
        for span in spans:
            if span["body_loaded"]:
                render_span_body(span)
        every_score = list(detail["scores"]) + [sc for s in spans for sc in s["scores"]]
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "project": project,
            "trace": detail,
            "spans": spans,
            "page": page,
            "span_detail_url": reverse(
                "traces-detail-span",
                kwargs={
                    "org_slug": self.organization.slug,
                    "project_slug": project.slug,
                    "trace_external_id": trace.external_id,
                },
            ),
            "input_html": render_payload(detail["input"]),
            "output_html": render_payload(detail["output"]),
            "metadata_text": _pretty(detail["metadata"]) if detail["metadata"] else "",
            "score_table": score_table(every_score),
            "feedback": list(detail["feedback"]) + [f for s in spans for f in s["feedback"]],
            "annotations": list(detail["annotations"])
            + [a for s in spans for a in s["annotations"]],
            "comments": list(detail["comments"]) + [c for s in spans for c in s["comments"]],
            "explorer_url": self.explorer_url(),
            "actions": [
                {
                    "action": action,
                    "url": reverse(
                        "traces-detail-action",
                        kwargs={
                            "org_slug": self.organization.slug,
                            "project_slug": project.slug,
                            "trace_external_id": trace.external_id,
                            "action_key": action.key,
                        },
                    ),
                    "form": action_forms.get(action.key)
                    or TraceActionForm(choices=action.choices, auto_id=f"{action.key}-%s"),
                }
                for action in hooks.trace_actions(
                    membership=self.membership, project=project, trace=trace
                )
            ],
        }
        return render(request, "traces/detail.html", context, status=status)


class TraceSpanView(TraceDetailView):
    """GET ``?span=<span id>``: one span of the trace page as the page shows it when it
    is selected, the fragment ``review.js`` puts beside the span tree of a trace longer
    than ``SPAN_BODIES_INLINE``. The page's ``trace_of`` finds the trace (another
    project's or organization's is 404, as the page) and the page's own selector builds
    the span (``trace_page_span``: ``trace_page`` with that span selected), so the blind
    rule is the page's. A span the trace does not have is 404. Signed out: 401 with
    where to sign in, as the review pages' span calls."""

    http_method_names = ["get"]

    def handle_no_permission(self) -> HttpResponse:
        if self.request.user.is_authenticated:
            return super().handle_no_permission()
        page = self.request.path.rsplit("/span/", 1)[0] + "/"
        login = redirect_to_login(page, self.get_login_url())
        return JsonResponse({"signed_out": True, "login_url": login.url}, status=401)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, trace_external_id: str
    ) -> HttpResponse:
        trace = self.trace_of(trace_external_id)
        span_id = TracePageQueryForm(request.GET).span_id()
        found = (
            selectors.trace_page_span(trace=trace, viewer=request.user, span_id=span_id)
            if span_id
            else None
        )
        if found is None:
            raise Http404
        context = {
            "span": render_span_body(found["span"]),
            "index": found["index"],
            "trace": found["page"]["trace"],
            "selected": True,
        }
        return render(request, "spans/_span_detail.html", context)


class TraceActionView(TraceDetailView):
    """POST: one action on this trace offered by an app above (``traces.hooks``): add it
    to a queue, promote it into a dataset. An action the reader is not offered answers
    404; a refused form answers the trace page with the reasons beside it (422)."""

    http_method_names = ["post"]

    def post(
        self,
        request: HttpRequest,
        org_slug: str,
        project_slug: str,
        trace_external_id: str,
        action_key: str,
    ) -> HttpResponse:
        trace = self.trace_of(trace_external_id)
        offered = hooks.trace_actions(membership=self.membership, project=self.project, trace=trace)
        action = next((a for a in offered if a.key == action_key), None)
        if action is None:
            raise Http404
        form = TraceActionForm(request.POST, choices=action.choices, auto_id=f"{action.key}-%s")
        if form.is_valid():
            try:
                told = action.perform(
                    actor=self.actor,
                    trace=trace,
                    choice=form.cleaned_data["choice"],
                    accept_output=form.cleaned_data["accept_output"],
                )
            except DomainError as exc:
                form.add_error(None, error_lines(exc))
            else:
                messages.success(request, told)
                return redirect(request.path.rsplit("/actions/", 1)[0] + "/")
        return self.detail(trace, status=422, action_forms={action.key: form})


def _source_words(source: str) -> str:
    """A score's source as people read it (``ScoreSource``'s label: "LLM judge")."""
    return ScoreSource(source).label if source in ScoreSource.values else source


def score_table(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scores by name, people's beside the automated ones (LLM judge, code): one row per
    score name, each side a list of the values given."""
    table: dict[str, dict[str, Any]] = {}
    for score in scores:
        row = table.setdefault(score["name"], {"name": score["name"], "human": [], "automated": []})
        side = "human" if score["source"] == ScoreSource.HUMAN else "automated"
        shown = score["label"] or (
            f"{score['value']:g}" if isinstance(score["value"], int | float) else "—"
        )
        row[side].append(
            {
                "shown": shown,
                "source": score["source"],
                # The judge or check by name, else its kind in words ("LLM judge").
                "source_words": score["source_name"] or _source_words(score["source"]),
                "source_name": score["source_name"],
                "rationale": score["rationale"],
                "span_id": score["span_id"],
            }
        )
    return sorted(table.values(), key=lambda r: r["name"])


def render_span_body(span: dict[str, Any]) -> dict[str, Any]:
    """A span's input and output rendered for people (``input_html``, ``output_html``)."""
    span["input_html"] = render_payload(span["input"])
    span["output_html"] = render_payload(span["output"])
    return span


def _pretty(value: Any) -> str:
    """A payload as readable text (escaped by the template)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
