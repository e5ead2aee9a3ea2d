"""Reads for the reviewer's web pages: My work (queues, what waits, my pace, the team),
the focused review page (the item, its trace or thread, the form), My history and the
adjudication pages.

What a person may see of others' answers and of scores is decided by
``review.visibility`` through the selectors it serves (``review.selectors.item_detail``,
``traces.selectors.trace_detail``); nothing here filters answers or scores itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Exists, F, Func, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from projects.hooks import WorkPage
from projects.models import MANAGE_ROLES, Membership
from projects.selectors import projects_visible_to
from review import selectors, visibility
from review.models import (
    Adjudication,
    Annotation,
    Assignment,
    AssignmentState,
    AssignmentStrategy,
    AuditStatus,
    Comment,
    ItemStatus,
    QueueItem,
    QueueReviewer,
    ReviewDraft,
    ReviewQueue,
    SuggestionMode,
)
from traces import selectors as trace_selectors
from traces.models import AUTOMATED_SCORE_SOURCES, Span, Trace


@dataclass
class QueueWork:
    queue: ReviewQueue
    waiting: int = 0
    live_assignment: Assignment | None = None
    done_today: int = 0
    done_week: int = 0
    done_total: int = 0
    average_seconds: float | None = None


@dataclass
class QueueTeam:
    queue: ReviewQueue
    columns: dict[str, int] = field(default_factory=dict)
    working: list[str] = field(default_factory=list)
    done_today: dict[str, int] = field(default_factory=dict)


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of today and of this week (Monday), in the site's time zone."""
    local = timezone.localtime(now)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day - timedelta(days=day.weekday())


def my_work(*, membership: Membership, now: datetime | None = None) -> dict[str, Any]:
    """The queues ``membership`` reviews in, with what waits for them in each, their
    live lease if any, and their pace (done today, this week, average time per item).
    A fixed number of queries whatever the number of queues."""
    now = now or timezone.now()
    user_id = membership.user_id
    day, week = period_starts(now)
    pool = list(
        QueueReviewer.objects.filter(
            membership=membership,
            queue__archived_at__isnull=True,
            queue__project__in=projects_visible_to(membership),
        )
        .select_related("queue", "queue__project")
        .order_by("-queue__priority", "queue__name", "queue_id")
    )
    work = {entry.queue_id: QueueWork(queue=entry.queue) for entry in pool}
    if not work:
        return {"queues": [], "totals": _totals([], None)}

    mine = Assignment.objects.filter(item_id=OuterRef("pk"), reviewer_id=user_id)
    claimable = QueueItem.objects.filter(
        queue_id__in=list(work), status=ItemStatus.OPEN, open_slots__gt=0
    ).exclude(Exists(mine))
    pushed = [
        e.queue_id
        for e in pool
        if e.queue.assignment_strategy
        in (AssignmentStrategy.ROUND_ROBIN, AssignmentStrategy.MANUAL)
    ]
    by_skills = {
        e.queue_id: e for e in pool if e.queue.assignment_strategy == AssignmentStrategy.SKILLS
    }
    waiting_filter = Q(queue_id__in=[q for q in work if q not in pushed and q not in by_skills])
    waiting_filter |= Q(queue_id__in=pushed, assignees__contains=[user_id])
    for queue_id, entry in by_skills.items():
        waiting_filter |= Q(
            Q(language="") | Q(language__in=entry.languages),
            queue_id=queue_id,
            required_skills__contained_by=entry.skills,
        )
    for row in claimable.filter(waiting_filter).values("queue_id").annotate(n=Count("id")):
        work[row["queue_id"]].waiting = row["n"]

    live = Assignment.objects.filter(
        reviewer_id=user_id,
        queue_id__in=list(work),
        state=AssignmentState.LEASED,
        expires_at__gt=now,
    ).order_by("leased_at")
    for assignment in live:
        work[assignment.queue_id].live_assignment = (
            work[assignment.queue_id].live_assignment or assignment
        )

    pace = (
        Annotation.objects.filter(reviewer_id=user_id, queue_id__in=list(work))
        .values("queue_id")
        .annotate(
            today=Count("id", filter=Q(submitted_at__gte=day)),
            week=Count("id", filter=Q(submitted_at__gte=week)),
            total=Count("id"),
            average=Avg(F("submitted_at") - F("opened_at")),
        )
    )
    for row in pace:
        entry = work[row["queue_id"]]
        entry.done_today, entry.done_week, entry.done_total = (
            row["today"],
            row["week"],
            row["total"],
        )
        entry.average_seconds = row["average"].total_seconds() if row["average"] else None
    overall = Annotation.objects.filter(reviewer_id=user_id, queue_id__in=list(work)).aggregate(
        average=Avg(F("submitted_at") - F("opened_at"))
    )["average"]
    queues = list(work.values())
    return {"queues": queues, "totals": _totals(queues, overall)}


