"""The reviewer's pages: My work, focused review one item at a time, My history (my
answers, editable), and adjudication for seniors.

Thin views: the organization comes from the URL and the membership
(``projects.pages.OrganizationPageView``), the project from the URL under the one
visibility rule (``projects.pages.ProjectPageView``); reads are
``review.pages.reviewer_selectors``, writes are ``review.services`` acting as the signed-in person
with source "web". What anyone sees of others' answers is decided by
``review.visibility`` through those selectors; no view adds a rule of its own.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from hitl.exceptions import Conflict, DomainError
from hitl.forms import PageNumberForm
from projects.models import MANAGE_ROLES
from projects.pages import OrganizationPageView, ProjectPageView
from review import selectors, services
from review.models import (
    Annotation,
    Assignment,
    AssignmentState,
    QueueItem,
    ReviewDraft,
    ReviewQueue,
)
from review.pages import reviewer_selectors as pages_selectors
from review.pages.reviewer_forms import (
    AnswersForm,
    ConflictChoiceForm,
    DraftForm,
    ReviewPageQueryForm,
    SkipForm,
    SpanCommentForm,
    failure_modes_of,
)
from review.payloads import render_payload, render_text
from review.services import drafts as draft_services
from review.services.claims import assignment_renew
from traces.models import ScoreDataType

# The lease timer turns into a warning this long before the lease ends.
LEASE_WARNING_SECONDS = 120
# The review page's script sends this header when it holds the next item's page already
# (prefetched): a successful submit or skip then answers 204 naming the next item's URL
# instead of redirecting to it, and the script shows the page it holds.
BUFFERED_HEADER = "X-Review-Buffered"
NEXT_HEADER = "X-Review-Next"
PREVIOUS_HEADER = "X-Review-Previous"
HISTORY_PAGE_SIZE = 50
# Session keys: a refused submit's errors, waiting for the item's page the browser is
# redirected to; where each lease's submit (or skip) went, for the same form sent again.
RETRY_KEY = "review-retry"
DONE_KEY = "review-done"
MAX_REMEMBERED = 20


class MyWorkView(OrganizationPageView):
    """The queues I review in, what waits for me, my pace; managers also see the team."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        context = {
            "organization": self.organization,
            "membership": self.membership,
            **pages_selectors.my_work(membership=self.membership),
            "team": pages_selectors.team_work(membership=self.membership),
            "is_manager": self.membership.role in MANAGE_ROLES,
            "awaiting_decision": pages_selectors.awaiting_adjudication(
                membership=self.membership
            ).count(),
        }
        return render(request, "review/my_work.html", context)


class ReviewPageView(ProjectPageView):
    """A review page in a project: links between the pages and "open the next item"."""

    def _kwargs(self, **more: Any) -> dict[str, Any]:
        return {"org_slug": self.organization.slug, "project_slug": self.project.slug, **more}

    def review_url(self, assignment: Assignment) -> str:
        return reverse("review-item", kwargs=self._kwargs(assignment_pk=assignment.pk))

    def history_url(self, annotation: Annotation) -> str:
        return reverse("review-history-item", kwargs=self._kwargs(annotation_pk=annotation.pk))

    def adjudicate_url(self, item: QueueItem) -> str:
        return reverse("review-adjudicate", kwargs=self._kwargs(item_pk=item.pk))

    def my_work_url(self) -> str:
        return reverse("review-my-work", kwargs={"org_slug": self.organization.slug})

    def next_assignment(self, queue: ReviewQueue) -> Assignment | None:
        """My next item of ``queue``: my oldest live lease (a prefetched one, or one I
        left), else a new claim. Raises ``DomainError`` when I may not claim."""
        assignment = pages_selectors.live_assignment(queue=queue, user=self.request.user)
        if assignment is None:
            assignment = services.queue_claim_next(actor=self.actor, queue=queue)
        return assignment

    def claim_and_open(self, queue: ReviewQueue) -> HttpResponse:
        """Opens the next item of ``queue`` for me (my live lease first, if I hold one)."""
        try:
            assignment = self.next_assignment(queue)
        except DomainError as exc:
            messages.error(self.request, exc.message)
            return redirect(self.my_work_url())
        if assignment is None:
            messages.success(self.request, f"Nothing is waiting for you in “{queue.name}”.")
            return redirect(self.my_work_url())
        return redirect(self.review_url(assignment))

    def target_context(self, page: dict[str, Any]) -> dict[str, Any]:
        """The item's trace, thread or dataset item rendered for people (payloads to
        HTML; a dataset item's expected output and metadata only when the blind rule
        lets the reader see them)."""
        trace = page["trace"]
        dataset_item = page.get("dataset_item")
        if dataset_item is not None:
            dataset_item = {
                **dataset_item,
                "input_html": render_payload(dataset_item["input"]),
                "expected_html": (
                    render_payload(dataset_item["expected_output"])
                    if dataset_item["expected_output"] is not None
                    else ""
                ),
                "metadata_html": (
                    render_payload(dataset_item["metadata"]) if dataset_item["metadata"] else ""
                ),
            }
        for span in page["spans"]:
            span["input_html"] = render_payload(span["input"])
            span["output_html"] = render_payload(span["output"])
        turns = [
            {
                "trace": turn,
                "input_html": render_payload(turn.input),
                "output_html": render_payload(turn.output),
                "selected": trace is not None and turn.external_id == trace["trace_id"],
            }
            for turn in page["turns"]
        ]
        return {
            "page": page,
            "turns": turns,
            "trace": trace,
            "dataset_item": dataset_item,
            "trace_input_html": render_payload(trace["input"]) if trace else "",
            "trace_output_html": render_payload(trace["output"]) if trace else "",
            "others_html": [
                {
                    "email": a["reviewer"]["email"],
                    "values": a["values"],
                    "failure_modes": a["failure_modes"],
                    "explanation_html": render_text(a["explanation"]) if a["explanation"] else "",
                }
                for a in page["other_annotations"]
            ],
        }


