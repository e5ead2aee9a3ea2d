"""The comparison review page: the input, the outputs side by side in the lease's order
(with a word diff on demand), one question per criterion answered from the keyboard
(``a``, ``b``, ``=`` for two outputs; a letter or digit for the best of N; letters in
order for a ranking), then submit and on to the next item of the queue, whatever its
kind. Its script is ``static/js/compare.js``.

The review page of the core (``review.pages.reviewer``) sends a lease on a comparison
item here (:func:`compare_url`).

Also the lead's comparison page of a queue (:class:`ComparisonSetupView`): its
comparison questions (criteria, "much better", best of N or a full ranking) and filling
it with comparison items from two or more experiments on the same dataset or from traces
sharing a metadata key; and the queue's comparison report (:class:`ComparisonReportView`).
Managers only there; writes through :mod:`review.comparison.services`, refusals beside
their fields with 422."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from hitl.exceptions import DomainError
from hitl.forms import TextField, WholeNumberField, form_add_domain_error, form_error_lines
from hitl.replica import reads_from_replica
from projects.models import MANAGE_ROLES, REVIEW_ROLES, Role
from review import services as core_services
from review.comparison import report, selectors, services
from review.comparison.models import MAX_OUTPUTS, NWayMode
from review.comparison.ordering import LETTERS
from review.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Assignment,
    AssignmentState,
    ItemTarget,
    QueueItem,
    ReviewQueue,
)
from review.page_base import ReviewProjectPage


def compare_url(org_slug: str, project_slug: str, assignment_pk: int) -> str:
    return reverse(
        "review-compare",
        kwargs={"org_slug": org_slug, "project_slug": project_slug, "assignment_pk": assignment_pk},
    )


def is_comparison_lease(assignment: Assignment) -> bool:
    """Whether the lease holds a comparison item (one query when the item is not loaded)."""
    if Assignment.item.is_cached(assignment):
        return assignment.item.target_type == ItemTarget.COMPARISON
    return QueueItem.objects.filter(
        pk=assignment.item_id, target_type=ItemTarget.COMPARISON
    ).exists()


def as_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, indent=2, ensure_ascii=False, default=str)


class ComparisonAnswersForm(forms.Form):
    """One field per criterion: ``c-<n>`` holds a letter (or ``tie``) for a choice, or
    the letters of a full ranking, best first (``bca``)."""

    explanation = forms.CharField(required=False, max_length=20_000)

    def __init__(
        self,
        *args: Any,
        criteria: list[str],
        mode: str,
        n: int,
        allow_strength: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.criteria, self.mode, self.n = criteria, mode, n
        letters = LETTERS[:n]
        for index, name in enumerate(criteria):
            if mode == "ranking":
                self.fields[f"c-{index}"] = forms.RegexField(
                    regex=rf"^[{letters}]{{{n}}}$",
                    label=name,
                    error_messages={
                        "invalid": f"Rank all {n} outputs, best first, as letters.",
                        "required": "Rank the outputs.",
                    },
                )
            else:
                choices = [(c, c) for c in letters] + (
                    [("tie", "tie")] if mode == "pairwise" else []
                )
                self.fields[f"c-{index}"] = forms.ChoiceField(
                    choices=choices, label=name, error_messages={"required": "Pick one."}
                )
            if mode == "pairwise" and allow_strength:
                self.fields[f"s-{index}"] = forms.TypedChoiceField(
                    choices=[("1", "better"), ("2", "much better")],
                    coerce=int,
                    required=False,
                    empty_value=1,
                )

    def answers(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for index, name in enumerate(self.criteria):
            value = self.cleaned_data[f"c-{index}"]
            if self.mode == "ranking":
                out[name] = {"ranking": list(value)}
            elif value == "tie":
                out[name] = {"choice": "tie"}
            else:
                out[name] = {"choice": value}
                strength = self.cleaned_data.get(f"s-{index}") or 1
                if self.mode == "pairwise" and strength != 1:
                    out[name]["strength"] = strength
        return out


class ComparisonPage(ReviewProjectPage):
    allowed_roles = REVIEW_ROLES
    assignment: Assignment

    def enter(self, **kwargs: Any) -> None:
        super().enter(**kwargs)
        assignment = (
            Assignment.objects.select_related("item", "queue")
            .filter(
                pk=kwargs["assignment_pk"],
                reviewer=self.request.user,
                queue__project=self.project,
            )
            .first()
        )
        if assignment is None or assignment.item.target_type != ItemTarget.COMPARISON:
            raise Http404
        self.assignment = assignment

    def next_url(self, queue: ReviewQueue) -> str:
        """The next item of the queue for me: my oldest live lease, else a new claim;
        My work when nothing is left."""
        lease = (
            Assignment.objects.filter(
                queue=queue,
                reviewer=self.request.user,
                state=AssignmentState.LEASED,
                expires_at__gt=timezone.now(),
            )
            .select_related("item")
            .order_by("leased_at", "id")
            .first()
        )
        if lease is None:
            try:
                lease = core_services.queue_claim_next(actor=self.actor, queue=queue)
            except DomainError as exc:
                messages.error(self.request, exc.message)
                lease = None
        if lease is None:
            messages.success(self.request, f"Nothing is waiting for you in “{queue.name}”.")
            return reverse("review-my-work", kwargs={"org_slug": self.organization.slug})
        if is_comparison_lease(lease):
            return self.url("review-compare", assignment_pk=lease.pk)
        return self.url("review-item", assignment_pk=lease.pk)

    def render_page(
        self, form: ComparisonAnswersForm | None = None, status: int = 200
    ) -> HttpResponse:
        view = selectors.comparison_for_lease(self.assignment)
        if view is None:
            raise Http404
        posted = form.data if form is not None else {}
        questions = []
        for index, criterion in enumerate(view.criteria):
            questions.append(
                {
                    "index": index,
                    "name": criterion["name"],
                    "question": criterion.get("question")
                    or f"Which is better: {criterion['name']}?",
                    "value": posted.get(f"c-{index}", ""),
                    "strength": posted.get(f"s-{index}", "1"),
                    "errors": form.errors.get(f"c-{index}", []) if form is not None else [],
                }
            )
        outputs = [
            {
                "letter": o.letter,
                "key": o.letter if len(view.outputs) == 2 else str(i + 1),
                "label": "" if view.blind else o.label,
                "text": as_text(o.content),
            }
            for i, o in enumerate(view.outputs)
        ]
        context = self.context(
            assignment=self.assignment,
            queue=self.assignment.queue,
            comparison=view.comparison,
            input_text=as_text(view.comparison.input),
            outputs=outputs,
            mode=view.mode,
            allow_strength=view.allow_strength,
            questions=questions,
            letters=LETTERS[: len(outputs)],
            explanation=posted.get("explanation", ""),
            form_errors=form.non_field_errors() if form is not None else [],
            live=self.assignment.state == AssignmentState.LEASED,
            submit_url=self.url("review-compare-submit", assignment_pk=self.assignment.pk),
            my_work_url=reverse("review-my-work", kwargs={"org_slug": self.organization.slug}),
            max_outputs=MAX_OUTPUTS,
        )
        return render(self.request, "review/comparison/compare.html", context, status=status)


class ComparisonReviewView(ComparisonPage):
    """A comparison item under my lease, outputs side by side."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.render_page()


