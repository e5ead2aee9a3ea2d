"""My history (a reviewer's own answers, editable) and adjudication for seniors: the
list of disputed or audit-sampled items and the decision on one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl.exceptions import Conflict, DomainError
from hitl.forms import PageNumberForm
from projects.pages import OrganizationPageView
from review import selectors, services
from review.comparison import pages as comparison_pages
from review.comparison import selectors as comparison_selectors
from review.comparison import services as comparison_services
from review.models import (
    Annotation,
    ItemTarget,
    QueueItem,
)
from review.pages import reviewer_selectors as pages_selectors
from review.pages.board_selectors import item_label
from review.pages.questions import prepare_questions, saved_as_posted
from review.pages.reviewer import ReviewPageView, render_span_fragment
from review.pages.reviewer_forms import (
    AnswersForm,
    ReviewPageQueryForm,
    failure_modes_of,
)
from review.payloads import render_payload, render_text
from review.services.turns import turns_in_words

HISTORY_PAGE_SIZE = 50


class MyHistoryView(OrganizationPageView):
    """What I reviewed, newest first, with my answers; each opens to edit."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        paginator = Paginator(
            pages_selectors.my_history(membership=self.membership), HISTORY_PAGE_SIZE
        )
        page = paginator.get_page(PageNumberForm(request.GET).number())
        forms: dict[int, list[dict[str, Any]]] = {}
        rows = []
        decisions = pages_selectors.decisions_for(
            item_ids=[a.item_id for a in page.object_list], user=request.user
        )
        for annotation in page.object_list:
            queue = annotation.queue
            if queue.pk not in forms:
                forms[queue.pk] = selectors.form_for_reviewer(queue)
            rows.append(
                {
                    "annotation": annotation,
                    "answers": [
                        {"name": q["name"], "value": annotation.values.get(str(q["config_id"]))}
                        for q in forms[queue.pk]
                    ],
                    # A conversation's turn ratings, in words ("turn 2 bad: “...”").
                    "turns": turns_in_words(annotation.turns) if annotation.turns else "",
                    # The final answer a senior decided, labelled as such, with who.
                    "decisions": [
                        {
                            "by": decision.adjudicator.email,
                            "kind": decision.get_kind_display(),
                            "answers": [
                                {
                                    "name": q["name"],
                                    "value": decision.values.get(str(q["config_id"])),
                                }
                                for q in forms[queue.pk]
                            ],
                        }
                        for decision in decisions.get(annotation.item_id, [])
                    ],
                    "url": reverse(
                        "review-history-item",
                        kwargs={
                            "org_slug": self.organization.slug,
                            "project_slug": queue.project.slug,
                            "annotation_pk": annotation.pk,
                        },
                    ),
                }
            )
        context = {
            "organization": self.organization,
            "rows": rows,
            "page_obj": page,
            "skips": pages_selectors.my_skips(membership=self.membership),
        }
        return render(request, "review/history.html", context)