class QueueStartView(ReviewPageView):
    """POST: claim the next item of a queue (or resume my lease) and open it. A GET (a
    reload, a bookmark) goes to My work instead of answering 405."""

    http_method_names = ["get", "post"]

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        messages.info(request, "Start reviewing from here.")
        return redirect(self.my_work_url())

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, queue_pk: int
    ) -> HttpResponse:
        queue = ReviewQueue.objects.filter(
            project=self.project, pk=queue_pk, archived_at__isnull=True
        ).first()
        if queue is None:
            raise Http404
        return self.claim_and_open(queue)


class ReviewItemView(ReviewPageView):
    """One item, one lease: the trace beside the queue's form, with my draft restored.
    GET shows it; a lease that ran out but whose item nobody took shows it too (a submit
    takes it again); a lease that ended otherwise shows why, with my draft to copy; an
    item I submitted shows "already submitted", or, when another tab sent other answers
    for it, both answers side by side to choose from.

    Post/Redirect/Get: every POST under a lease answers a redirect (or 204 to the
    page's script), never a page, so the address bar always shows a page that a reload,
    Back or Forward opens again. A GET on a POST-only address redirects to the item."""

    http_method_names = ["get"]
    assignment: Assignment
    # Answers with JSON (the page's script calls it): a signed-out caller gets 401, not
    # the sign-in page.
    json_endpoint = False

    def item_path(self) -> str:
        return reverse(
            "review-item",
            kwargs={
                "org_slug": self.kwargs["org_slug"],
                "project_slug": self.kwargs["project_slug"],
                "assignment_pk": self.kwargs["assignment_pk"],
            },
        )

    def handle_no_permission(self) -> HttpResponse:
        """Signed out (the session ended): back to the item's page after signing in,
        never to a POST-only address; the script's calls get 401."""
        if self.request.user.is_authenticated:
            return super().handle_no_permission()
        login = redirect_to_login(self.item_path(), self.get_login_url())
        if self.json_endpoint:
            return JsonResponse({"signed_out": True, "login_url": login.url}, status=401)
        if self.request.method == "POST":
            messages.info(
                self.request,
                "Your session ended. Sign in again to go back to your item: "
                "what you wrote on it is kept.",
            )
        return login

    def load(self, assignment_pk: int) -> Assignment:
        assignment = pages_selectors.assignment_for_page(
            assignment_id=assignment_pk, user=self.request.user, project=self.project
        )
        if assignment is None:
            raise Http404
        self.assignment = assignment
        return assignment

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        draft = pages_selectors.draft_of(assignment=assignment)
        if assignment.state == AssignmentState.SUBMITTED:
            if draft is not None and draft.conflict:
                return self.render_conflict(assignment, draft)
            return self.render_ended(assignment)
        if pages_selectors.lease_is_live(assignment):
            return self.render_review(assignment, draft=draft)
        if pages_selectors.lease_retakeable(assignment):
            return self.render_review(assignment, draft=draft, lapsed=True)
        return self.render_ended(assignment, draft=draft)

    # --- what a refused or repeated POST leaves for the page it redirects to -----------

    def draft_from(self, data: Any) -> dict[str, Any] | None:
        """The review form as posted, typed by ``DraftForm`` (None when it is not one)."""
        form = selectors.form_for_reviewer(self.assignment.queue)
        draft_form = DraftForm(data, config_ids=[q["config_id"] for q in form])
        return draft_form.as_draft() if draft_form.is_valid() else None

    def keep_draft(self, data: Any, *, conflict: bool = False) -> None:
        """Keeps what was posted as my draft on the item (best effort: a draft the
        service refuses is simply not kept)."""
        draft = self.draft_from(data)
        if draft is None:
            return
        with contextlib.suppress(DomainError):
            draft_services.draft_save(
                actor=self.actor, assignment_id=self.assignment.pk, data=draft, conflict=conflict
            )

    def retry_with(self, errors: dict[str, str]) -> HttpResponse:
        """A refused submit or skip: its errors wait in the session for the item's page
        (the answers are in the draft), and the browser goes there."""
        retry = self.request.session.get(RETRY_KEY, {})
        retry = {k: v for k, v in retry.items() if k != str(self.assignment.pk)}
        retry[str(self.assignment.pk)] = errors
        self.request.session[RETRY_KEY] = dict(list(retry.items())[-MAX_REMEMBERED:])
        return redirect(self.review_url(self.assignment))

    def remember_done(self, response: HttpResponse) -> HttpResponse:
        """Notes where this lease's submit (or skip) went, so the same form sent again
        (a double Ctrl+Enter, a resent POST) goes there too, applied nowhere."""
        target = response.get(NEXT_HEADER) or response.get("Location")
        if target:
            done = self.request.session.get(DONE_KEY, {})
            done = {k: v for k, v in done.items() if k != str(self.assignment.pk)}
            done[str(self.assignment.pk)] = target
            self.request.session[DONE_KEY] = dict(list(done.items())[-MAX_REMEMBERED:])
        return response

    def where_it_went(self) -> HttpResponse:
        """The same form again, after it was applied: where the first one went (or, if
        this browser does not know, my next item as usual)."""
        target = self.request.session.get(DONE_KEY, {}).get(str(self.assignment.pk))
        if target:
            return redirect(target)
        return self.claim_and_open(self.assignment.queue)

    # --- pages ------------------------------------------------------------------------

    def render_ended(
        self, assignment: Assignment, *, draft: ReviewDraft | None = None
    ) -> HttpResponse:
        expired = assignment.state == AssignmentState.EXPIRED or (
            assignment.state == AssignmentState.LEASED and assignment.expires_at <= timezone.now()
        )
        annotation = pages_selectors.annotation_of(assignment=assignment)
        current = pages_selectors.live_assignment(queue=assignment.queue, user=self.request.user)
        context = {
            "organization": self.organization,
            "project": self.project,
            "assignment": assignment,
            "queue": assignment.queue,
            "expired": expired,
            "history_url": self.history_url(annotation) if annotation else "",
            "current_url": self.review_url(current) if current else "",
            "draft_notes": draft_as_text(selectors.form_for_reviewer(assignment.queue), draft),
        }
        return render(self.request, "review/lease_ended.html", context)

    def render_conflict(self, assignment: Assignment, draft: ReviewDraft) -> HttpResponse:
        """Another tab sent other answers for this submitted item: the stored answer
        beside the ones sent, to keep one or the other."""
        annotation = pages_selectors.annotation_of(assignment=assignment)
        if annotation is None:
            return self.render_ended(assignment)
        form = selectors.form_for_reviewer(assignment.queue)
        stored = saved_as_posted(form, annotation)
        mine = draft.data
        rows = [
            {
                "name": q["name"],
                "stored": stored.get(f"q-{q['config_id']}", ""),
                "mine": str(mine.get(f"q-{q['config_id']}", "")).strip(),
            }
            for q in form
        ]
        rows.append(
            {
                "name": "Explanation",
                "stored": annotation.explanation,
                "mine": str(mine.get("explanation", "")).strip(),
            }
        )
        rows.append(
            {
                "name": "Failure modes",
                "stored": ", ".join(annotation.failure_modes),
                "mine": ", ".join(failure_modes_of(mine)),
            }
        )
        if assignment.queue.include_expected_output:
            rows.append(
                {
                    "name": "Expected output",
                    "stored": stored.get("expected_output", ""),
                    "mine": str(mine.get("expected_output", "")).strip(),
                }
            )
        for row in rows:
            row["differs"] = row["stored"] != row["mine"]
        context = {
            "organization": self.organization,
            "project": self.project,
            "assignment": assignment,
            "queue": assignment.queue,
            "annotation": annotation,
            "rows": rows,
            "resolve_url": reverse(
                "review-resolve", kwargs=self._kwargs(assignment_pk=assignment.pk)
            ),
            "history_url": self.history_url(annotation),
        }
        return render(self.request, "review/conflict.html", context)

    def render_review(
        self,
        assignment: Assignment,
        *,
        draft: ReviewDraft | None = None,
        lapsed: bool = False,
    ) -> HttpResponse:
        user = self.request.user
        query = ReviewPageQueryForm(self.request.GET)
        page = pages_selectors.review_page(assignment=assignment, user=user, turn=query.turn_id())
        buffered = query.is_buffered()
        errors: dict[str, str] = {}
        if not buffered:
            retry = self.request.session.get(RETRY_KEY, {})
            if str(assignment.pk) in retry:
                errors = retry.pop(str(assignment.pk))
                self.request.session[RETRY_KEY] = retry
        posted: dict[str, Any] = dict(draft.data) if draft is not None else {}
        if "skip" in errors:
            posted["skip_open"] = "1"
        queue = assignment.queue
        trace = page["trace"]
        prepare_questions(page["form"], posted=posted, errors=errors)
        expected_default = ""
        if queue.include_expected_output and trace is not None:
            expected_default = as_editable(trace["output"])
        elif queue.include_expected_output and page["dataset_item"] is not None:
            # The item's current expected output, unless the blind rule hides it.
            expected_default = as_editable(page["dataset_item"]["expected_output"])
        previous = pages_selectors.last_submitted(user=user, queue=queue)
        picked = set(posted.get("picked_failure_modes", []))
        kwargs = self._kwargs(assignment_pk=assignment.pk)
        known = pages_selectors.known_failure_modes(queue=queue, user=user)
        context = {
            "organization": self.organization,
            "project": self.project,
            "assignment": assignment,
            "queue": queue,
            "item": assignment.item,
            **self.target_context(page),
            "errors": errors,
            "general_error": errors.get("__all__", ""),
            "posted": posted,
            "explanation": posted.get("explanation", ""),
            "expected_output": posted.get("expected_output", expected_default),
            "comment": posted.get("comment", ""),
            "failure_modes": posted.get("failure_modes", ""),
            "failure_mode_choices": [
                {"tag": tag, "checked": tag in picked} for tag in dict.fromkeys([*known, *picked])
            ],
            "lease_warning_seconds": LEASE_WARNING_SECONDS,
            "progress": pages_selectors.queue_progress(
                queue=queue, membership=self.membership, assignment=assignment
            ),
            "lapsed": lapsed,
            "draft": draft,
            "draft_saved_at": int(draft.updated_at.timestamp() * 1000) if draft else 0,
            "my_work_url": self.my_work_url(),
            "previous_url": self.history_url(previous) if previous else "",
            "prefetch_url": reverse("review-prefetch", kwargs=kwargs),
            "draft_url": reverse("review-draft", kwargs=kwargs),
            "renew_url": reverse("review-renew", kwargs=kwargs),
            "span_comment_url": reverse("review-span-comment", kwargs=kwargs),
            # Rendered ahead for the script's buffer: flash messages stay for a page the
            # reviewer actually opens.
            "buffered": buffered,
        }
        return render(self.request, "review/review.html", context)

    def after_done(self, assignment: Assignment) -> HttpResponse | None:
        """When the page's script holds the next item's page (prefetched) and that item
        is still my next one, a 204 naming it; otherwise None (redirect as usual)."""
        buffered = self.request.headers.get(BUFFERED_HEADER, "")
        if not buffered.isdigit():
            return None
        try:
            upcoming = self.next_assignment(assignment.queue)
        except DomainError:
            return None
        if upcoming is None or upcoming.pk != int(buffered):
            return None
        response = HttpResponse(status=204)
        response[NEXT_HEADER] = self.review_url(upcoming)
        previous = pages_selectors.last_submitted(user=self.request.user, queue=assignment.queue)
        if previous is not None:
            response[PREVIOUS_HEADER] = self.history_url(previous)
        return response