class ComparisonSubmitView(ComparisonPage):
    """My preferences on the item; then the next item of the queue."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        view = selectors.comparison_for_lease(self.assignment)
        if view is None:
            raise Http404
        form = ComparisonAnswersForm(
            request.POST,
            criteria=[c["name"] for c in view.criteria],
            mode=view.mode,
            n=len(view.outputs),
            allow_strength=view.allow_strength,
        )
        if not form.is_valid():
            return self.render_page(form, status=400)
        try:
            services.comparison_submit(
                actor=self.actor,
                assignment_id=self.assignment.pk,
                answers=form.answers(),
                explanation=form.cleaned_data["explanation"],
                accept_lapsed=True,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
            return self.render_page(form, status=exc.status_code)
        return redirect(self.next_url(self.assignment.queue))


class ComparisonReportQueryForm(forms.Form):
    """The report page's query: one criterion (or all), how many resamples."""

    criterion = forms.CharField(required=False, max_length=100)
    resamples = forms.IntegerField(required=False, min_value=0, max_value=5000)

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "criterion": data.get("criterion") or None,
            "resamples": 1000 if data.get("resamples") is None else data["resamples"],
        }


class ComparisonReportView(ReviewProjectPage):
    """A comparison queue's report: strengths with intervals, win/tie/loss per pair,
    position bias and agreement, per criterion; the export's link."""

    allowed_roles = MANAGE_ROLES | {Role.AUDITOR}
    http_method_names = ["get"]

    @reads_from_replica
    def get(self, request: HttpRequest, queue_pk: int, **kwargs: Any) -> HttpResponse:
        queue = ReviewQueue.objects.filter(project=self.project, pk=queue_pk).first()
        if queue is None or selectors.comparison_setup_of(queue) is None:
            raise Http404
        query = ComparisonReportQueryForm(request.GET)
        if not query.is_valid():
            context = self.context(queue=queue, query=query, result=None)
            return render(request, "review/comparison/report.html", context, status=400)
        result = report.comparison_report(queue, **query.settings())
        context = self.context(
            queue=queue,
            query=query,
            result=result,
            export_url=reverse(
                "queue-comparison-export",
                kwargs={
                    "org_slug": self.organization.slug,
                    "project_slug": self.project.slug,
                    "queue_pk": queue.pk,
                },
            ),
        )
        return render(request, "review/comparison/report.html", context)