def _totals(queues: list[QueueWork], average: timedelta | None) -> dict[str, Any]:
    return {
        "waiting": sum(q.waiting for q in queues),
        "done_today": sum(q.done_today for q in queues),
        "done_week": sum(q.done_week for q in queues),
        "average_seconds": average.total_seconds() if average else None,
    }


def team_work(*, membership: Membership, now: datetime | None = None) -> list[QueueTeam] | None:
    """For managers: every open queue of the projects they see, with its backlog by
    column, who holds a live lease now and who finished how many today. None for
    everyone else."""
    if membership.role not in MANAGE_ROLES:
        return None
    now = now or timezone.now()
    day, _week = period_starts(now)
    queues = list(
        ReviewQueue.objects.filter(
            archived_at__isnull=True, project__in=projects_visible_to(membership)
        )
        .select_related("project")
        .order_by("-priority", "name", "id")
    )
    teams = {queue.pk: QueueTeam(queue=queue) for queue in queues}
    if not teams:
        return []
    open_ = Q(status=ItemStatus.OPEN)
    counts = (
        QueueItem.objects.filter(queue_id__in=list(teams))
        .values("queue_id")
        .annotate(
            waiting=Count("id", filter=open_ & Q(submissions=0, live_leases=0)),
            in_review=Count("id", filter=open_ & Q(live_leases__gt=0)),
            partly_done=Count("id", filter=open_ & Q(submissions__gt=0, live_leases=0)),
            needs_adjudication=Count("id", filter=Q(status=ItemStatus.NEEDS_ADJUDICATION)),
            done=Count("id", filter=Q(status__in=(ItemStatus.COMPLETE, ItemStatus.ADJUDICATED))),
        )
    )
    for row in counts:
        queue_id = row.pop("queue_id")
        teams[queue_id].columns = row
    for team in teams.values():
        team.columns = team.columns or dict.fromkeys(
            ("waiting", "in_review", "partly_done", "needs_adjudication", "done"), 0
        )
    working = (
        Assignment.objects.filter(
            queue_id__in=list(teams), state=AssignmentState.LEASED, expires_at__gt=now
        )
        .values_list("queue_id", "reviewer__email")
        .distinct()
        .order_by("queue_id", "reviewer__email")
    )
    for queue_id, email in working:
        teams[queue_id].working.append(email)
    finished = (
        Annotation.objects.filter(queue_id__in=list(teams), submitted_at__gte=day)
        .values("queue_id", "reviewer__email")
        .annotate(n=Count("id"))
        .order_by("queue_id", "reviewer__email")
    )
    for row in finished:
        teams[row["queue_id"]].done_today[row["reviewer__email"]] = row["n"]
    return list(teams.values())


def live_assignment(
    *, queue: ReviewQueue, user: Any, now: datetime | None = None
) -> Assignment | None:
    """The reviewer's live lease in ``queue``, to resume instead of claiming another."""
    return (
        Assignment.objects.filter(
            queue=queue,
            reviewer=user,
            state=AssignmentState.LEASED,
            expires_at__gt=now or timezone.now(),
        )
        .order_by("leased_at")
        .first()
    )