class ReviewActionView(ReviewItemView):
    """A POST-only address under a lease: a GET (a reload, Back into it, a bookmark)
    redirects to the item's page with a word, never 405."""

    http_method_names = ["get", "post"]

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        messages.info(request, "That address only sends a form; here is the item.")
        return redirect(self.review_url(assignment))


class ReviewSubmitView(ReviewActionView):
    """POST: submit my answers (and an optional comment), then open the next item.

    Refused answers come back on the item's page (kept as my draft). A lease that ran
    out is accepted if nobody else took the item; if someone did, the item's page keeps
    my draft to copy. The same form sent again once it was applied (same lease, same
    answers) goes where the first went; other answers for an item I already submitted
    (another tab) are kept and shown beside the stored ones to choose from."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        queue = assignment.queue
        answers = AnswersForm(request.POST, questions=selectors.form_for_reviewer(queue))
        valid = answers.is_valid()
        if assignment.state == AssignmentState.SUBMITTED:
            return self.submitted_again(assignment, answers if valid else None)
        if assignment.state not in (AssignmentState.LEASED, AssignmentState.EXPIRED):
            self.keep_draft(request.POST)
            return redirect(self.review_url(assignment))
        if not valid:
            self.keep_draft(request.POST)
            return self.retry_with(answers.errors_by_question())
        try:
            services.assignment_submit(
                actor=self.actor,
                assignment_id=assignment.pk,
                values={k: v for k, v in answers.values().items() if v is not None},
                explanation=answers.cleaned_data["explanation"],
                expected_output=answers.expected(),
                failure_modes=answers.failure_modes_list(),
                accept_lapsed=True,
            )
        except Conflict:
            # Taken by another reviewer, or back by a manager: the page says which,
            # with what I wrote to copy.
            self.keep_draft(request.POST)
            return redirect(self.review_url(assignment))
        except DomainError as exc:
            details = exc.details.get("values") if isinstance(exc.details, dict) else None
            found = dict(details) if isinstance(details, dict) else {}
            found.setdefault("__all__", exc.message)
            self.keep_draft(request.POST)
            return self.retry_with(found)
        comment = answers.cleaned_data["comment"]
        if comment:
            services.comment_create(
                actor=self.actor, project=self.project, body=comment, item_id=assignment.item_id
            )
        fast = self.after_done(assignment)
        if fast is not None:
            return self.remember_done(fast)
        messages.success(request, "Saved. Here is the next item.")
        return self.remember_done(self.claim_and_open(queue))

    def submitted_again(self, assignment: Assignment, answers: AnswersForm | None) -> HttpResponse:
        """The form sent for an item already submitted (``answers`` None when refused)."""
        annotation = pages_selectors.annotation_of(assignment=assignment)
        if annotation is not None and answers is not None and same_answers(annotation, answers):
            return self.where_it_went()
        self.keep_draft(self.request.POST, conflict=True)
        return redirect(self.review_url(assignment))


class ReviewSkipView(ReviewActionView):
    """POST: skip with a reason, then open the next item."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        if assignment.state == AssignmentState.SKIPPED:
            return self.where_it_went()
        if assignment.state in (AssignmentState.LEASED, AssignmentState.EXPIRED) and not (
            pages_selectors.lease_is_live(assignment)
        ):
            # The lease ran out: the item goes back to the queue anyway; on to the next.
            messages.success(request, "Skipped. Here is the next item.")
            return self.claim_and_open(assignment.queue)
        if not pages_selectors.lease_is_live(assignment):
            return redirect(self.review_url(assignment))
        skip = SkipForm(request.POST)
        if not skip.is_valid():
            return self.retry_with({"skip": skip.error_text()})
        try:
            services.assignment_skip(
                actor=self.actor, assignment_id=assignment.pk, reason=skip.cleaned_data["reason"]
            )
        except Conflict:
            return redirect(self.review_url(assignment))
        fast = self.after_done(assignment)
        if fast is not None:
            return self.remember_done(fast)
        messages.success(request, "Skipped. Here is the next item.")
        return self.remember_done(self.claim_and_open(assignment.queue))