class ComparisonSetupForm(forms.Form):
    """``criteria``: one per line, ``name: question`` (the question may be left out)."""

    criteria = TextField(
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Name at least one criterion."},
    )
    allow_strength = forms.BooleanField(required=False)
    n_way = forms.ChoiceField(choices=NWayMode.choices, initial=NWayMode.BEST)

    def clean_criteria(self) -> list[dict[str, str]]:
        rows = []
        for line in self.cleaned_data["criteria"].splitlines():
            if not line.strip():
                continue
            name, _, question = line.partition(":")
            rows.append({"name": name.strip(), "question": question.strip()})
        if not rows:
            raise forms.ValidationError("Name at least one criterion.")
        if len(rows) > services.MAX_CRITERIA:
            raise forms.ValidationError(f"At most {services.MAX_CRITERIA} criteria.")
        for row in rows:
            if not row["name"] or len(row["name"]) > 100:
                raise forms.ValidationError("Each criterion has a name of 1 to 100 characters.")
            if len(row["question"]) > 500:
                raise forms.ValidationError("A question has at most 500 characters.")
        names = [r["name"] for r in rows]
        if len(set(names)) != len(names):
            raise forms.ValidationError("Criteria names repeat.")
        return rows

    @staticmethod
    def initial_of(setup: Any) -> dict[str, Any]:
        if setup is None:
            return {"criteria": "helpfulness: Which answer helps more?", "n_way": NWayMode.BEST}
        lines = [
            f"{c['name']}: {c['question']}" if c.get("question") else c["name"]
            for c in setup.criteria
        ]
        return {
            "criteria": "\n".join(lines),
            "allow_strength": setup.allow_strength,
            "n_way": setup.n_way,
        }


