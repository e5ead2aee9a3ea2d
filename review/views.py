"""The reviewer's pages: My work and focused review, one item at a time.

Thin views: the organization comes from the URL and the membership
(``projects.pages.OrganizationPageView``), the project from the URL under the one
visibility rule (``projects.pages.ProjectPageView``); reads are
``review.pages_selectors``, writes are ``review.services`` acting as the signed-in person
with source "web".
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from hitl.exceptions import Conflict, DomainError
from projects.models import MANAGE_ROLES
from projects.pages import OrganizationPageView, ProjectPageView
from review import pages_selectors, selectors, services
from review.models import Assignment, ReviewQueue
from review.payloads import render_payload, render_text
from traces.models import ScoreDataType

# The lease timer turns into a warning this long before the lease ends.
LEASE_WARNING_SECONDS = 120


class MyWorkView(OrganizationPageView):
    """The queues I review in, what waits for me, my pace; managers also see the team."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        context = {
            "organization": self.organization,
            "membership": self.membership,
            **pages_selectors.my_work(membership=self.membership),
            "team": pages_selectors.team_work(membership=self.membership),
            "is_manager": self.membership.role in MANAGE_ROLES,
        }
        return render(request, "review/my_work.html", context)


class ReviewPageView(ProjectPageView):
    """A review page in a project: links between the pages and "open the next item"."""

    def review_url(self, assignment: Assignment) -> str:
        return reverse(
            "review-item",
            kwargs={
                "org_slug": self.organization.slug,
                "project_slug": self.project.slug,
                "assignment_pk": assignment.pk,
            },
        )

    def my_work_url(self) -> str:
        return reverse("review-my-work", kwargs={"org_slug": self.organization.slug})

    def claim_and_open(self, queue: ReviewQueue) -> HttpResponse:
        """Opens the next item of ``queue`` for me (my live lease first, if I hold one)."""
        assignment = pages_selectors.live_assignment(queue=queue, user=self.request.user)
        if assignment is None:
            try:
                assignment = services.queue_claim_next(actor=self.actor, queue=queue)
            except DomainError as exc:
                messages.error(self.request, exc.message)
                return redirect(self.my_work_url())
        if assignment is None:
            messages.success(self.request, f"Nothing is waiting for you in “{queue.name}”.")
            return redirect(self.my_work_url())
        return redirect(self.review_url(assignment))