class ReviewReleaseView(ReviewActionView):
    """POST: give the item back to the queue, with the next one if it was fetched ahead,
    and stop reviewing."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        released = 0
        leases = [assignment] if pages_selectors.lease_is_live(assignment) else []
        leases += pages_selectors.live_assignments(
            queue=assignment.queue, user=request.user, exclude_id=assignment.pk
        )
        for lease in leases:
            try:
                services.assignment_release(actor=self.actor, assignment_id=lease.pk)
                released += 1
            except Conflict:
                pass
        if released:
            messages.success(request, "Released: the item went back to the queue.")
        return redirect(self.my_work_url())


class ReviewResolveView(ReviewActionView):
    """POST: after another tab sent other answers for an item I submitted, keep the
    stored answer (the other answers are dropped) or replace it with them (an edit of
    my annotation at the version shown, with history), then go on to my next item."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        choice = ConflictChoiceForm(request.POST)
        draft = pages_selectors.draft_of(assignment=assignment)
        if not choice.is_valid() or draft is None or not draft.conflict:
            return redirect(self.review_url(assignment))
        if choice.cleaned_data["choice"] == "keep":
            draft_services.draft_discard(actor=self.actor, assignment_id=assignment.pk)
            messages.success(request, "Kept the stored answer.")
            return self.claim_and_open(assignment.queue)
        queue = assignment.queue
        data = {
            k: v if isinstance(v, list) else str(v) for k, v in draft.data.items() if v is not None
        }
        data["failure_mode"] = list(draft.data.get("picked_failure_modes") or [])
        answers = AnswersForm(data, questions=selectors.form_for_reviewer(queue))
        if not answers.is_valid():
            messages.error(request, " ".join(answers.errors_by_question().values()))
            return redirect(self.review_url(assignment))
        try:
            draft_services.draft_replace_annotation(
                actor=self.actor,
                assignment_id=assignment.pk,
                expected_version=choice.cleaned_data["version"],
                values=answers.values(),
                explanation=answers.cleaned_data["explanation"],
                expected_output=answers.expected() if queue.include_expected_output else None,
                failure_modes=answers.failure_modes_list(),
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect(self.review_url(assignment))
        messages.success(request, "Replaced your stored answer with the one sent from this tab.")
        return self.claim_and_open(queue)


class ReviewDraftView(ReviewActionView):
    """POST (the page's script, debounced as the reviewer types): keeps the review form
    as it stands as my draft on the item. Answers ``{"saved_at": ...}``; 409 once the
    item is submitted or skipped, 422 for a form that is not one, 401 when signed out."""

    json_endpoint = True

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        form = selectors.form_for_reviewer(assignment.queue)
        draft_form = DraftForm(request.POST, config_ids=[q["config_id"] for q in form])
        if not draft_form.is_valid():
            return JsonResponse({"errors": draft_form.errors}, status=422)
        try:
            draft = draft_services.draft_save(
                actor=self.actor, assignment_id=assignment.pk, data=draft_form.as_draft()
            )
        except DomainError as exc:
            return JsonResponse({"code": exc.code, "message": exc.message}, status=exc.status_code)
        return JsonResponse({"saved_at": int(draft.updated_at.timestamp() * 1000)})


class ReviewRenewView(ReviewActionView):
    """POST (the page's script, while the reviewer is active): the lease runs its time
    again from now; a lease that ran out is taken again when nobody else took the item.
    Answers ``{"expires_at": ...}``, or 409 with why it cannot be (``lease_taken``...)."""

    json_endpoint = True

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        try:
            renewed = assignment_renew(actor=self.actor, assignment_id=assignment.pk)
        except DomainError as exc:
            return JsonResponse({"code": exc.code, "message": exc.message}, status=exc.status_code)
        return JsonResponse({"expires_at": renewed.expires_at.isoformat()})


class ReviewPrefetchView(ReviewActionView):
    """POST: claim the item after this one while the reviewer reads this one, so submit
    opens it at once. Answers ``{"url": ..., "assignment": id}`` or ``{"url": null}``.

    At most one lease ahead: a lease of mine in the queue other than this one is
    returned instead of claiming again (the request locks this lease's row, so two
    prefetches for the same page wait for each other). A prefetched lease is an
    ordinary lease: if the tab closes, it expires with the queue's lease time and the
    item goes back to the queue."""

    json_endpoint = True

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        if not pages_selectors.lease_is_live(assignment):
            return JsonResponse({"url": None, "assignment": None})
        with transaction.atomic():
            # Locked, then looked at again: a submit of this lease that committed while
            # the request waited opens the next item itself; claiming here too would
            # leave a second lease behind.
            locked = Assignment.objects.select_for_update().filter(pk=assignment.pk).first()
            if locked is None or not pages_selectors.lease_is_live(locked):
                return JsonResponse({"url": None, "assignment": None})
            ahead = pages_selectors.live_assignments(
                queue=assignment.queue, user=request.user, exclude_id=assignment.pk
            )
            upcoming = ahead[0] if ahead else None
            if upcoming is None:
                try:
                    upcoming = services.queue_claim_next(actor=self.actor, queue=assignment.queue)
                except DomainError:
                    upcoming = None
        if upcoming is None:
            return JsonResponse({"url": None, "assignment": None})
        return JsonResponse({"url": self.review_url(upcoming), "assignment": upcoming.pk})


class SpanCommentView(ReviewActionView):
    """POST: a comment on one span of the item under review. It belongs to the item as
    well, so the blind rule covers it like any comment on the item."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        item = assignment.item
        sent = SpanCommentForm(request.POST)
        if not sent.is_valid():
            raise Http404
        span = pages_selectors.span_of_item(
            item=item,
            trace_external_id=sent.cleaned_data["trace"],
            span_external_id=sent.cleaned_data["span"],
        )
        if span is None:
            raise Http404
        error = ""
        try:
            services.comment_create(
                actor=self.actor,
                project=self.project,
                body=sent.cleaned_data["body"],
                item_id=item.pk,
                span_id=span.pk,
            )
        except DomainError as exc:
            error = exc.message
        if request.headers.get("HX-Request") != "true":
            if error:
                messages.error(request, error)
            return redirect(self.review_url(assignment))
        comments = pages_selectors.span_comments(span=span, user=request.user)
        context = {
            "span": {"span_id": span.external_id, "comments": comments},
            "trace": {"trace_id": sent.cleaned_data["trace"]},
            "index": str(sent.cleaned_data["index"] or 0),
            "span_comment_url": request.path,
            "comment_error": error,
        }
        return render(request, "review/_span_comments.html", context, status=422 if error else 200)


# --- My history --------------------------------------------------------------------------------


class MyHistoryView(OrganizationPageView):
    """What I reviewed, newest first, with my answers; each opens to edit."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        paginator = Paginator(
            pages_selectors.my_history(membership=self.membership), HISTORY_PAGE_SIZE
        )
        page = paginator.get_page(PageNumberForm(request.GET).number())
        forms: dict[int, list[dict[str, Any]]] = {}
        rows = []
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
        context = {"organization": self.organization, "rows": rows, "page_obj": page}
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
        turn = ReviewPageQueryForm(self.request.GET).turn_id()
        page = pages_selectors.item_page(item=item, user=user, turn=turn)
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
            "my_work_url": self.my_work_url(),
            "history_list_url": reverse(
                "review-history", kwargs={"org_slug": self.organization.slug}
            ),
        }
        return render(self.request, "review/history_item.html", context, status=status)