class ComparisonFillForm(forms.Form):
    """Where the items come from: experiments (their ids) or traces sharing a metadata
    key (the traces' ids, one per line, or none for the project's latest)."""

    source = forms.ChoiceField(
        choices=[
            ("experiments", "Experiments on the same dataset"),
            ("traces", "Traces sharing a metadata key"),
        ]
    )
    experiment_ids = TextField(required=False, max_length=1000)
    group_by = TextField(required=False, max_length=100)
    trace_ids = TextField(
        required=False, max_length=200_000, widget=forms.Textarea(attrs={"rows": 3})
    )
    priority = WholeNumberField(
        required=False, min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, initial=0
    )

    def clean_experiment_ids(self) -> list[int]:
        words = [w for w in re.split(r"[\s,]+", self.cleaned_data["experiment_ids"]) if w]
        if any(not w.isdigit() or len(w) > 18 for w in words):
            raise forms.ValidationError("Experiment ids are whole numbers, separated by commas.")
        return list(dict.fromkeys(int(w) for w in words))

    def clean_trace_ids(self) -> list[str]:
        ids = [w.strip() for w in self.cleaned_data["trace_ids"].splitlines() if w.strip()]
        if any(len(i) > 255 for i in ids):
            raise forms.ValidationError("A trace id has at most 255 characters.")
        return list(dict.fromkeys(ids))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") == "experiments":
            ids = data.get("experiment_ids")
            if ids is not None and not 2 <= len(ids) <= MAX_OUTPUTS:
                self.add_error("experiment_ids", f"Name 2 to {MAX_OUTPUTS} experiments.")
        elif data.get("source") == "traces":
            if not data.get("group_by"):
                self.add_error("group_by", "Name the metadata key the traces differ by.")
            ids = data.get("trace_ids")
            if ids and len(ids) < 2:
                self.add_error("trace_ids", "Name two or more traces, or none.")
        return data

    def fill(self) -> dict[str, Any]:
        data = self.cleaned_data
        priority = data.get("priority") or 0
        if data["source"] == "experiments":
            return {"experiment_ids": data["experiment_ids"], "priority": priority}
        return {
            "group_by": data["group_by"],
            "trace_external_ids": data["trace_ids"],
            "priority": priority,
        }


# A service's field, as the fill form names it.
FILL_FORM_NAME = {"trace_external_ids": "trace_ids", "comparison_ids": "source"}


class ComparisonActionForm(forms.Form):
    """Which of the page's two forms was sent; anything else is the questions' form."""

    action = forms.ChoiceField(choices=[("setup", "setup"), ("fill", "fill")])

    def fill_asked(self) -> bool:
        return self.is_valid() and self.cleaned_data["action"] == "fill"


