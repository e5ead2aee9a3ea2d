"""The datasets pages: datasets and their items with provenance, versions and diffs,
promotion (a trace, a span or a reviewed queue item), sending items to a review queue
for reviewers to label their expected output, import with its per-line report, exports
(started here, finished by a worker, polled with htmx, downloaded), and experiments
with their results and the comparison of two.

Managers only (owner, admin), like the lead's pages: an item's provenance carries every
reviewer's answers, which blind queues hide from reviewers. Others answer 403; another
tenant's or an unseen project's objects in the URL 404 (``ProjectPageView``). Input is
read only through ``datasets.forms`` (a refused field, another project's row named in
one among them, answers the page again with the reason beside it, 4xx). Reads go
through ``datasets.selectors``, writes through ``datasets.services`` as the signed-in
person with source "web".
"""

from __future__ import annotations

import difflib
import re
from typing import Any
from urllib.parse import urlencode

import orjson
from django.contrib import messages
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from datasets import selectors, services
from datasets.forms import (
    CompareForm,
    DatasetForm,
    ExportForm,
    ImportForm,
    PromoteForm,
    PromoteMatchingForm,
    ResultsPageForm,
    SendToQueueForm,
    VersionDiffForm,
    VersionPageForm,
    unshown_error_lines,
)
from datasets.models import (
    Dataset,
    DatasetExport,
    DatasetItem,
    DatasetItemRevision,
    DatasetVersion,
    Experiment,
    ExperimentResult,
    ExportFormat,
    JobState,
    needs_expected_output,
)
from datasets.services.exports import export_key
from datasets.services.promotion import REVIEWED, source_state
from hitl import audit, storage
from hitl.exceptions import DomainError
from hitl.forms import error_lines, form_add_domain_error
from projects.models import MANAGE_ROLES
from projects.pages import ProjectPageView
from review.models import ItemTarget, QueueItem, ReviewQueue
from traces.models import Trace
from traces.payloads import render_payload

ITEMS_PER_PAGE = 50
RESULTS_PER_PAGE = 100
REVIEWED_LISTED = 30


def as_text(value: Any) -> str:
    """A JSON value for reading: strings as they are, anything else indented JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def short(value: Any, length: int = 120) -> str:
    text = as_text(value).replace("\n", " ")
    return text if len(text) <= length else text[: length - 1] + "…"


class DatasetPageView(ProjectPageView):
    """A manager's page under ``.../projects/<project_slug>/``."""

    allowed_roles = MANAGE_ROLES
    dataset: Dataset

    def enter(self, **kwargs: Any) -> None:
        super().enter(**kwargs)
        if "dataset_pk" in kwargs:
            found = Dataset.objects.filter(project=self.project, pk=kwargs["dataset_pk"]).first()
            if found is None:
                raise Http404
            self.dataset = found

    def context(self, **extra: Any) -> dict[str, Any]:
        base = {
            "organization": self.organization,
            "membership": self.membership,
            "project": self.project,
        }
        if hasattr(self, "dataset"):
            base["dataset"] = self.dataset
        return base | extra

    def url(self, name: str, **kwargs: Any) -> str:
        return reverse(
            name,
            kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug} | kwargs,
        )


# --- datasets and items -------------------------------------------------------------------