# --- adjudication ------------------------------------------------------------------------------


class AdjudicationListView(OrganizationPageView):
    """Items awaiting a decision in the queues I adjudicate (senior, or manager)."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        items = list(pages_selectors.awaiting_adjudication(membership=self.membership)[:200])
        rows = [
            {
                "item": item,
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
    with the review page's keyboard; submitted through ``services.item_adjudicate``."""

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
        return self.render_item(self.load(item_pk))

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, item_pk: int
    ) -> HttpResponse:
        item = self.load(item_pk)
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
        following = (
            pages_selectors.awaiting_adjudication(membership=self.membership)
            .filter(project=self.project)
            .exclude(pk=item.pk)
            .first()
        )
        if following is not None:
            messages.success(request, "Decision saved. Here is the next item awaiting one.")
            return redirect(self.adjudicate_url(following))
        messages.success(request, "Decision saved. Nothing else awaits a decision here.")
        return redirect(reverse("review-adjudication", kwargs={"org_slug": org_slug}))

    def render_item(
        self,
        item: QueueItem,
        *,
        posted: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        user = self.request.user
        turn = ReviewPageQueryForm(self.request.GET).turn_id()
        page = pages_selectors.item_page(item=item, user=user, turn=turn)
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
            }
            for a in side["annotations"]
        ]
        context = {
            "organization": self.organization,
            "project": self.project,
            "queue": item.queue,
            "item": item,
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
        }
        return render(self.request, "review/adjudicate.html", context, status=status)