def live_assignments(
    *, queue: ReviewQueue, user: Any, exclude_id: int | None = None
) -> list[Assignment]:
    """My live leases in ``queue`` (oldest first), but ``exclude_id``: the item fetched
    ahead while I read the current one."""
    leases = Assignment.objects.filter(
        queue=queue, reviewer=user, state=AssignmentState.LEASED, expires_at__gt=timezone.now()
    )
    if exclude_id is not None:
        leases = leases.exclude(pk=exclude_id)
    return list(leases.order_by("leased_at", "id"))


def assignment_for_page(*, assignment_id: int, user: Any, project: Any) -> Assignment | None:
    """One of ``user``'s own assignments in ``project``, with its item and queue."""
    return (
        Assignment.objects.filter(pk=assignment_id, reviewer=user, queue__project=project)
        .select_related("queue", "item", "item__trace", "item__span", "item__thread")
        .first()
    )


def lease_is_live(assignment: Assignment, now: datetime | None = None) -> bool:
    return assignment.state == AssignmentState.LEASED and assignment.expires_at > (
        now or timezone.now()
    )


def lease_retakeable(assignment: Assignment) -> bool:
    """Whether a lease that is not live can still carry a submit (``accept_lapsed``): one
    past its time but not yet expired holds its slot still; an expired one, while its
    item is open with a free slot (nobody else took it)."""
    if assignment.state == AssignmentState.LEASED:
        return True
    if assignment.state != AssignmentState.EXPIRED:
        return False
    return QueueItem.objects.filter(
        pk=assignment.item_id, status=ItemStatus.OPEN, open_slots__gt=0
    ).exists()


def draft_of(*, assignment: Assignment) -> ReviewDraft | None:
    """The lease holder's draft on its item (``review.services.drafts``), if any."""
    return ReviewDraft.objects.filter(
        item_id=assignment.item_id, reviewer_id=assignment.reviewer_id
    ).first()


def annotation_of(*, assignment: Assignment) -> Annotation | None:
    """The answer submitted on a lease, if any."""
    return Annotation.objects.filter(assignment_id=assignment.pk).first()


# A trace of up to this many spans carries every span's body in the review page (moving
# between spans asks the server nothing); a longer one carries its tree and the selected
# span's body, and another span's body is loaded when it is selected (``span_detail``).
# The trace page's rule, so both pages load bodies alike.
SPAN_BODIES_INLINE = trace_selectors.SPAN_BODIES_INLINE


def review_page(
    *, assignment: Assignment, user: Any, turn: str | None = None, span: str | None = None
) -> dict[str, Any]:
    """Everything the focused review page shows for one lease (``item_page``), ``span``
    selected (else the item's span, else the first), span bodies as the page loads them
    (``SPAN_BODIES_INLINE``)."""
    assignment.item.queue = assignment.queue
    page = item_page(item=assignment.item, user=user, turn=turn, span=span, lazy=True)
    queue = assignment.queue
    page["suggestions"] = selectors.suggestions_for_reviewer(assignment.item, queue)
    if queue.suggestion_mode != SuggestionMode.OFF:
        # Where the queue shows suggestions, the judge's scores that are suggestions
        # appear only as such (or not at all in the hidden arm, and not before each
        # answer in "after"): the scores panel would show them anyway otherwise.
        names = {question["name"] for question in page["form"]}
        page["item_scores"] = [
            score
            for score in page["item_scores"]
            if not (score["source"] in AUTOMATED_SCORE_SOURCES and score["name"] in names)
        ]
    return page


def span_detail(
    *, assignment: Assignment, user: Any, span_id: str, turn: str | None = None
) -> dict[str, Any] | None:
    """One span of the item under review, as the review page shows it when it is
    selected: the page's own selector (``review_page`` with that span selected), so the
    blind rule is the page's. With the page's data, the span and its place in the tree;
    None when the trace (or the thread's turn) has no such span."""
    page = review_page(assignment=assignment, user=user, turn=turn, span=span_id)
    return _selected_span(page, span_id)