class DatasetListView(DatasetPageView):
    """GET: the project's datasets. POST: a new dataset (a name and a description)."""

    def render_page(self, *, form: DatasetForm | None = None, status: int = 200) -> HttpResponse:
        datasets = list(Dataset.objects.filter(project=self.project).order_by("name"))
        context = self.context(datasets=datasets, form=form or DatasetForm())
        return render(self.request, "datasets/list.html", context, status=status)

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.render_page()

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = DatasetForm(request.POST)
        if not form.is_valid():
            return self.render_page(form=form, status=422)
        try:
            dataset = services.dataset_create(
                actor=self.actor,
                project=self.project,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self.render_page(form=form, status=422)
        messages.success(request, f"Created the dataset “{dataset.name}”.")
        return redirect(self.url("datasets-detail", dataset_pk=dataset.pk))


class DatasetDetailView(DatasetPageView):
    """A version's items (default: the newest) in key order, a page at a time, each
    with its source and failure reason. A version or page that is none of the dataset's
    answers the newest version's first page with the reason (400)."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = VersionPageForm(request.GET, numbers=self.version_numbers())
        return self.items_page(form, status=200 if form.is_valid() else 400)

    def version_numbers(self) -> list[int]:
        return list(
            DatasetVersion.objects.filter(dataset=self.dataset).values_list("number", flat=True)
        )

    def items_page(
        self,
        form: VersionPageForm,
        *,
        send_form: SendToQueueForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        request = self.request
        dataset = self.dataset
        chosen = form.cleaned_data if form.is_valid() else {}
        number = chosen.get("version") or dataset.current_version
        version = None
        rows: list[dict[str, Any]] = []
        next_after = ""
        if number:
            version = DatasetVersion.objects.filter(dataset=dataset, number=number).first()
            if version is None:
                raise Http404
            revisions = selectors.version_revisions(version).order_by("key")
            after = chosen.get("after") or ""
            if after:
                revisions = revisions.filter(key__gt=after)
            page = list(revisions.values("key", "item_id", "content")[: ITEMS_PER_PAGE + 1])
            if len(page) > ITEMS_PER_PAGE:
                page = page[:ITEMS_PER_PAGE]
                next_after = page[-1]["key"]
            live = set(
                DatasetItem.objects.filter(
                    dataset=dataset, pk__in=[r["item_id"] for r in page]
                ).values_list("pk", flat=True)
            )
            for revision in page:
                content = revision["content"]
                rows.append(
                    {
                        "key": revision["key"],
                        "item_pk": revision["item_id"] if revision["item_id"] in live else None,
                        "input": short(content.get("input")),
                        "expected_output": short(content.get("expected_output")),
                        "needs_expected_output": needs_expected_output(content),
                        "source_type": content.get("source_type") or "",
                        "source_trace_id": content.get("source_trace_id") or "",
                        "failure_reason": short(content.get("failure_reason"), 80),
                        "reviews": len(content.get("reviews") or []),
                    }
                )
        versions = self.version_numbers()
        next_url = ""
        if next_after:
            next_url = "?" + urlencode({"version": number, "after": next_after})
        queues = _open_queues(self.project)
        newest = version is not None and version.number == dataset.current_version
        send_shown = bool(newest and queues and rows)
        return render(
            request,
            "datasets/detail.html",
            self.context(
                version=version,
                rows=rows,
                queues=queues,
                newest=newest,
                versions=versions,
                next_url=next_url,
                experiments=Experiment.objects.filter(dataset=dataset).select_related("version")[
                    :10
                ],
                form=form,
                send_form=send_form,
                errors=unshown_error_lines(form, ("version",) if version else ())
                + _send_errors(send_form, shown=send_shown),
            ),
            status=status,
        )


def _send_errors(form: SendToQueueForm | None, *, shown: bool) -> list[str]:
    """A refused send's errors stated above the page: its own, and all of them when the
    page shows no send form to put them beside."""
    if form is None:
        return []
    return unshown_error_lines(form, ("queue_id", "item_id", "all") if shown else ())


class DatasetItemView(DatasetPageView):
    """One item as it is now, with its provenance: the source trace, span, thread or
    queue item, the reviewers' answers and explanations, the adjudication, the failure
    reason and modes; and the versions it appeared in."""

    def get(self, request: HttpRequest, dataset_item_pk: int, **kwargs: Any) -> HttpResponse:
        return self.item_page(dataset_item_pk)

    def item_page(
        self,
        dataset_item_pk: int,
        *,
        send_form: SendToQueueForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        request = self.request
        item = (
            DatasetItem.objects.select_related("trace", "span", "thread", "queue_item__queue")
            .filter(dataset=self.dataset, pk=dataset_item_pk)
            .first()
        )
        if item is None:
            raise Http404
        revisions = list(
            DatasetItemRevision.objects.filter(dataset=self.dataset, item_id=item.pk)
            .order_by("added_in")
            .values("added_in", "removed_in", "content_hash")
        )
        labelled = list(
            QueueItem.objects.filter(
                project=self.project,
                target_type=ItemTarget.DATASET_ITEM,
                dataset_item_id=item.pk,
            )
            .select_related("queue")
            .order_by("-created_at", "-id")[:20]
        )
        queues = _open_queues(self.project)
        reviews = [
            {
                "reviewer": review.get("reviewer") or "",
                "adjudication": bool(review.get("adjudication")),
                "answers": sorted((review.get("answers") or {}).items()),
                "explanation": review.get("explanation") or "",
                "expected_output": (
                    render_payload(review["expected_output"])
                    if review.get("expected_output") not in (None, "", [], {})
                    else ""
                ),
            }
            for review in item.reviews or []
        ]
        return render(
            request,
            "datasets/item.html",
            self.context(
                item=item,
                input_html=render_payload(item.input),
                expected_html=render_payload(item.expected_output),
                tool_calls_text=as_text(item.expected_tool_calls),
                metadata_text=as_text(item.metadata) if item.metadata else "",
                reviews=reviews,
                revisions=revisions,
                labelled=labelled,
                labelled_by=[r["reviewer"] for r in reviews if r["reviewer"]],
                queues=queues,
                history=audit.history_for_display(item.history.all(), limit=20),
                send_form=send_form,
                errors=_send_errors(send_form, shown=bool(queues)),
            ),
            status=status,
        )


def _open_queues(project: Any) -> list[ReviewQueue]:
    return list(ReviewQueue.objects.filter(project=project, archived_at__isnull=True))


class DatasetSendToQueueView(DatasetItemView, DatasetDetailView):
    """POST: sends items of the dataset (``item_id``, repeated; or ``all``: every item
    it holds now) to a review queue of the project (``queue_id``), for reviewers to
    label their expected output; back to ``next`` (a page of this dataset) with what
    happened. Refused, the page it was sent from (the item's, else the dataset's items)
    answers with the reasons beside the queue (400; 422 when the service refuses)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        queues = ReviewQueue.objects.filter(project=self.project, archived_at__isnull=True)
        form = SendToQueueForm(request.POST, dataset=self.dataset, queues=queues)
        if not form.is_valid():
            return self.refused(form, status=400)
        back = self.url("datasets-detail", dataset_pk=self.dataset.pk)
        if form.cleaned_data["next"].startswith(back):
            back = form.cleaned_data["next"]
        queue = form.cleaned_data["queue_id"]
        try:
            result = services.dataset_items_send_to_queue(
                actor=self.actor,
                dataset=self.dataset,
                queue=queue,
                item_ids=form.item_ids(),
            )
        except DomainError as exc:
            form_add_domain_error(form, exc, fields={"item_ids": "item_id"})
            return self.refused(form, status=422)
        text = f"Sent {result['added']} item{'s' if result['added'] != 1 else ''} to “{queue.name}”"
        if result["already_queued"]:
            text += f"; {result['already_queued']} already there"
        messages.success(request, text + ".")
        return redirect(back)

    def refused(self, form: SendToQueueForm, *, status: int) -> HttpResponse:
        """The page the form was sent from (``next``), with the form's reasons."""
        given = form.cleaned_data.get("next") or ""
        try:
            match = resolve(given.split("?", 1)[0]) if given.startswith("/") else None
        except Resolver404:
            match = None
        if (
            match is not None
            and match.url_name == "datasets-item"
            and match.kwargs.get("dataset_pk") == self.dataset.pk
            and match.kwargs.get("project_slug") == self.project.slug
            and match.kwargs.get("org_slug") == self.organization.slug
        ):
            return self.item_page(match.kwargs["dataset_item_pk"], send_form=form, status=status)
        page_form = VersionPageForm({}, numbers=self.version_numbers())
        return self.items_page(page_form, send_form=form, status=status)


# --- versions and diffs -------------------------------------------------------------------


class DatasetVersionsView(DatasetPageView):
    """Every version (what each added, changed, removed) and the diff of any two
    (``?from=<n>&to=<n>``), changed items field by field; two that are not versions of
    the dataset answer 422 with the reason."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        dataset = self.dataset
        versions = list(DatasetVersion.objects.filter(dataset=dataset).select_related("created_by"))
        diff = None
        form = VersionDiffForm(request.GET)
        if form.asked():
            try:
                diff = selectors.version_diff(
                    dataset=dataset,
                    from_number=form.cleaned_data["from"],
                    to_number=form.cleaned_data["to"],
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
        if diff is not None:
            for change in diff["changed"]:
                change["rows"] = [
                    {"name": name, "old": as_text(values["from"]), "new": as_text(values["to"])}
                    for name, values in change["fields"].items()
                ]
        numbers = [v.number for v in versions]
        form.is_valid()
        chosen = form.cleaned_data
        return render(
            request,
            "datasets/versions.html",
            self.context(
                versions=versions,
                diff=diff,
                form=form,
                errors=unshown_error_lines(form, ("from", "to") if len(numbers) > 1 else ()),
                chosen_from=chosen.get("from") or (numbers[1:2] or [0])[0],
                chosen_to=chosen.get("to") or (numbers[:1] or [0])[0],
                numbers=numbers,
            ),
            status=422 if form.errors else 200,
        )


# --- promotion ----------------------------------------------------------------------------


class PromoteView(DatasetPageView):
    """Promotes one source into a dataset: a trace (``?trace=<external id>``, with
    ``&span=<external id>`` for one of its spans) or a reviewed queue item
    (``?item=<id>``); without either, lists the project's reviewed items to pick from.
    Promoting a source the dataset already has reports the existing item; "update it"
    promotes again over it. A source that is not in this project, or a dataset that is
    not, is refused beside the field (400 on the GET, 422 on the POST)."""

    def form(self, data: Any, *, posting: bool = False) -> PromoteForm:
        return PromoteForm(data, project=self.project, describe=self.describe, posting=posting)

    def describe(self, source: dict[str, Any]) -> dict[str, Any] | None:
        """What the source is, for the page; None when it is not in this project."""
        if "queue_item_id" in source:
            item = (
                QueueItem.objects.select_related("trace", "queue")
                .filter(project=self.project, pk=source["queue_item_id"])
                .first()
            )
            if item is None:
                return None
            described = {
                "kind": "reviewed item",
                "label": f"Item {item.pk} of “{item.queue.name}” ({item.get_status_display()})",
                "trace": item.trace,
            }
            if item.status in REVIEWED and item.target_type != ItemTarget.DATASET_ITEM:
                # What the people stated, and the model's output the promoter may accept.
                ids = {"project_id": self.project.pk, "queue_item_id": item.pk}
                described["stated"] = as_text(source_state(**ids).expected_output)
                described["model_output"] = as_text(
                    source_state(**ids, accept_output=True).expected_output
                )
            return described
        trace = Trace.objects.filter(project=self.project, external_id=source["trace_id"]).first()
        if trace is None:
            return None
        label = trace.name or trace.external_id
        output = trace.output
        if "span_id" in source:
            label = f"span {source['span_id']} of {label}"
            from traces.models import Span

            span = Span.objects.filter(  # created_at: the trace's, the span's partition
                project=self.project,
                trace=trace,
                created_at=trace.created_at,
                external_id=source["span_id"],
            ).first()
            if span is None:
                return None
            output = span.output
        # The expected output field starts as the model's output: submitting it unedited
        # is the person accepting it (``accepted_as_shown``); clearing it leaves none.
        return {
            "kind": "span" if "span_id" in source else "trace",
            "label": label,
            "trace": trace,
            "model_output": as_text(output),
        }

    def accepted_as_shown(self, form: PromoteForm, typed: str) -> bool:
        """Whether ``typed`` is the trace's or span's output as the form showed it."""
        if "queue_item_id" in form.source() or not typed:
            return False
        shown = (form.described or {}).get("model_output", "")
        return typed.replace("\r\n", "\n").strip() == shown.replace("\r\n", "\n").strip()

    def render_page(self, form: PromoteForm, *, status: int = 200, **extra: Any) -> HttpResponse:
        source = form.source()
        datasets = Dataset.objects.filter(project=self.project).order_by("name")
        shown = ("dataset", "failure_reason", "expected_output") if source else ("trace",)
        reviewed = []
        if not source:
            from traces.selectors import trace_input_head

            # Each named as a person tells traces apart (review/_trace_identity.html):
            # the input's head, not whole inputs and outputs.
            reviewed = list(
                QueueItem.objects.select_related("trace", "queue")
                .defer("trace__input", "trace__output", "trace__metadata")
                .annotate(input_head=trace_input_head("trace__input"))
                .filter(project=self.project, status__in=REVIEWED)
                .exclude(target_type="dataset_item")  # written back to their items
                .order_by(F("completed_at").desc(nulls_last=True), "-id")[:REVIEWED_LISTED]
            )
        context = self.context(
            source=source,
            described=form.described if source else None,
            reviewed=reviewed,
            datasets=datasets,
            chosen=form.chosen(),
            form=form,
            errors=unshown_error_lines(form, shown if datasets.exists() else ()),
            **extra,
        )
        return render(self.request, "datasets/promote.html", context, status=status)

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = self.form(request.GET)
        return self.render_page(form, status=200 if form.is_valid() else 400)

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = self.form(request.POST, posting=True)
        if not form.is_valid():
            return self.render_page(form, status=422)
        source = form.source()
        dataset = form.cleaned_data["dataset"]
        overrides = {}
        if form.cleaned_data["failure_reason"]:
            overrides["failure_reason"] = form.cleaned_data["failure_reason"]
        # The expected output the person types (stored as the text typed).
        typed = form.cleaned_data["expected_output"]
        accept_output = form.cleaned_data["accept_output"]
        if self.accepted_as_shown(form, typed):
            accept_output = True  # the output as it is, not its text
        elif typed:
            overrides["expected_output"] = typed
        try:
            promotion = services.dataset_promote(
                actor=self.actor,
                dataset=dataset,
                update_existing=form.cleaned_data["update_existing"],
                overrides=overrides,
                accept_output=accept_output,
                **source,
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self.render_page(form, status=422)
        item_url = self.url(
            "datasets-item", dataset_pk=dataset.pk, dataset_item_pk=promotion.item.pk
        )
        if promotion.status == "exists":
            return self.render_page(
                form, existing=promotion.item, existing_url=item_url, status=409
            )
        wording = {
            "created": "Added",
            "updated": "Updated",
            "unchanged": "Nothing changed in",
        }[promotion.status]
        version = f" (version {promotion.version.number})" if promotion.version else ""
        messages.success(request, f"{wording} “{promotion.item.key}” in “{dataset.name}”{version}.")
        if promotion.item.needs_expected_output:
            messages.warning(
                request,
                "Nobody gave or accepted an expected output for it: the item needs one "
                "(see the item).",
            )
        return redirect(item_url)


class PromoteMatchingView(DatasetPageView):
    """Promotes every trace a trace filter matches: the filter built with the trace
    filter builder's condition rows (a link from the explorer gives its query string,
    shown as rows), the count first, then the dataset; traces the dataset already has
    are reported, and updated when asked. The rows spell the filter object the API's
    ``trace_filter`` takes, so a promotion built here equals one posted. A refused
    condition (a value the filter refuses, a score name the project has no score of)
    shows its reason beside its row. Linked from the trace explorer
    (``explorer_actions``)."""

    def builder(self) -> Any:
        from traces import filter_builder
        from traces import selectors as trace_selectors

        return filter_builder.Context(
            score_names=trace_selectors.score_names(project=self.project, viewer=self.request.user),
            reviewers=trace_selectors.project_people(project=self.project),
        )

    def render_page(
        self,
        form: PromoteMatchingForm,
        *,
        status: int = 200,
        filter_errors: dict[str, list[str]] | None = None,
        **extra: Any,
    ) -> HttpResponse:
        from traces import filter_builder
        from traces.selectors import (
            trace_filter_check_score_names,
            traces_matching,
            validate_trace_filter,
        )
        from traces.views import filter_query

        refused = form.filter_refused()
        params = form.params()
        query = filter_query(params)
        datasets = Dataset.objects.filter(project=self.project).order_by("name")
        errors = unshown_error_lines(form, ("dataset",) if datasets.exists() else ())
        filter_errors = dict(filter_errors or {})
        matched = None
        if not refused and not filter_errors:
            try:
                trace_filter_check_score_names(project=self.project, params=params)
                matched = traces_matching(
                    project=self.project, params=validate_trace_filter(params)
                ).count()
            except DomainError as exc:
                errors = errors + error_lines(exc)
                filter_errors = _reasons_by_parameter(exc)
        rows = form.rows or filter_builder.conditions_from_params(form.typed_params())
        explorer_url = self.url("traces-explorer") + (f"?{query}" if query else "")
        context = self.context(
            query=query,
            filter_summary=filter_builder.as_words(params) if params else "",
            matched=matched,
            errors=errors,
            explorer_url=explorer_url,
            datasets=datasets,
            form=form,
            # Typed beside rows, the typed filter stays typed; alone, it shows as rows.
            typed_filter=(form.data.get("filter") or "") if form.rows else "",
            **filter_builder.page_context(
                rows, params=params, errors=filter_errors, builder=form.builder
            ),
            **extra,
        )
        return render(self.request, "datasets/promote_matching.html", context, status=status)

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = PromoteMatchingForm(request.GET, project=self.project, builder=self.builder())
        return self.render_page(form, status=200 if form.is_valid() else 400)

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = PromoteMatchingForm(
            request.POST, project=self.project, posting=True, builder=self.builder()
        )
        if not form.is_valid():
            return self.render_page(form, status=422)
        dataset = form.cleaned_data["dataset"]
        try:
            result = services.dataset_promote_from_trace_filter(
                actor=self.actor,
                dataset=dataset,
                params=form.params(),
                update_existing=form.cleaned_data["update_existing"],
                accept_output=form.cleaned_data["accept_output"],
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self.render_page(form, status=422, filter_errors=_reasons_by_parameter(exc))
        messages.success(
            request,
            f"Promoted {result['matched']} matching traces into “{dataset.name}”: "
            f"{result['created']} added, {result['updated']} updated, "
            f"{result['unchanged']} unchanged, {result['exists']} already there"
            f"{' (not updated)' if result['exists'] else ''}.",
        )
        return redirect(self.url("datasets-detail", dataset_pk=dataset.pk))


def _reasons_by_parameter(exc: DomainError) -> dict[str, list[str]]:
    """A refused trace filter's reasons by parameter (shown beside the builder's rows)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    return {
        name: [str(r) for r in (reasons if isinstance(reasons, list | tuple) else [reasons])]
        for name, reasons in details.items()
    }