# --- form helpers ------------------------------------------------------------------------------


def _number_text(value: float) -> str:
    return f"{value:g}"


def prepare_questions(
    form: list[dict[str, Any]], *, posted: dict[str, Any], errors: dict[str, str]
) -> None:
    """Adds what the question template needs: its levels, field name, the answer to
    show checked or filled, and its error."""
    for question in form:
        question["levels"] = _levels(question)
        question["field_name"] = f"q-{question['config_id']}"
        question["posted"] = posted.get(question["field_name"], "")
        question["error"] = errors.get(str(question["config_id"]), "")


def _levels(question: dict[str, Any]) -> list[dict[str, Any]]:
    """The choices a question offers, each with the rubric level that defines it:
    options for categorical, yes/no for boolean, each step for a stepped number range
    (at most nine, so a digit picks each). Empty: a free number or text field."""
    rubric = {str(level.get("label", "")).lower(): level for level in question["rubric"]}
    kind = question["data_type"]
    choices: list[tuple[str, str]] = []
    if kind == ScoreDataType.CATEGORICAL:
        choices = [(str(o["label"]), str(o["label"])) for o in question["options"]]
    elif kind == ScoreDataType.BOOLEAN:
        choices = [("true", "Yes"), ("false", "No")]
    elif kind == ScoreDataType.NUMERIC and question["step"]:
        low, high, step = question["min_value"], question["max_value"], question["step"]
        count = round((high - low) / step) + 1
        if count <= 9:
            values = [low + i * step for i in range(count)]
            choices = [(_number_text(v), _number_text(v)) for v in values]
    levels = []
    for index, (value, label) in enumerate(choices):
        level = rubric.get(label.lower())
        if (
            level is None
            and kind == ScoreDataType.NUMERIC
            and len(question["rubric"]) == len(choices)
        ):
            level = question["rubric"][index]
        levels.append(
            {
                "key": index + 1,
                "value": value,
                "label": label,
                "rubric_label": level.get("label") if level and level.get("label") != label else "",
                "definition": level.get("definition", "") if level else "",
                "examples": level.get("examples", []) if level else [],
            }
        )
    return levels