def item_span_detail(
    *, item: QueueItem, user: Any, span_id: str, turn: str | None = None
) -> dict[str, Any] | None:
    """One span of ``item``'s trace as My history's item page and the decision page show
    it when it is selected: their own selector (``item_page``, lazy, with that span
    selected), so what ``user`` sees of others' scores and comments on it is what the
    blind rule lets the page show. The caller has checked that ``user`` may open the
    page (their own answer on the item; a queue they adjudicate). None when the trace
    (or the thread's turn) has no such span."""
    page = item_page(item=item, user=user, turn=turn, span=span_id, lazy=True)
    return _selected_span(page, span_id)


def _selected_span(page: dict[str, Any], span_id: str) -> dict[str, Any] | None:
    """The page's data, the span ``span_id`` (its body read) and its place in the tree."""
    for index, span in enumerate(page["spans"]):
        if span["span_id"] == span_id:
            return {"page": page, "span": span, "index": index}
    return None


def item_page(
    *,
    item: QueueItem,
    user: Any,
    turn: str | None = None,
    span: str | None = None,
    lazy: bool = False,
) -> dict[str, Any]:
    """What a page about one item shows: the form, the trace's span tree (or the
    thread's turns and the chosen turn's spans), the span to open first (``span`` when
    the trace has it), and what the blind rule lets ``user`` see of others' answers,
    adjudications and scores. Every span's body (input and output) is read, or with
    ``lazy`` only the first span's on a trace longer than ``SPAN_BODIES_INLINE``
    (``lazy_spans``: the others load when selected); ``body_loaded`` says which."""
    queue = item.queue
    detail = selectors.item_detail(item=item, user=user)
    others = [a for a in detail["annotations"] if a["reviewer"]["id"] != user.pk]
    page: dict[str, Any] = {
        "item": item,
        "queue": queue,
        "form": selectors.form_for_reviewer(queue),
        "revealed": detail["revealed"],
        "other_annotations": others,
        "adjudications": list(
            Adjudication.objects.filter(item=item)
            .filter(visibility.adjudications_visible_to(user))
            .select_related("adjudicator")
            .order_by("created_at", "id")
        ),
        "item_scores": detail["scores"],
        "turns": [],
        "trace": None,
        "spans": [],
        "initial_span": None,
        "dataset_item": (
            selectors.dataset_item_summary(item, revealed=detail["revealed"])
            if item.dataset_item_id is not None
            else None
        ),
    }
    trace = item.trace
    if item.target_type == "thread" and item.thread is not None:
        turns = list(
            Trace.objects.filter(thread=item.thread).order_by(
                F("start_time").asc(nulls_last=True), "created_at", "id"
            )
        )
        page["turns"] = turns
        trace = next((t for t in turns if t.external_id == turn), turns[-1] if turns else None)
    page["lazy_spans"] = False
    page["error_count"] = 0
    if trace is not None:
        data = trace_selectors.trace_detail(trace=trace, viewer=user, span_payloads=not lazy)
        spans = data["spans"]
        total = max(
            [(s["offset_ms"] or 0) + (s["duration_ms"] or 0) for s in spans]
            + [data["latency_ms"] or 0, 1]
        )
        for entry in spans:
            offset, duration = entry["offset_ms"] or 0, entry["duration_ms"] or 0
            entry["bar_left"] = round(100 * offset / total, 2)
            entry["bar_width"] = round(max(100 * duration / total, 0.5), 2)
            entry["is_error"] = entry["status"] == "error" or bool(entry["error_message"])
            entry["body_loaded"] = not lazy
        page["trace"] = data
        page["spans"] = spans
        page["error_count"] = sum(1 for entry in spans if entry["is_error"])
        ids = {entry["span_id"] for entry in spans}
        if span is not None and span in ids:
            page["initial_span"] = span
        elif item.span is not None:
            page["initial_span"] = item.span.external_id
        elif spans:
            page["initial_span"] = spans[0]["span_id"]
        if lazy and spans:
            page["lazy_spans"] = len(spans) > SPAN_BODIES_INLINE
            wanted = {page["initial_span"]} if page["lazy_spans"] else None
            trace_selectors.span_bodies_read(trace=trace, spans=spans, only=wanted)
    return page


