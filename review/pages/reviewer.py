"""The reviewer's pages: My work and the focused review page, one item at a time (its
requests are :mod:`review.pages.review_actions`; My history and adjudication are
:mod:`review.pages.history`).

Thin views: the organization comes from the URL and the membership
(``projects.pages.OrganizationPageView``), the project from the URL under the one
visibility rule (``projects.pages.ProjectPageView``); reads are
``review.pages.reviewer_selectors``, writes are ``review.services`` acting as the signed-in person
with source "web". What anyone sees of others' answers is decided by
``review.visibility`` through those selectors; no view adds a rule of its own.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from hitl.exceptions import DomainError
from projects.models import MANAGE_ROLES
from projects.pages import OrganizationPageView, ProjectPageView
from review import selectors, services
from review.comparison.pages import is_comparison_lease
from review.models import (
    Annotation,
    Assignment,
    AssignmentState,
    ItemTarget,
    QueueItem,
    ReviewDraft,
    ReviewQueue,
)
from review.pages import reviewer_selectors as pages_selectors
from review.pages import turn_selectors
from review.pages.questions import (
    as_editable,
    draft_as_text,
    prepare_questions,
    prepare_suggestions,
    saved_as_posted,
)
from review.pages.reviewer_forms import (
    MAX_NOTE,
    TURN_COMMENT,
    TURN_NOTE,
    TURN_RATING,
    TURN_RATING_CHOICES,
    DraftForm,
    ReviewPageQueryForm,
    failure_modes_of,
    turn_error_key,
)
from review.payloads import render_payload, render_text
from review.services import drafts as draft_services
from review.services.turns import thread_turns, turns_in_words
from traces.models import Trace

# The lease timer turns into a warning this long before the lease ends.
LEASE_WARNING_SECONDS = 120


# The review page's script sends this header when it holds the next item's page already
# (prefetched): a successful submit or skip then answers 204 naming the next item's URL
# instead of redirecting to it, and the script shows the page it holds.
BUFFERED_HEADER = "X-Review-Buffered"


NEXT_HEADER = "X-Review-Next"


PREVIOUS_HEADER = "X-Review-Previous"


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


def render_span_body(span: dict[str, Any]) -> dict[str, Any]:
    """A span's input and output rendered for people (``input_html``, ``output_html``)."""
    span["input_html"] = render_payload(span["input"])
    span["output_html"] = render_payload(span["output"])
    return span


def render_span_fragment(
    request: HttpRequest, found: dict[str, Any], *, span_comment_url: str = ""
) -> HttpResponse:
    """One selected span (``span_detail``/``item_span_detail``) as the fragment a page's
    script puts beside the span tree (``_span_detail.html``); with its comment form
    where the page has one."""
    context = {
        "span": render_span_body(found["span"]),
        "index": found["index"],
        "trace": found["page"]["trace"],
        "selected": True,
        "span_comment_url": span_comment_url,
    }
    return render(request, "spans/_span_detail.html", context)