def saved_as_posted(form: list[dict[str, Any]], annotation: Annotation) -> dict[str, Any]:
    """A saved annotation as the edit form's posted values."""
    shown: dict[str, Any] = {
        "explanation": annotation.explanation,
        "expected_output": as_editable(annotation.expected_output),
        "picked_failure_modes": list(annotation.failure_modes),
        "failure_modes": "",
    }
    for question in form:
        value = annotation.values.get(str(question["config_id"]))
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = _number_text(value)
        else:
            text = str(value)
        shown[f"q-{question['config_id']}"] = text
    return shown


def as_editable(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def same_answers(annotation: Annotation, answers: AnswersForm) -> bool:
    """Whether a form sent for an item already submitted says what the stored answer
    says (the same submit sent twice), as opposed to other answers (another tab)."""
    values = {k: v for k, v in answers.values().items() if v is not None}
    if values != annotation.values:
        return False
    if answers.cleaned_data["explanation"] != annotation.explanation:
        return False
    if answers.failure_modes_list() != list(annotation.failure_modes):
        return False
    expected = answers.expected()
    return expected in (None, "", {}) or expected == annotation.expected_output


def draft_as_text(form: list[dict[str, Any]], draft: ReviewDraft | None) -> str:
    """A draft as plain text to copy: each answer by its question, then the notes."""
    if draft is None:
        return ""
    data = draft.data
    lines = []
    for question in form:
        answer = str(data.get(f"q-{question['config_id']}", "")).strip()
        if answer:
            lines.append(f"{question['name']}: {answer}")
    modes = failure_modes_of(data)
    if modes:
        lines.append(f"Failure modes: {', '.join(modes)}")
    for key, label in (
        ("explanation", "Explanation"),
        ("expected_output", "Expected output"),
        ("comment", "Comment"),
    ):
        text = str(data.get(key, "")).strip()
        if text:
            lines.append(f"{label}:\n{text}")
    return "\n\n".join(lines)