def known_failure_modes(*, queue: ReviewQueue, user: Any, limit: int = 40) -> list[str]:
    """The failure-mode tags already used in ``queue``, from the answers ``user`` may
    read (the blind rule), most used first: the picker's suggestions."""
    rows = (
        Annotation.objects.filter(queue=queue)
        .filter(visibility.annotations_visible_to(user))
        .annotate(tag=Func(F("failure_modes"), function="unnest"))
        .values("tag")
        .annotate(n=Count("id"))
        .order_by("-n", "tag")[:limit]
    )
    return [row["tag"] for row in rows]


# --- My history --------------------------------------------------------------------------------


def my_history(*, membership: Membership) -> QuerySet[Annotation]:
    """My submitted answers in the projects I see, newest first."""
    return (
        Annotation.objects.filter(
            reviewer_id=membership.user_id,
            project__in=projects_visible_to(membership),
        )
        .select_related("queue", "queue__project", "item", "trace", "thread")
        .order_by("-submitted_at", "-id")
    )


def annotation_for_page(*, annotation_id: int, user: Any, project: Any) -> Annotation | None:
    """One of ``user``'s own answers in ``project``, with its item and queue."""
    return (
        Annotation.objects.filter(pk=annotation_id, reviewer=user, project=project)
        .select_related("queue", "item", "item__queue", "item__trace", "item__span", "item__thread")
        .first()
    )


def last_submitted(*, user: Any, queue: ReviewQueue) -> Annotation | None:
    """My latest answer in ``queue``: the "previous item" link of the review page."""
    return (
        Annotation.objects.filter(reviewer=user, queue=queue)
        .order_by("-submitted_at", "-id")
        .only("id", "submitted_at")
        .first()
    )


# --- adjudication -------------------------------------------------------------------------------


def adjudicated_queues(*, membership: Membership) -> QuerySet[ReviewQueue]:
    """The open queues whose decisions ``membership`` writes: where they are a senior of
    the pool, or every queue of the projects they see for managers (the service
    ``item_adjudicate`` checks the same on every decision)."""
    queues = ReviewQueue.objects.filter(
        archived_at__isnull=True, project__in=projects_visible_to(membership)
    )
    if membership.role in MANAGE_ROLES:
        return queues
    senior = QueueReviewer.objects.filter(
        queue_id=OuterRef("pk"), membership=membership, is_senior=True
    )
    return queues.filter(Exists(senior))


_AWAITING_DECISION = Q(status=ItemStatus.NEEDS_ADJUDICATION) | Q(audit_status=AuditStatus.PENDING)


def awaiting_adjudication(*, membership: Membership) -> QuerySet[QueueItem]:
    """Items that wait for a decision (disputed, or sampled for a senior audit) in the
    queues ``membership`` adjudicates, oldest first."""
    return (
        QueueItem.objects.filter(queue__in=adjudicated_queues(membership=membership))
        .filter(_AWAITING_DECISION)
        .select_related("queue", "queue__project", "trace", "thread", "comparison")
        .prefetch_related("comparison__outputs")
        .order_by("completed_at", "id")
    )


def item_for_adjudication(
    *, item_id: int, membership: Membership, project: Any
) -> QueueItem | None:
    """One item of ``project`` in a queue ``membership`` adjudicates (decided or not)."""
    return (
        QueueItem.objects.filter(
            pk=item_id,
            project=project,
            queue__in=adjudicated_queues(membership=membership),
        )
        .select_related("queue", "trace", "span", "thread")
        .first()
    )


def awaits_decision(item: QueueItem) -> bool:
    return item.status == ItemStatus.NEEDS_ADJUDICATION or (
        item.audit_status == AuditStatus.PENDING
    )