class HistoryItemView(ReviewPageView):
    """One of my answers: the item as I reviewed it, my answers (editable), and what the
    others said as far as the blind rule lets me see now that I have submitted.

    An edit sends the version I read; if the answer changed since (another tab, the
    API), the service refuses it (409) and the page shows both versions side by side,
    with my edit kept in the form to save over the other deliberately."""

    http_method_names = ["get", "post"]

    def load(self, annotation_pk: int) -> Annotation:
        annotation = pages_selectors.annotation_for_page(
            annotation_id=annotation_pk, user=self.request.user, project=self.project
        )
        if annotation is None:
            raise Http404
        return annotation

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, annotation_pk: int
    ) -> HttpResponse:
        return self.render_item(self.load(annotation_pk))

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, annotation_pk: int
    ) -> HttpResponse:
        annotation = self.load(annotation_pk)
        queue = annotation.queue
        answers = AnswersForm(
            request.POST, questions=selectors.form_for_reviewer(queue), with_version=True
        )
        posted = answers.posted()
        if not answers.is_valid():
            errors = answers.errors_by_question()
            return self.render_item(annotation, posted=posted, errors=errors, status=422)
        values = answers.values()
        try:
            services.annotation_update(
                actor=self.actor,
                annotation_id=annotation.pk,
                expected_version=answers.cleaned_data["version"],
                values=values,
                explanation=answers.cleaned_data["explanation"],
                expected_output=answers.expected() if queue.include_expected_output else None,
                failure_modes=answers.failure_modes_list(),
            )
        except Conflict as exc:
            current = self.load(annotation_pk)
            return self.render_item(
                current, posted=posted, conflict=exc.message, mine=values, status=409
            )
        except DomainError as exc:
            details = exc.details.get("values") if isinstance(exc.details, dict) else None
            found = dict(details) if isinstance(details, dict) else {}
            found.setdefault("__all__", exc.message)
            return self.render_item(annotation, posted=posted, errors=found, status=422)
        messages.success(request, "Your answers are saved.")
        return redirect(self.history_url(annotation))

    def render_item(
        self,
        annotation: Annotation,
        *,
        posted: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        conflict: str = "",
        mine: dict[str, Any] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        user = self.request.user
        item = annotation.item
        query = ReviewPageQueryForm(self.request.GET)
        page = pages_selectors.item_page(
            item=item, user=user, turn=query.turn_id(), span=query.span_id(), lazy=True
        )
        errors = errors or {}
        saved = saved_as_posted(page["form"], annotation)
        # After a conflict the form keeps my edit (to save over the other deliberately),
        # and the version becomes the one now saved.
        shown = posted if posted is not None else saved
        prepare_questions(page["form"], posted=shown, errors=errors)
        picked = set(shown.get("picked_failure_modes", []))
        known = pages_selectors.known_failure_modes(queue=annotation.queue, user=user)
        comparison = []
        if conflict:
            for q in page["form"]:
                key = str(q["config_id"])
                comparison.append(
                    {
                        "name": q["name"],
                        "mine": (mine or {}).get(key),
                        "saved": annotation.values.get(key),
                        "differs": (mine or {}).get(key) != annotation.values.get(key),
                    }
                )
        context = {
            "organization": self.organization,
            "project": self.project,
            "annotation": annotation,
            "queue": annotation.queue,
            "item": item,
            "item_label": item_label(item),
            **self.target_context(page),
            "errors": errors,
            "general_error": errors.get("__all__", ""),
            "explanation": shown.get("explanation", ""),
            "expected_output": shown.get("expected_output", ""),
            "failure_modes": shown.get("failure_modes", ""),
            "failure_mode_choices": [
                {"tag": tag, "checked": tag in picked} for tag in dict.fromkeys([*known, *picked])
            ],
            "conflict": conflict,
            "comparison": comparison,
            "mine_explanation": shown.get("explanation", ""),
            "mine_failure_modes": ", ".join(failure_modes_of(shown)),
            "my_turns": turns_in_words(annotation.turns),
            "my_work_url": self.my_work_url(),
            "history_list_url": reverse(
                "review-history", kwargs={"org_slug": self.organization.slug}
            ),
            "span_detail_url": reverse(
                "review-history-span", kwargs=self._kwargs(annotation_pk=annotation.pk)
            ),
        }
        context["item_comments"], context["hidden_comments"] = pages_selectors.item_comments(
            item_id=item.pk, user=user
        )
        return render(self.request, "review/history_item.html", context, status=status)


class AdjudicationListView(OrganizationPageView):
    """Items awaiting a decision in the queues I adjudicate (senior, or manager)."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        items = list(pages_selectors.awaiting_adjudication(membership=self.membership)[:200])
        rows = [
            {
                "item": item,
                "label": item_label(item),
                "url": reverse(
                    "review-adjudicate",
                    kwargs={
                        "org_slug": self.organization.slug,
                        "project_slug": item.queue.project.slug,
                        "item_pk": item.pk,
                    },
                ),
            }
            for item in items
        ]
        context = {"organization": self.organization, "rows": rows}
        return render(request, "review/adjudication_list.html", context)


class AdjudicateView(ReviewPageView):
    """A disputed (or audit-sampled) item: the reviews side by side with their
    explanations, the questions that disagree highlighted, and the final answer written
    with the review page's keyboard; submitted through ``services.item_adjudicate``. A
    comparison item shows its input and outputs side by side, the reviewers'
    preferences and the final preference per criterion (``review.comparison.pages``),
    submitted through ``comparison_adjudicate``."""

    http_method_names = ["get", "post"]

    def load(self, item_pk: int) -> QueueItem:
        item = pages_selectors.item_for_adjudication(
            item_id=item_pk, membership=self.membership, project=self.project
        )
        if item is None:
            raise Http404
        return item

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, item_pk: int
    ) -> HttpResponse:
        item = self.load(item_pk)
        if item.target_type == ItemTarget.COMPARISON:
            return self.render_comparison(item)
        return self.render_item(item)

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, item_pk: int
    ) -> HttpResponse:
        item = self.load(item_pk)
        if item.target_type == ItemTarget.COMPARISON:
            return self.decide_comparison(item)
        answers = AnswersForm(request.POST, questions=selectors.form_for_reviewer(item.queue))
        posted = answers.posted()
        if not answers.is_valid():
            errors = answers.errors_by_question()
            return self.render_item(item, posted=posted, errors=errors, status=422)
        try:
            services.item_adjudicate(
                actor=self.actor,
                item=item,
                membership=self.membership,
                values={k: v for k, v in answers.values().items() if v is not None},
                explanation=answers.cleaned_data["explanation"],
                expected_output=(
                    answers.expected() if item.queue.include_expected_output else None
                ),
            )
        except DomainError as exc:
            details = exc.details.get("values") if isinstance(exc.details, dict) else None
            found = dict(details) if isinstance(details, dict) else {}
            found.setdefault("__all__", exc.message)
            return self.render_item(item, posted=posted, errors=found, status=422)
        return self.decided(item)

    def decided(self, item: QueueItem) -> HttpResponse:
        """After a decision: the next item awaiting one here, else the list."""
        following = (
            pages_selectors.awaiting_adjudication(membership=self.membership)
            .filter(project=self.project)
            .exclude(pk=item.pk)
            .first()
        )
        if following is not None:
            messages.success(self.request, "Decision saved. Here is the next item awaiting one.")
            return redirect(self.adjudicate_url(following))
        messages.success(self.request, "Decision saved. Nothing else awaits a decision here.")
        return redirect(reverse("review-adjudication", kwargs={"org_slug": self.organization.slug}))

    def comparison_view(self, item: QueueItem) -> comparison_selectors.ComparisonForAdjudication:
        view = comparison_selectors.comparison_for_adjudication(item, viewer=self.request.user)
        if view is None:
            raise Http404
        return view

    def render_comparison(
        self,
        item: QueueItem,
        form: comparison_pages.ComparisonAnswersForm | None = None,
        *,
        status: int = 200,
    ) -> HttpResponse:
        """A comparison item: the input and outputs side by side, the reviewers'
        preferences, and the final preference per criterion."""
        context = {
            "organization": self.organization,
            "project": self.project,
            "queue": item.queue,
            "item": item,
            "item_label": item_label(item),
            "awaits_decision": pages_selectors.awaits_decision(item),
            "list_url": reverse("review-adjudication", kwargs={"org_slug": self.organization.slug}),
            **comparison_pages.adjudication_context(self.comparison_view(item), form),
        }
        return render(self.request, "review/comparison/adjudicate.html", context, status=status)

    def decide_comparison(self, item: QueueItem) -> HttpResponse:
        """The final preference per criterion (``comparison_adjudicate``); refused, each
        criterion's reason beside its question (422)."""
        form = comparison_pages.adjudication_form(self.comparison_view(item), self.request.POST)
        if not form.is_valid():
            return self.render_comparison(item, form, status=422)
        try:
            comparison_services.comparison_adjudicate(
                actor=self.actor,
                item=item,
                membership=self.membership,
                answers=form.answers(),
                explanation=form.cleaned_data["explanation"],
            )
        except DomainError as exc:
            comparison_pages.adjudication_refused(form, exc)
            return self.render_comparison(item, form, status=422)
        return self.decided(item)

    def render_item(
        self,
        item: QueueItem,
        *,
        posted: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        user = self.request.user
        query = ReviewPageQueryForm(self.request.GET)
        page = pages_selectors.item_page(
            item=item, user=user, turn=query.turn_id(), span=query.span_id(), lazy=True
        )
        posted = posted or {}
        errors = errors or {}
        prepare_questions(page["form"], posted=posted, errors=errors)
        side = pages_selectors.reviews_side_by_side(item=item, user=user)
        reviews = [
            {
                "annotation": a,
                "explanation_html": render_text(a.explanation) if a.explanation else "",
                "expected_html": (
                    render_payload(a.expected_output) if a.expected_output is not None else ""
                ),
                "turns": turns_in_words(a.turns) if a.turns else "",
            }
            for a in side["annotations"]
        ]
        context = {
            "organization": self.organization,
            "project": self.project,
            "queue": item.queue,
            "item": item,
            "item_label": item_label(item),
            **self.target_context(page),
            "reviews": reviews,
            "rows": side["rows"],
            "disagreement": side["disagreement"],
            "awaits_decision": pages_selectors.awaits_decision(item),
            "errors": errors,
            "general_error": errors.get("__all__", ""),
            "explanation": posted.get("explanation", ""),
            "expected_output": posted.get("expected_output", ""),
            "list_url": reverse("review-adjudication", kwargs={"org_slug": self.organization.slug}),
            "span_detail_url": reverse(
                "review-adjudicate-span", kwargs=self._kwargs(item_pk=item.pk)
            ),
        }
        return render(self.request, "review/adjudicate.html", context, status=status)


# --- one span of a long trace, loaded when it is selected -----------------------------------


class SpanFragment(ReviewPageView):
    """GET ``?span=<span id>`` (and ``&turn=`` on a thread): one span of the page's item
    as the page shows it when it is selected, the fragment ``review.js`` puts beside the
    span tree of a trace longer than ``SPAN_BODIES_INLINE``. The page's own ``load``
    admits the caller (404 otherwise, as the page) and its own selector builds the span
    (``item_span_detail``: ``item_page`` with that span selected), so the blind rule is
    the page's. A span the trace does not have is 404. Signed out: 401 with where to
    sign in, as the review page's other calls."""

    http_method_names = ["get"]

    def page_path(self) -> str:
        raise NotImplementedError

    def handle_no_permission(self) -> HttpResponse:
        if self.request.user.is_authenticated:
            return super().handle_no_permission()
        login = redirect_to_login(self.page_path(), self.get_login_url())
        return JsonResponse({"signed_out": True, "login_url": login.url}, status=401)

    def span_of(self, item: QueueItem) -> HttpResponse:
        query = ReviewPageQueryForm(self.request.GET)
        span_id = query.span_id()
        found = (
            pages_selectors.item_span_detail(
                item=item, user=self.request.user, span_id=span_id, turn=query.turn_id()
            )
            if span_id
            else None
        )
        if found is None:
            raise Http404
        return render_span_fragment(self.request, found)


class HistorySpanView(SpanFragment, HistoryItemView):
    """One span of the item of one of my answers (My history's item page)."""

    def page_path(self) -> str:
        return reverse("review-history-item", kwargs=self.kwargs)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, annotation_pk: int
    ) -> HttpResponse:
        return self.span_of(self.load(annotation_pk).item)


class AdjudicateSpanView(SpanFragment, AdjudicateView):
    """One span of an item in a queue I adjudicate (the decision page)."""

    def page_path(self) -> str:
        return reverse("review-adjudicate", kwargs=self.kwargs)

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, item_pk: int
    ) -> HttpResponse:
        item = self.load(item_pk)
        if item.target_type == ItemTarget.COMPARISON:
            raise Http404
        return self.span_of(item)
