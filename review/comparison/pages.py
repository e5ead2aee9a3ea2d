"""The comparison review page: the input, the outputs side by side in the lease's order
(with a word diff on demand), one question per criterion answered from the keyboard
(``a``, ``b``, ``=`` for two outputs; a letter or digit for the best of N; letters in
order for a ranking), then submit and on to the next item of the queue, whatever its
kind. Its script is ``static/js/compare.js``.

The review page of the core (``review.pages.reviewer``) sends a lease on a comparison
item here (:func:`compare_url`)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from hitl.exceptions import DomainError
from projects.models import MANAGE_ROLES, REVIEW_ROLES, Role
from review import services as core_services
from review.comparison import report, selectors, services
from review.comparison.models import MAX_OUTPUTS
from review.comparison.ordering import LETTERS
from review.models import Assignment, AssignmentState, ItemTarget, QueueItem, ReviewQueue
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