class ReviewPageView(ProjectPageView):
    """A review page in a project: links between the pages and "open the next item"."""

    def _kwargs(self, **more: Any) -> dict[str, Any]:
        return {"org_slug": self.organization.slug, "project_slug": self.project.slug, **more}

    def review_url(self, assignment: Assignment) -> str:
        if is_comparison_lease(assignment):  # outputs side by side (review.comparison)
            return reverse("review-compare", kwargs=self._kwargs(assignment_pk=assignment.pk))
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
            if span["body_loaded"]:
                render_span_body(span)
        comments = turn_selectors.turn_comments(
            item=page["item"], turns=page["turns"], user=self.request.user
        )
        turns = [
            {
                "trace": turn,
                "id": turn.external_id,
                "place": place,
                "input_html": render_payload(turn.input),
                "output_html": render_payload(turn.output),
                "selected": trace is not None and turn.external_id == trace["trace_id"],
                "comments": comments.get(turn.pk, []),
            }
            for place, turn in enumerate(page["turns"], 1)
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
        if is_comparison_lease(assignment):  # outputs side by side (review.comparison)
            return redirect(self.review_url(assignment))
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

    def turn_traces(self) -> list[Trace]:
        """The turns of the item's conversation in order (read once), none for an item
        that is not a conversation."""
        item = self.assignment.item
        if item.target_type != ItemTarget.THREAD:
            return []
        if getattr(self, "_turn_traces", None) is None:
            self._turn_traces = thread_turns(item.thread_id)
        return self._turn_traces

    def turns(self) -> list[tuple[str, int]]:
        """The item's conversation turns as (trace id, place)."""
        return [(t.external_id, n) for n, t in enumerate(self.turn_traces(), 1)]

    def turn_rows(self) -> list[tuple[str, int]]:
        """The item's conversation turns as (trace id, trace row id)."""
        return [(t.external_id, t.pk) for t in self.turn_traces()]

    def draft_from(self, data: Any) -> dict[str, Any] | None:
        """The review form as posted, typed by ``DraftForm`` (None when it is not one)."""
        form = selectors.form_for_reviewer(self.assignment.queue)
        draft_form = DraftForm(
            data,
            config_ids=[q["config_id"] for q in form],
            turn_ids=[turn_id for turn_id, _place in self.turns()],
        )
        if draft_form.is_valid():
            return draft_form.as_draft()
        # A field past the draft's bounds is left out; the rest is kept all the same.
        return draft_form.as_draft() if draft_form.cleaned_data else None

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
        if assignment.item.target_type == ItemTarget.THREAD:
            places = dict(self.turns())
            sent = {
                turn_id: {
                    "turn": place,
                    "rating": str(mine.get(TURN_RATING + turn_id, "")),
                    "note": str(mine.get(TURN_NOTE + turn_id, "")).strip(),
                }
                for turn_id, place in places.items()
            }
            sent = {k: v for k, v in sent.items() if v["rating"] or v["note"]}
            rows.append(
                {
                    "name": "Turn ratings",
                    "stored": turns_in_words(annotation.turns) if annotation.turns else "",
                    "mine": turns_in_words(sent) if sent else "",
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
        page = pages_selectors.review_page(
            assignment=assignment, user=user, turn=query.turn_id(), span=query.span_id()
        )
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
        prepare_suggestions(page["form"], page["suggestions"])
        expected_default = ""
        if queue.include_expected_output and page["turns"]:
            # A conversation's expected final outcome: where its last turn ended,
            # whichever turn's spans are shown.
            expected_default = as_editable(page["turns"][-1].output)
        elif queue.include_expected_output and trace is not None:
            expected_default = as_editable(trace["output"])
        elif queue.include_expected_output and page["dataset_item"] is not None:
            # The item's current expected output, unless the blind rule hides it.
            expected_default = as_editable(page["dataset_item"]["expected_output"])
        # An output longer than the form takes is not prefilled (the submit would refuse
        # it): the reviewer writes the expected output instead.
        expected_too_long = len(expected_default) if len(expected_default) > MAX_NOTE else 0
        if expected_too_long:
            expected_default = ""
        previous = pages_selectors.last_submitted(user=user, queue=queue)
        picked = set(posted.get("picked_failure_modes", []))
        kwargs = self._kwargs(assignment_pk=assignment.pk)
        known = pages_selectors.known_failure_modes(queue=queue, user=user)
        target = self.target_context(page)
        for turn in target["turns"]:
            # The turn's rating, note and unsent comment as typed (the draft), and why
            # the submit refused them.
            turn_id = turn["id"]
            turn["rating"] = str(posted.get(TURN_RATING + turn_id, ""))
            turn["note"] = str(posted.get(TURN_NOTE + turn_id, ""))
            turn["comment_draft"] = str(posted.get(TURN_COMMENT + turn_id, ""))
            turn["error"] = errors.get(turn_error_key(turn_id), "")
            turn["field_rating"] = TURN_RATING + turn_id
            turn["field_note"] = TURN_NOTE + turn_id
            turn["field_comment"] = TURN_COMMENT + turn_id
        context = {
            "organization": self.organization,
            "project": self.project,
            "assignment": assignment,
            "queue": queue,
            "item": assignment.item,
            **target,
            "turn_controls": True,
            "turn_ratings": TURN_RATING_CHOICES,
            "turn_comment_url": reverse("review-turn-comment", kwargs=kwargs),
            "errors": errors,
            "general_error": errors.get("__all__", ""),
            "posted": posted,
            "explanation": posted.get("explanation", ""),
            "expected_output": posted.get("expected_output", expected_default),
            "expected_too_long": expected_too_long,
            "expected_max": MAX_NOTE,
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
            "span_detail_url": reverse("review-span", kwargs=kwargs),
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


class SpanDetailView(ReviewItemView):
    """GET ``?span=<span id>`` (and ``&turn=`` on a thread): one span of the item under
    review as the page shows it when it is selected (its body, scores, comments, the
    comment form), the fragment the page's script puts beside the span tree. Built by
    the page's own selector (``span_detail``: ``review_page`` with that span selected),
    so the blind rule is the page's. Only while the page would show the item (a live
    lease, or a lapsed one nobody took); otherwise, or for a span not in the trace, 404.
    Signed out: 401 with where to sign in, as the page's other calls."""

    json_endpoint = True

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(assignment_pk)
        if not (
            pages_selectors.lease_is_live(assignment)
            or pages_selectors.lease_retakeable(assignment)
        ):
            raise Http404
        query = ReviewPageQueryForm(request.GET)
        span_id = query.span_id()
        found = (
            pages_selectors.span_detail(
                assignment=assignment, user=request.user, span_id=span_id, turn=query.turn_id()
            )
            if span_id
            else None
        )
        if found is None:
            raise Http404
        kwargs = self._kwargs(assignment_pk=assignment.pk)
        return render_span_fragment(
            request, found, span_comment_url=reverse("review-span-comment", kwargs=kwargs)
        )


class CommentOpenView(ReviewPageView):
    """GET: where a comment is read, for the person opening it (an @mention's link): on
    an item, their own answer to it (My history), else their live lease on it, else, for
    a manager, the lead's item page; on a trace, its page for a manager. Anyone else
    goes to My work with the reason. Another project's or organization's comment is a
    404."""

    def get(
        self, request: HttpRequest, org_slug: str, project_slug: str, comment_pk: int
    ) -> HttpResponse:
        comment = pages_selectors.comment_for_page(comment_id=comment_pk, project=self.project)
        if comment is None:
            raise Http404
        manager = self.membership.role in MANAGE_ROLES
        if comment.item_id is not None:
            mine = pages_selectors.my_answer_on_item(item_id=comment.item_id, user=request.user)
            if mine is not None:
                return redirect(self.history_url(mine))
            lease = pages_selectors.live_assignment_on_item(
                item_id=comment.item_id, user=request.user
            )
            if lease is not None:
                return redirect(self.review_url(lease))
            if manager:
                kwargs = self._kwargs(queue_pk=comment.item.queue_id, item_pk=comment.item_id)
                return redirect(reverse("lead-item", kwargs=kwargs))
        elif manager and comment.trace_id is not None:
            kwargs = self._kwargs(trace_external_id=comment.trace.external_id)
            return redirect(reverse("traces-detail", kwargs=kwargs))
        author = comment.author.email if comment.author_id else "Someone"
        messages.info(
            request,
            f"{author} mentioned you on an item you have not reviewed: it opens from My "
            "work once it is yours to review.",
        )
        return redirect(self.my_work_url())