def reviews_side_by_side(*, item: QueueItem, user: Any) -> dict[str, Any]:
    """The item's reviews as ``user`` may read them (the blind rule), each question's
    answers in a row, and which questions disagree under the queue's rule
    (``review.adjudication``): the disagreement the adjudication will record."""
    form = selectors.queue_form(item.queue)
    annotations = list(
        Annotation.objects.filter(item=item)
        .filter(visibility.annotations_visible_to(user))
        .select_related("reviewer")
        .order_by("submitted_at", "id")
    )
    disagreement = selectors.item_disagreement(form, annotations) if annotations else {}
    rows = []
    for question in form:
        key = str(question.config.pk)
        rows.append(
            {
                "config_id": question.config.pk,
                "name": question.config.name,
                "answers": [a.values.get(key) for a in annotations],
                "disagreement": disagreement.get(key),
                "rule": question.rule.describe(),
            }
        )
    return {"annotations": annotations, "rows": rows, "disagreement": disagreement}


# --- comments on spans --------------------------------------------------------------------------


def span_of_item(*, item: QueueItem, trace_external_id: str, span_external_id: str) -> Span | None:
    """A span of the item's trace, or of a turn of its thread."""
    in_target = Q(pk__in=[])
    if item.trace_id is not None:
        in_target |= Q(trace_id=item.trace_id)
    if item.thread_id is not None:
        in_target |= Q(trace__thread_id=item.thread_id)
    return (
        Span.objects.filter(in_target, project_id=item.project_id, external_id=span_external_id)
        .filter(trace__external_id=trace_external_id)
        .first()
    )


def span_comments(*, span: Span, user: Any) -> list[dict[str, Any]]:
    """The comments on ``span`` that ``user`` may read (the blind rule)."""
    comments = (
        Comment.objects.filter(span_id=span.pk)
        .filter(visibility.comments_visible_to(user))
        .select_related("author", "trace", "span")
        .order_by("created_at", "id")
    )
    return [selectors.comment_as_dict(c) for c in comments]


# Waiting items are counted up to this many (a count of a million-item queue would cost
# more than the page); beyond it the page says "more than".
PROGRESS_COUNT_CAP = 1000


@dataclass
class QueueProgress:
    """Where a reviewer is in a queue: the items before this one (finished, answered or
    skipped, and the live leases taken before it: a page fetched ahead is shown once the
    item before it is done), this one, and those still waiting for them (live leases
    taken after it, such as the next item held ahead, and the items they may claim, up
    to the cap)."""

    done: int
    waiting: int
    capped: bool

    @property
    def position(self) -> int:
        return self.done + 1

    @property
    def total(self) -> int:
        return self.done + 1 + self.waiting


def queue_progress(
    *, queue: ReviewQueue, membership: Membership, assignment: Assignment
) -> QueueProgress:
    """``membership``'s progress in ``queue`` while ``assignment`` is open: three small
    queries, the claimable count bounded by ``PROGRESS_COUNT_CAP``."""
    user_id = membership.user_id
    mine = Assignment.objects.filter(queue_id=queue.pk, reviewer_id=user_id)
    live = Q(state=AssignmentState.LEASED, expires_at__gt=timezone.now()) & ~Q(pk=assignment.pk)
    counts = mine.aggregate(
        done=Count("id", filter=Q(state__in=(AssignmentState.SUBMITTED, AssignmentState.SKIPPED))),
        before=Count("id", filter=live & Q(pk__lt=assignment.pk)),
        held=Count("id", filter=live & Q(pk__gt=assignment.pk)),
    )
    claimable = QueueItem.objects.filter(
        queue_id=queue.pk, status=ItemStatus.OPEN, open_slots__gt=0
    ).exclude(Exists(Assignment.objects.filter(item_id=OuterRef("pk"), reviewer_id=user_id)))
    if queue.assignment_strategy in (AssignmentStrategy.ROUND_ROBIN, AssignmentStrategy.MANUAL):
        claimable = claimable.filter(assignees__contains=[user_id])
    elif queue.assignment_strategy == AssignmentStrategy.SKILLS:
        entry = QueueReviewer.objects.filter(queue_id=queue.pk, membership=membership).first()
        skills, languages = (entry.skills, entry.languages) if entry else ([], [])
        claimable = claimable.filter(
            Q(language="") | Q(language__in=languages), required_skills__contained_by=skills
        )
    open_ = claimable.values("pk")[: PROGRESS_COUNT_CAP + 1].count()
    return QueueProgress(
        done=counts["done"] + counts["before"],
        waiting=counts["held"] + min(open_, PROGRESS_COUNT_CAP),
        capped=open_ > PROGRESS_COUNT_CAP,
    )


