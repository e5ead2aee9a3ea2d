"""Reads for the reviewer's web pages: My work (queues, what waits, my pace, the team)
and the focused review page (the item, its trace or thread, the form).

What a person may see of others' answers and of scores is decided by
``review.visibility`` through the selectors it serves (``review.selectors.item_detail``,
``traces.selectors.trace_detail``); nothing here filters answers or scores itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Exists, F, OuterRef, Q
from django.utils import timezone

from projects.models import MANAGE_ROLES, Membership
from projects.selectors import projects_visible_to
from review import selectors
from review.models import (
    Annotation,
    Assignment,
    AssignmentState,
    AssignmentStrategy,
    ItemStatus,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
)
from traces import selectors as trace_selectors
from traces.models import Trace


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


def review_page(*, assignment: Assignment, user: Any, turn: str | None = None) -> dict[str, Any]:
    """Everything the focused review page shows for one lease: the form, the trace's
    span tree (or the thread's turns and the chosen turn's spans), the span to open
    first, and what the blind rule lets ``user`` see of others' answers and scores."""
    item = assignment.item
    queue = assignment.queue
    detail = selectors.item_detail(item=item, user=user)
    others = [a for a in detail["annotations"] if a["reviewer"]["id"] != user.pk]
    page: dict[str, Any] = {
        "item": item,
        "queue": queue,
        "form": selectors.form_for_reviewer(queue),
        "revealed": detail["revealed"],
        "other_annotations": others,
        "item_scores": detail["scores"],
        "turns": [],
        "trace": None,
        "spans": [],
        "initial_span": None,
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
    if trace is not None:
        data = trace_selectors.trace_detail(trace=trace, viewer=user)
        total = max(
            [(s["offset_ms"] or 0) + (s["duration_ms"] or 0) for s in data["spans"]]
            + [data["latency_ms"] or 0, 1]
        )
        for span in data["spans"]:
            offset, duration = span["offset_ms"] or 0, span["duration_ms"] or 0
            span["bar_left"] = round(100 * offset / total, 2)
            span["bar_width"] = round(max(100 * duration / total, 0.5), 2)
            span["is_error"] = span["status"] == "error" or bool(span["error_message"])
        page["trace"] = data
        page["spans"] = data["spans"]
        if item.span is not None:
            page["initial_span"] = item.span.external_id
        elif data["spans"]:
            page["initial_span"] = data["spans"][0]["span_id"]
    return page