class ComparisonSetupView(ReviewProjectPage):
    """``GET`` shows both forms; ``POST`` with ``action=setup`` saves the questions,
    with ``action=fill`` adds comparison items."""

    allowed_roles = MANAGE_ROLES

    def queue(self, queue_pk: int) -> ReviewQueue:
        queue = ReviewQueue.objects.filter(project=self.project, pk=queue_pk).first()
        if queue is None:
            raise Http404
        return queue

    def page(
        self,
        queue: ReviewQueue,
        setup_form: ComparisonSetupForm | None = None,
        fill_form: ComparisonFillForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        setup = selectors.comparison_setup_of(queue)
        setup_form = setup_form or ComparisonSetupForm(
            initial=ComparisonSetupForm.initial_of(setup)
        )
        fill_form = fill_form or ComparisonFillForm(
            initial={"source": "experiments", "priority": 0}
        )
        errors = [
            *(form_error_lines(setup_form) if setup_form.is_bound else []),
            *(form_error_lines(fill_form) if fill_form.is_bound else []),
        ]
        context = self.context(
            queue=queue,
            setup=setup,
            setup_form=setup_form,
            fill_form=fill_form,
            errors=errors,
            max_outputs=MAX_OUTPUTS,
        )
        return render(self.request, "review/comparison/setup.html", context, status=status)

    def get(self, request: HttpRequest, queue_pk: int, **kwargs: Any) -> HttpResponse:
        return self.page(self.queue(queue_pk))

    def post(self, request: HttpRequest, queue_pk: int, **kwargs: Any) -> HttpResponse:
        queue = self.queue(queue_pk)
        if ComparisonActionForm(request.POST).fill_asked():
            fill_form = ComparisonFillForm(request.POST)
            if fill_form.is_valid():
                try:
                    added = services.comparison_queue_fill(
                        actor=self.actor, queue=queue, **fill_form.fill()
                    )
                except DomainError as exc:
                    form_add_domain_error(fill_form, exc, fields=FILL_FORM_NAME)
                else:
                    messages.success(
                        request,
                        f"Added {len(added)} comparison item{'s' if len(added) != 1 else ''}.",
                    )
                    return redirect(self.url("lead-queue-board", queue_pk=queue.pk))
            return self.page(queue, fill_form=fill_form, status=422)
        setup_form = ComparisonSetupForm(request.POST)
        if setup_form.is_valid():
            data = setup_form.cleaned_data
            try:
                services.comparison_setup(
                    actor=self.actor,
                    queue=queue,
                    criteria=data["criteria"],
                    allow_strength=data["allow_strength"],
                    n_way=data["n_way"],
                )
            except DomainError as exc:
                form_add_domain_error(setup_form, exc)
            else:
                messages.success(request, f"Saved the comparison questions of “{queue.name}”.")
                return redirect(self.url("lead-queue-comparison", queue_pk=queue.pk))
        return self.page(queue, setup_form=setup_form, status=422)


# --- adjudication ---------------------------------------------------------------------


def adjudication_form(
    view: selectors.ComparisonForAdjudication, data: Any = None
) -> ComparisonAnswersForm:
    """The decision's form: one question per criterion, answered with the outputs'
    letters in canonical order (``a`` the first), as on the review page."""
    return ComparisonAnswersForm(
        data,
        criteria=[c["name"] for c in view.criteria],
        mode=view.mode,
        n=len(view.outputs),
        allow_strength=view.allow_strength,
    )


def adjudication_context(
    view: selectors.ComparisonForAdjudication, form: ComparisonAnswersForm | None = None
) -> dict[str, Any]:
    """What ``review/comparison/adjudicate.html`` shows: the input and the outputs side
    by side (with their systems), each criterion's question with the reviewers'
    preferences in words (a split marked), the decision's answer (as posted, else what
    the reviewers agreed on) and the decision already recorded."""
    posted = form.data if form is not None and form.is_bound else {}
    questions = []
    for index, criterion in enumerate(view.criteria):
        name = criterion["name"]
        agreed = view.agreed.get(name, {})
        value = posted.get(f"c-{index}", "") if posted else agreed.get("c", "")
        strength = posted.get(f"s-{index}", "1") if posted else agreed.get("s", "1")
        questions.append(
            {
                "index": index,
                "name": name,
                "question": criterion.get("question") or f"Which is better: {name}?",
                "value": value,
                "strength": strength,
                "errors": form.errors.get(f"c-{index}", []) if form is not None else [],
                "split": name in view.split,
                "said": [(r.reviewer, r.answers.get(name, "—")) for r in view.reviews],
                "decided": view.decided.get(name, ""),
            }
        )
    outputs = [
        {
            "letter": o.letter,
            "key": o.letter if len(view.outputs) == 2 else str(i + 1),
            "label": o.label,
            "text": as_text(o.content),
        }
        for i, o in enumerate(view.outputs)
    ]
    return {
        "comparison": view.comparison,
        "input_text": as_text(view.comparison.input),
        "outputs": outputs,
        "mode": view.mode,
        "allow_strength": view.allow_strength,
        "letters": LETTERS[: len(outputs)],
        "questions": questions,
        "reviews": view.reviews,
        "split": view.split,
        "decision": view.decision,
        "explanation": posted.get("explanation", "") if posted else "",
        "form_errors": form.non_field_errors() if form is not None else [],
    }


def adjudication_refused(form: ComparisonAnswersForm, exc: DomainError) -> None:
    """A refused decision on the form: each criterion's reason beside its question,
    the message above them."""
    details = exc.details.get("answers") if isinstance(exc.details, dict) else None
    placed = False
    if isinstance(details, dict):
        for index, name in enumerate(form.criteria):
            if name in details and f"c-{index}" in form.fields:
                form.add_error(f"c-{index}", str(details[name]))
                placed = True
    if not placed or exc.message:
        form.add_error(None, exc.message)