class QueueStartView(ReviewPageView):
    """POST: claim the next item of a queue (or resume my lease) and open it."""

    http_method_names = ["post"]

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
    """One item, one lease: the trace beside the queue's form. GET shows it; a lease
    that ended shows a recovery page instead."""

    http_method_names = ["get"]
    assignment: Assignment

    def load(self, project_slug: str, assignment_pk: int) -> Assignment:
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
        assignment = self.load(project_slug, assignment_pk)
        if not pages_selectors.lease_is_live(assignment):
            return self.render_ended(assignment)
        return self.render_review(assignment)

    def render_ended(self, assignment: Assignment) -> HttpResponse:
        expired = assignment.state == "expired" or (
            assignment.state == "leased" and assignment.expires_at <= timezone.now()
        )
        context = {
            "organization": self.organization,
            "project": self.project,
            "assignment": assignment,
            "queue": assignment.queue,
            "expired": expired,
        }
        return render(self.request, "review/lease_ended.html", context)

    def render_review(
        self,
        assignment: Assignment,
        *,
        posted: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        page = pages_selectors.review_page(
            assignment=assignment, user=self.request.user, turn=self.request.GET.get("turn")
        )
        posted = posted or {}
        errors = errors or {}
        queue = assignment.queue
        item = assignment.item
        trace = page["trace"]
        for question in page["form"]:
            question["levels"] = _levels(question)
            question["field_name"] = f"q-{question['config_id']}"
            question["posted"] = posted.get(question["field_name"], "")
            question["error"] = errors.get(str(question["config_id"]), "")
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
        expected_default = ""
        if queue.include_expected_output and trace is not None:
            expected_default = _as_editable(trace["output"])
        context = {
            "organization": self.organization,
            "project": self.project,
            "assignment": assignment,
            "queue": queue,
            "item": item,
            "page": page,
            "turns": turns,
            "trace": trace,
            "trace_input_html": render_payload(trace["input"]) if trace else "",
            "trace_output_html": render_payload(trace["output"]) if trace else "",
            "errors": errors,
            "general_error": errors.get("__all__", ""),
            "posted": posted,
            "explanation": posted.get("explanation", ""),
            "expected_output": posted.get("expected_output", expected_default),
            "comment": posted.get("comment", ""),
            "failure_modes": posted.get("failure_modes", ""),
            "lease_warning_seconds": LEASE_WARNING_SECONDS,
            "my_work_url": self.my_work_url(),
            "others_html": [
                {
                    "email": a["reviewer"]["email"],
                    "values": a["values"],
                    "explanation_html": render_text(a["explanation"]) if a["explanation"] else "",
                }
                for a in page["other_annotations"]
            ],
        }
        return render(self.request, "review/review.html", context, status=status)


class ReviewSubmitView(ReviewItemView):
    """POST: submit my answers (and an optional comment), then open the next item."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(project_slug, assignment_pk)
        if not pages_selectors.lease_is_live(assignment):
            return redirect(self.review_url(assignment))
        form = selectors.form_for_reviewer(assignment.queue)
        values, errors = _answers_from_post(form, request.POST)
        posted = request.POST.dict()
        if errors:
            return self.render_review(assignment, posted=posted, errors=errors, status=422)
        try:
            services.assignment_submit(
                actor=self.actor,
                assignment_id=assignment.pk,
                values=values,
                explanation=request.POST.get("explanation", "").strip(),
                expected_output=_parse_expected(request.POST.get("expected_output", "")),
                failure_modes=[
                    tag.strip()
                    for tag in request.POST.get("failure_modes", "").split(",")
                    if tag.strip()
                ],
            )
        except Conflict:
            return redirect(self.review_url(assignment))
        except DomainError as exc:
            details = exc.details.get("values") if isinstance(exc.details, dict) else None
            found = dict(details) if isinstance(details, dict) else {}
            found.setdefault("__all__", exc.message)
            return self.render_review(assignment, posted=posted, errors=found, status=422)
        comment = request.POST.get("comment", "").strip()
        if comment:
            services.comment_create(
                actor=self.actor, project=self.project, body=comment, item_id=assignment.item_id
            )
        messages.success(request, "Saved. Here is the next item.")
        return self.claim_and_open(assignment.queue)


class ReviewSkipView(ReviewItemView):
    """POST: skip with a reason, then open the next item."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(project_slug, assignment_pk)
        if not pages_selectors.lease_is_live(assignment):
            return redirect(self.review_url(assignment))
        reason = request.POST.get("reason", "").strip()
        if not reason:
            return self.render_review(
                assignment,
                posted={"skip_open": "1"},
                errors={"skip": "Say why you skip this item."},
                status=422,
            )
        try:
            services.assignment_skip(actor=self.actor, assignment_id=assignment.pk, reason=reason)
        except Conflict:
            return redirect(self.review_url(assignment))
        messages.success(request, "Skipped. Here is the next item.")
        return self.claim_and_open(assignment.queue)


class ReviewReleaseView(ReviewItemView):
    """POST: give the item back to the queue and stop reviewing."""

    http_method_names = ["post"]

    def post(
        self, request: HttpRequest, org_slug: str, project_slug: str, assignment_pk: int
    ) -> HttpResponse:
        assignment = self.load(project_slug, assignment_pk)
        if pages_selectors.lease_is_live(assignment):
            try:
                services.assignment_release(actor=self.actor, assignment_id=assignment.pk)
                messages.success(request, "Released: the item went back to the queue.")
            except Conflict:
                pass
        return redirect(self.my_work_url())


# --- form helpers ------------------------------------------------------------------------------


def _number_text(value: float) -> str:
    return f"{value:g}"


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


def _answers_from_post(
    form: list[dict[str, Any]], data: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted answers typed for the service (numbers, booleans, labels, text); the
    service validates them against the form."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for question in form:
        key = str(question["config_id"])
        raw = data.get(f"q-{key}", "").strip()
        if raw == "":
            continue
        kind = question["data_type"]
        if kind == ScoreDataType.NUMERIC:
            try:
                values[key] = float(raw)
            except ValueError:
                errors[key] = f"{question['name']}: a number is expected."
        elif kind == ScoreDataType.BOOLEAN:
            values[key] = raw == "true"
        else:
            values[key] = raw
    return values, errors


def _as_editable(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _parse_expected(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
