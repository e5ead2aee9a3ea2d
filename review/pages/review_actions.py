"""The review page's requests: submit, skip, release, the choice after a second tab,
the draft as the reviewer types, lease renewal, the next item prefetched, and a comment
on a span. Each acts on the signed-in reviewer's own lease (``ReviewActionView``).
"""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from hitl.exceptions import Conflict, DomainError
from review import selectors, services
from review.models import (
    Assignment,
    AssignmentState,
)
from review.pages import reviewer_selectors as pages_selectors
from review.pages.questions import same_answers
from review.pages.reviewer import ReviewItemView
from review.pages.reviewer_forms import (
    TURN_COMMENT,
    AnswersForm,
    ConflictChoiceForm,
    DraftForm,
    SkipForm,
    SpanCommentForm,
    TurnCommentForm,
    turn_error_key,
)
from review.services import drafts as draft_services
from review.services.claims import assignment_renew


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
        answers = AnswersForm(
            request.POST, questions=selectors.form_for_reviewer(queue), turns=self.turns()
        )
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
                turns=answers.turn_ratings(),
                **answers.suggestions_claimed(),
            )
        except Conflict:
            current = self.load(assignment.pk)
            if current.state == AssignmentState.SUBMITTED:
                # Another tab's submit of this item was stored while this one waited
                # for the item: the same answers go where that one went, other answers
                # are kept beside the stored ones to choose from.
                return self.submitted_again(current, answers)
            # Taken by another reviewer, or back by a manager: the page says which,
            # with what I wrote to copy.
            self.keep_draft(request.POST)
            return redirect(self.review_url(assignment))
        except DomainError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            values = details.get("values")
            found = dict(values) if isinstance(values, dict) else {}
            turns = details.get("turns")
            if isinstance(turns, dict):
                found.update({turn_error_key(str(k)): str(v) for k, v in turns.items()})
            found.setdefault("__all__", exc.message)
            self.keep_draft(request.POST)
            return self.retry_with(found)
        comment = answers.cleaned_data["comment"]
        if comment:
            services.comment_create(
                actor=self.actor, project=self.project, body=comment, item_id=assignment.item_id
            )
        self.send_turn_comments(assignment, answers.turn_comments())
        fast = self.after_done(assignment)
        if fast is not None:
            return self.remember_done(fast)
        messages.success(request, "Saved. Here is the next item.")
        return self.remember_done(self.claim_and_open(queue))

    def send_turn_comments(self, assignment: Assignment, bodies: dict[str, str]) -> None:
        """Comments typed on turns of the conversation but not sent yet go with the
        submit, as the comment on the item does (each through ``comment_create``)."""
        traces = dict(self.turn_rows())
        for turn_id, body in bodies.items():
            with contextlib.suppress(DomainError):
                services.comment_create(
                    actor=self.actor,
                    project=self.project,
                    body=body,
                    item_id=assignment.item_id,
                    trace_id=traces[turn_id],
                )

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
        answers = AnswersForm(
            data, questions=selectors.form_for_reviewer(queue), turns=self.turns()
        )
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
                turns=answers.turn_ratings() if self.turns() else None,
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
        return render(request, "spans/_span_comments.html", context, status=422 if error else 200)


class TurnCommentView(ReviewActionView):
    """POST: a comment on one turn of the conversation under review, sent from the
    review form (the turn's "Add comment" button posts the whole form here, so it works
    without the script): what the form holds is kept as my draft first, so nothing
    typed is lost, then the comment is written on the item naming the turn's trace
    (``comment_create``: mentions, history; the blind rule covers it as any comment on
    the item), and the browser goes back to the item at that turn. A refused comment
    (no text, too long, not a turn of this conversation) comes back on the item's page
    with its reason beside the turn, its text kept in the draft."""

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        rows = self.turn_rows()
        if not rows:
            raise Http404
        if not (
            pages_selectors.lease_is_live(assignment)
            or pages_selectors.lease_retakeable(assignment)
        ):
            self.keep_draft(request.POST)
            return redirect(self.review_url(assignment))
        sent = TurnCommentForm(request.POST, turn_ids=[turn_id for turn_id, _pk in rows])
        if not sent.is_valid():
            self.keep_draft(request.POST)
            return self.retry_with({"__all__": sent.error_text()})
        turn_id = sent.cleaned_data["comment_turn"]
        place = next(n for n, (tid, _pk) in enumerate(rows, 1) if tid == turn_id)
        error = "" if sent.body() else f"Turn {place}: a comment needs text."
        if not error:
            try:
                services.comment_create(
                    actor=self.actor,
                    project=self.project,
                    body=sent.body(),
                    item_id=assignment.item_id,
                    trace_id=dict(rows)[turn_id],
                )
            except DomainError as exc:
                error = f"Turn {place}: {exc.message}"
        data = request.POST.copy()
        if not error:
            data[TURN_COMMENT + turn_id] = ""  # sent: not a draft any more
        self.keep_draft(data)
        if error:
            return self.retry_with({turn_error_key(turn_id): error})
        messages.success(request, f"Comment added on turn {place}.")
        return redirect(f"{self.review_url(assignment)}#turn-{place}")