def explorer_actions(*, membership: Any, project: Any, query: str) -> list[dict[str, str]]:
    """The trace explorer's action datasets offers (registered in
    ``DatasetsConfig.ready()`` with ``traces.hooks``): managers promote everything the
    filter matches into a dataset."""
    if membership.role not in MANAGE_ROLES:
        return []
    url = reverse(
        "datasets-promote-matching",
        kwargs={"org_slug": membership.organization.slug, "project_slug": project.slug},
    )
    return [
        {
            "label": "Promote all matching to a dataset…",
            "url": f"{url}?{urlencode({'filter': query})}",
        }
    ]


# --- import -------------------------------------------------------------------------------


class DatasetImportView(DatasetPageView):
    """GET: the upload form. POST: a JSONL or CSV file; the report lists every bad row
    with its line and reason. "All or nothing" lands nothing when any row is bad."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return render(request, "datasets/import.html", self.context(form=ImportForm()))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            context = self.context(
                form=form,
                atomic=form.cleaned_data.get("atomic", False),
                errors=unshown_error_lines(form, ("file", "format")),
            )
            return render(request, "datasets/import.html", context, status=422)
        upload = form.cleaned_data["file"]
        file_format = form.file_format()
        atomic = form.cleaned_data["atomic"]
        report = None
        errors: list[str] = []
        rejected: list[dict[str, Any]] = []
        try:
            report = services.dataset_import(
                actor=self.actor,
                dataset=self.dataset,
                stream=upload.file,
                file_format=file_format,
                atomic=atomic,
            )
        except DomainError as exc:
            errors = error_lines(exc, skip=("errors",))  # the rows: the report's table
            details = exc.details if isinstance(exc.details, dict) else {}
            rejected = list(details.get("errors") or [])
        self.dataset.refresh_from_db()
        context = self.context(
            form=form,
            report=report,
            errors=errors,
            rejected=rejected,
            atomic=atomic,
            file_name=upload.name,
            file_format=file_format,
        )
        return render(request, "datasets/import.html", context, status=422 if errors else 200)


# --- exports ------------------------------------------------------------------------------


class DatasetExportsView(DatasetPageView):
    """GET: the dataset's exports and a form to start one. POST: starts an export of a
    version in a format; a worker writes the file, the page polls its status."""

    def numbers(self) -> list[int]:
        return list(
            DatasetVersion.objects.filter(dataset=self.dataset).values_list("number", flat=True)
        )

    def render_page(self, *, form: ExportForm | None = None, status: int = 200) -> HttpResponse:
        exports = list(
            DatasetExport.objects.filter(dataset=self.dataset).select_related("version")[:20]
        )
        numbers = self.numbers()
        form = form or ExportForm(numbers=numbers)
        context = self.context(
            exports=exports,
            formats=ExportFormat.choices,
            numbers=numbers,
            form=form,
            errors=unshown_error_lines(form, ("version", "format") if numbers else ()),
        )
        return render(self.request, "datasets/exports.html", context, status=status)

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.render_page()

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        form = ExportForm(request.POST, numbers=self.numbers())
        if not form.is_valid():
            return self.render_page(form=form, status=422)
        file_format = form.cleaned_data["format"]
        try:
            export = services.dataset_export_start(
                actor=self.actor,
                dataset=self.dataset,
                version=form.cleaned_data["version"],
                file_format=file_format,
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self.render_page(form=form, status=422)
        messages.success(
            request, f"Started exporting version {export.version.number} as {file_format}."
        )
        return redirect(self.url("datasets-exports", dataset_pk=self.dataset.pk))


class DatasetExportMixin:
    def export(self, export_pk: int) -> DatasetExport:
        export = (
            DatasetExport.objects.select_related("version")
            .filter(dataset=self.dataset, pk=export_pk)  # type: ignore[attr-defined]
            .first()
        )
        if export is None:
            raise Http404
        return export


class DatasetExportStatusView(DatasetExportMixin, DatasetPageView):
    """One export's row (htmx polls it every 2 s while the export is pending)."""

    def get(self, request: HttpRequest, export_pk: int, **kwargs: Any) -> HttpResponse:
        context = self.context(export=self.export(export_pk))
        return render(request, "datasets/_export_row.html", context)