def live_assignment_on_item(*, item_id: int, user: Any) -> Assignment | None:
    """The reviewer's live lease on one item, if they hold one."""
    return Assignment.objects.filter(
        item_id=item_id, reviewer=user, state=AssignmentState.LEASED, expires_at__gt=timezone.now()
    ).first()


def work_page(*, membership: Membership) -> WorkPage:
    """My work, and whether the member has review work (a pool of a live queue, or a
    lease they hold), for the landing after sign-in (``projects.hooks.work_page``)."""
    has_work = (
        QueueReviewer.objects.filter(
            membership=membership, queue__archived_at__isnull=True
        ).exists()
        or Assignment.objects.filter(
            reviewer_id=membership.user_id, state=AssignmentState.LEASED
        ).exists()
    )
    url = reverse("review-my-work", kwargs={"org_slug": membership.organization.slug})
    return WorkPage(url=url, has_work=has_work)


def decisions_for(*, item_ids: list[int], user: Any) -> dict[int, list[Adjudication]]:
    """The decisions on ``item_ids`` that ``user`` may read (the blind rule), by item,
    newest first, with who decided: one query, for My history's page of rows."""
    found: dict[int, list[Adjudication]] = {}
    decisions = (
        Adjudication.objects.filter(item_id__in=item_ids)
        .filter(visibility.adjudications_visible_to(user))
        .select_related("adjudicator")
        .order_by("item_id", "-created_at", "-id")
    )
    for decision in decisions:
        found.setdefault(decision.item_id, []).append(decision)
    return found


def comment_for_page(*, comment_id: int, project: Any) -> Comment | None:
    """A comment of ``project`` (another project's or organization's: None), with its
    author and trace."""
    return (
        Comment.objects.filter(pk=comment_id, project=project)
        .select_related("author", "trace", "item")
        .first()
    )


def my_answer_on_item(*, item_id: int, user: Any) -> Annotation | None:
    """The reviewer's own answer to one item, if they gave one."""
    return Annotation.objects.filter(item_id=item_id, reviewer=user).order_by("-pk").first()


def item_comments(*, item_id: int, user: Any) -> tuple[list[dict[str, Any]], int]:
    """The comments on one item that ``user`` may read (the blind rule), oldest first,
    and how many the rule hides from them for now."""
    on_item = Comment.objects.filter(item_id=item_id)
    visible = list(
        on_item.filter(visibility.comments_visible_to(user))
        .select_related("author", "trace", "span")
        .order_by("created_at", "id")
    )
    hidden = on_item.count() - len(visible)
    return [selectors.comment_as_dict(c) for c in visible], hidden


# My history lists this many of my latest skips under my answers.
SKIPS_SHOWN = 20


def my_skips(*, membership: Membership) -> list[Assignment]:
    """My latest skipped items in the projects I see, newest first, with their reason and
    the item's trace (to tell them apart)."""
    return list(
        Assignment.objects.filter(
            reviewer_id=membership.user_id,
            state=AssignmentState.SKIPPED,
            queue__project__in=projects_visible_to(membership),
        )
        .select_related("queue", "queue__project", "item", "item__trace", "item__thread")
        .order_by("-ended_at", "-id")[:SKIPS_SHOWN]
    )