class DatasetExportDownloadView(DatasetExportMixin, DatasetPageView):
    """The finished export's file, streamed from the shared storage (or a signed URL of
    it); found through the dataset's row, so only its organization reaches it."""

    def get(self, request: HttpRequest, export_pk: int, **kwargs: Any) -> HttpResponse:
        export = self.export(export_pk)
        if export.state != JobState.DONE:
            raise Http404
        return storage.download_response(
            export_key(export), filename=export.file_name, missing=Http404
        )


# --- experiments ----------------------------------------------------------------------------


class ExperimentListView(DatasetPageView):
    """The project's experiments, newest first, with their metrics; two chosen are
    compared."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        experiments = list(
            Experiment.objects.filter(project=self.project).select_related("dataset", "version")[
                :200
            ]
        )
        rows = [
            {
                "experiment": e,
                "metrics": sorted(
                    (name, values.get("mean"))
                    for name, values in ((e.summary or {}).get("metrics") or {}).items()
                ),
            }
            for e in experiments
        ]
        return render(request, "datasets/experiments.html", self.context(rows=rows))


class ExperimentView(DatasetPageView):
    """An experiment's metrics and its per-item results (output, scores, trace); a page
    of results that is none answers the first with the reason (400)."""

    def get(self, request: HttpRequest, experiment_pk: int, **kwargs: Any) -> HttpResponse:
        form = ResultsPageForm(request.GET)
        return self.experiment_page(
            self.experiment(experiment_pk), form, status=200 if form.is_valid() else 400
        )

    def experiments(self) -> Any:
        return Experiment.objects.select_related("dataset", "version").filter(project=self.project)

    def experiment(self, experiment_pk: int) -> Experiment:
        experiment = self.experiments().filter(pk=experiment_pk).first()
        if experiment is None:
            raise Http404
        return experiment

    def experiment_page(
        self,
        experiment: Experiment,
        form: ResultsPageForm,
        *,
        compare_form: CompareForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        results = ExperimentResult.objects.filter(experiment=experiment).order_by("key")
        after = form.cleaned_data.get("after") if form.is_valid() else ""
        if after:
            results = results.filter(key__gt=after)
        page = list(results[: RESULTS_PER_PAGE + 1])
        next_url = ""
        if len(page) > RESULTS_PER_PAGE:
            page = page[:RESULTS_PER_PAGE]
            next_url = "?" + urlencode({"after": page[-1].key})
        metrics = selectors.experiment_metrics(experiment)
        rows = [
            {
                "key": r.key,
                "output": short(r.output, 160),
                "scores": sorted(r.scores.items()),
                "trace_id": r.trace_external_id,
                "error": r.error,
            }
            for r in page
        ]
        others = list(
            Experiment.objects.filter(dataset=experiment.dataset)
            .select_related("version")
            .exclude(pk=experiment.pk)
            .order_by("-created_at", "-id")[:50]
        )
        errors = unshown_error_lines(form)
        if compare_form is not None:
            errors += unshown_error_lines(compare_form, ("baseline",) if others else ())
        return render(
            self.request,
            "datasets/experiment.html",
            self.context(
                experiment=experiment,
                metrics=sorted(metrics.items()),
                rows=rows,
                next_url=next_url,
                others=others,
                client_summary=as_text((experiment.summary or {}).get("client")),
                form=form,
                compare_form=compare_form,
                errors=errors,
            ),
            status=status,
        )


class ExperimentCompareView(ExperimentView):
    """``?baseline=<id>``: per-metric deltas of this experiment from the baseline, and
    the items that regressed or improved, with links to both traces. A baseline that is
    no experiment of the project answers the experiment's page with the reason beside
    "Compare with" (400)."""

    def get(self, request: HttpRequest, experiment_pk: int, **kwargs: Any) -> HttpResponse:
        candidate = self.experiment(experiment_pk)
        form = CompareForm(request.GET, experiments=self.experiments())
        if not form.is_valid():
            return self.experiment_page(
                candidate, ResultsPageForm({}), compare_form=form, status=400
            )
        baseline = form.cleaned_data["baseline"]
        show = form.cleaned_data["show"]
        errors: list[str] = []
        comparison = page = None
        try:
            comparison = selectors.experiment_compare(baseline=baseline, candidate=candidate)
            page = selectors.experiment_compare_items(
                baseline=baseline,
                candidate=candidate,
                show=show,
                after=form.cleaned_data["after"],
                viewer=request.user,
            )
        except DomainError as exc:
            errors = error_lines(exc)
        compare_url = reverse(
            "experiments-compare",
            kwargs={**self.kwargs, "experiment_pk": candidate.pk},
        )
        if page is not None:
            for item in page["items"]:
                old, new = item["baseline"], item["candidate"]
                diff = output_diff(old["output"] if old else None, new["output"] if new else None)
                item["diff"] = diff
                item["sides"] = [
                    ("baseline", old, diff["baseline"], f"Baseline: {baseline.name}"),
                    ("candidate", new, diff["candidate"], f"This run: {candidate.name}"),
                ]
        return render(
            request,
            "datasets/compare.html",
            self.context(
                candidate=candidate,
                baseline=baseline,
                comparison=comparison,
                page=page,
                show=show,
                show_choices=[
                    (
                        value,
                        label,
                        f"{compare_url}?{urlencode({'baseline': baseline.pk, 'show': value})}",
                    )
                    for value, label in form.fields["show"].choices
                ],
                next_url=(
                    f"{compare_url}?"
                    + urlencode(
                        {"baseline": baseline.pk, "show": show, "after": page["next_after"]}
                    )
                    if page and page["next_after"]
                    else ""
                ),
                errors=errors,
            ),
            status=422 if errors else 200,
        )


# A side of the output diff shows at most this many characters (the item's trace has all).
DIFF_SHOWN_CHARS = 6000
_DIFF_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def output_text(output: Any) -> str:
    """An output as text: a string as it is, anything else as indented JSON."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    return orjson.dumps(output, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def output_diff(old: Any, new: Any) -> dict[str, Any]:
    """The two outputs as escaped HTML, words only in the baseline in ``<del>``, words
    only in the candidate in ``<ins>`` (each side cut at ``DIFF_SHOWN_CHARS``)."""
    before, after = output_text(old), output_text(new)
    cut = len(before) > DIFF_SHOWN_CHARS or len(after) > DIFF_SHOWN_CHARS
    before, after = before[:DIFF_SHOWN_CHARS], after[:DIFF_SHOWN_CHARS]
    a, b = _DIFF_TOKENS.findall(before), _DIFF_TOKENS.findall(after)
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        gone, came = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(gone)
            right.append(came)
            continue
        if gone:
            left.append(f"<del>{gone}</del>")
        if came:
            right.append(f"<ins>{came}</ins>")
    return {
        "baseline": mark_safe("".join(left)),  # noqa: S308 (every piece escaped above)
        "candidate": mark_safe("".join(right)),  # noqa: S308
        "same": before == after,
        "cut": cut,
    }
