"""Claiming and leases: claim next, skip, release, submit, lease expiry and a manager
taking an item back from the reviewers who hold it.

Lock order: a queue item's row first, then its assignments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import F

from hitl import audit, sql_rows, tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from projects.models import REVIEW_ROLES
from review import hooks
from review.models import (
    Annotation,
    Assignment,
    AssignmentState,
    AssignmentStrategy,
    ClaimOrder,
    ItemStatus,
    QueueItem,
    ReviewQueue,
    SuggestionMode,
)
from review.selectors import queue_form
from review.services.annotations import (
    expected_output_of,
    scores_write,
    validate_answers,
)
from review.services.common import require_manager, require_person, time_now
from review.services.events import announce_items_assigned
from review.services.lifecycle import item_close, queue_check_open, queue_pool_user_ids
from review.services.suggestions import suggestion_record
from review.services.turns import turn_scores_write, validate_turns

_CLAIM_SQL = """
WITH pool AS (
    SELECT m.role, qr.skills, qr.languages
    FROM review_queuereviewer qr
    JOIN projects_membership m ON m.id = qr.membership_id
    WHERE qr.queue_id = %(queue_id)s AND qr.organization_id = %(organization_id)s
      AND m.user_id = %(user_id)s
), gate AS (
    SELECT {refused} AS refused
), picked AS (
    SELECT qi.id FROM review_queueitem qi
    WHERE qi.queue_id = %(queue_id)s AND qi.organization_id = %(organization_id)s
      AND qi.status = 'open' AND qi.open_slots > 0
      AND EXISTS (SELECT 1 FROM pool WHERE pool.role = ANY(%(review_roles)s::varchar[]))
      AND NOT (SELECT refused FROM gate)
      AND NOT EXISTS (
          SELECT 1 FROM review_assignment a
          WHERE a.item_id = qi.id AND a.reviewer_id = %(user_id)s)
      {strategy}
    ORDER BY {order}
    LIMIT 1
    FOR UPDATE OF qi SKIP LOCKED
), bumped AS (
    UPDATE review_queueitem qi
    SET live_leases = qi.live_leases + 1, open_slots = qi.open_slots - 1
    FROM picked WHERE qi.id = picked.id
    RETURNING qi.id
), leased AS (
    INSERT INTO review_assignment
        (organization_id, queue_id, item_id, reviewer_id, state, leased_at, expires_at,
         skip_reason)
    SELECT %(organization_id)s, %(queue_id)s, bumped.id, %(user_id)s, 'leased',
           %(now)s, %(expires_at)s, ''
    FROM bumped
    RETURNING id, item_id
)
SELECT (SELECT role FROM pool),
       (SELECT refused FROM gate),
       EXISTS (SELECT 1 FROM review_assignment a
               WHERE a.queue_id = %(queue_id)s AND a.state = 'leased'
                 AND a.expires_at <= %(now)s),
       leased.id, leased.item_id
FROM (SELECT 1) AS one LEFT JOIN leased ON true
"""


_STRATEGY_SQL = {
    AssignmentStrategy.PULL: "",
    AssignmentStrategy.ROUND_ROBIN: "AND %(user_id)s = ANY(qi.assignees)",
    AssignmentStrategy.MANUAL: "AND %(user_id)s = ANY(qi.assignees)",
    AssignmentStrategy.SKILLS: (
        "AND qi.required_skills <@ (SELECT skills FROM pool)"
        " AND (qi.language = '' OR qi.language IN (SELECT unnest(languages) FROM pool))"
    ),
}


# The claim order of each ClaimOrder, each read from its own partial index
# (``queue_item_claimable``, ``queue_item_claimable_complete``): within a priority,
# breadth first offers the oldest item; complete first offers the item with the most
# submitted reviews (an item holding a review before an untouched one), then the oldest.
_ORDER_SQL = {
    ClaimOrder.BREADTH_FIRST: "qi.priority DESC, qi.created_at, qi.id",
    ClaimOrder.COMPLETE_FIRST: "qi.priority DESC, qi.submissions DESC, qi.created_at, qi.id",
}


def claim_sql(queue: ReviewQueue) -> str:
    """The claim statement for ``queue``'s strategy and claim order, with the claim
    gates that ask in SQL (``review.hooks``); its parameters: ``claim_params``."""
    return _CLAIM_SQL.format(
        strategy=_STRATEGY_SQL[queue.assignment_strategy],
        order=_ORDER_SQL[queue.claim_order],
        refused=hooks.claim_gates_refusal_sql(),
    )


def claim_params(queue: ReviewQueue, user_id: int, now: Any) -> dict[str, Any]:
    return {
        "queue_id": queue.pk,
        "organization_id": queue.organization_id,
        "user_id": user_id,
        "now": now,
        "expires_at": now + timedelta(seconds=queue.lease_ttl_seconds),
        "review_roles": _REVIEW_ROLES,
    }


_REVIEW_ROLES = sorted(REVIEW_ROLES)


def queue_claim_next(*, actor: Actor, queue: ReviewQueue) -> Assignment | None:
    """Leases the next item for the acting reviewer, or None when nothing is left.

    One statement (one round trip, server-side prepared): check the reviewer is in the
    pool and that no claim gate refuses them, pick the first claimable item in the
    queue's claim order that they never held, skipping rows other claimers hold locked,
    bump its counters and insert the lease. The row lock plus ``open_slots > 0``
    (rechecked on the locked row) keep live leases plus submissions at or under the
    overlap whatever the concurrency. Overdue leases found on the way are expired at
    once, and the claim retried if it came back empty. A gate that refused is asked
    again in Python, to raise its reason.
    """
    user = require_person(actor, "Claiming an item")
    queue_check_open(queue)
    hooks.claim_gates_check(queue=queue, user_id=user.pk, with_sql=False)
    tenancy.assert_writing_in_scope(queue.organization_id)
    sql = claim_sql(queue)
    for attempt in range(2):
        now = time_now()
        params = claim_params(queue, user.pk, now)
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            role, refused, overdue, assignment_id, item_id = cursor.fetchone()
        if role is None:
            raise PermissionDenied("You are not in this queue's reviewer pool.", code="not_in_pool")
        if role not in REVIEW_ROLES:
            raise PermissionDenied(f"Your role ({role}) cannot review.", code="not_a_reviewer")
        if refused:
            hooks.claim_gates_check(queue=queue, user_id=user.pk)
            if not attempt:  # it let them through since: claim again
                continue
            return None
        if overdue:
            leases_expire(queue_id=queue.pk, limit=200)
        if assignment_id is not None or not overdue or attempt:
            break
    if assignment_id is None:
        return None
    return Assignment(
        pk=assignment_id,
        organization_id=queue.organization_id,
        queue_id=queue.pk,
        item_id=item_id,
        reviewer_id=user.pk,
        state=AssignmentState.LEASED,
        leased_at=now,
        expires_at=params["expires_at"],
    )


def _adjust_counters(item: QueueItem, *, live: int = 0, submitted: int = 0, slots: int = 0) -> None:
    """Moves a locked item's claim counters, in the row and in memory. The counters are
    not historied (they change on every claim); status changes are saved with history."""
    QueueItem.objects.filter(pk=item.pk).update(
        live_leases=F("live_leases") + live,
        submissions=F("submissions") + submitted,
        open_slots=F("open_slots") + slots,
    )
    item.live_leases += live
    item.submissions += submitted
    item.open_slots += slots


# A lapsed lease whose slot another reviewer took meanwhile (``accept_lapsed``).
TAKEN_BY_ANOTHER = (
    "Your time on this item ran out and another reviewer has taken it: your answers were "
    "not saved on it. Copy your notes before you move on."
)


def _retake(item: QueueItem, assignment: Assignment) -> None:
    """A locked lease that expired becomes live again, if its item still has the slot it
    freed (nobody else took it): ``Conflict`` (``lease_taken``) otherwise."""
    if item.status != ItemStatus.OPEN or item.open_slots <= 0:
        raise Conflict(TAKEN_BY_ANOTHER, code="lease_taken")
    tenancy.assert_writing_in_scope(item.organization_id)
    Assignment.objects.filter(pk=assignment.pk).update(state=AssignmentState.LEASED, ended_at=None)
    assignment.state, assignment.ended_at = AssignmentState.LEASED, None
    _adjust_counters(item, live=1, slots=-1)


# Locks an assignment's item (reading its queue beside it), then the assignment: the
# house lock order in one statement. The item's lock is taken in the materialized
# ``item`` CTE and the assignment's at the top of the plan, over the join that reads
# that CTE, so the item is always locked first; each locked row is read as it is once
# locked (READ COMMITTED re-reads a row that changed while the statement waited).
_LOCK_ASSIGNMENT_SQL = """
WITH item AS MATERIALIZED (
    SELECT {item} FROM review_queueitem qi
    WHERE qi.id = (SELECT a.item_id FROM review_assignment a
                   WHERE a.id = %(assignment_id)s AND a.organization_id = %(organization_id)s)
      AND qi.organization_id = %(organization_id)s
    FOR UPDATE OF qi
)
SELECT item.*, {queue}, {assignment}
FROM item
JOIN review_reviewqueue q ON q.id = item.queue_id AND q.organization_id = %(organization_id)s
JOIN review_assignment a ON a.id = %(assignment_id)s AND a.organization_id = %(organization_id)s
FOR UPDATE OF a
"""


def _lock_assignment_sql() -> str:
    return sql_rows.statement(
        _LOCK_ASSIGNMENT_SQL,
        item=(QueueItem, "qi"),
        queue=(ReviewQueue, "q"),
        assignment=(Assignment, "a"),
    )


def _lock_assignment(
    assignment_id: int, user: Any, *, lapsed_ok: bool = False
) -> tuple[QueueItem, Assignment]:
    """Locks an assignment's item, then the assignment (the house lock order), in one
    statement, with the item's queue. ``lapsed_ok``: a lease past its time is accepted,
    and one already expired is taken again when nobody else took its item's slot
    (``_retake``)."""
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(
            _lock_assignment_sql(),
            {
                "assignment_id": assignment_id,
                "organization_id": tenancy.current_organization_id(),
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such lease.")
    item = sql_rows.instance(QueueItem, row)
    queue_at = sql_rows.width(QueueItem)
    item.queue = sql_rows.instance(ReviewQueue, row, queue_at)
    assignment = sql_rows.instance(Assignment, row, queue_at + sql_rows.width(ReviewQueue))
    if assignment.reviewer_id != user.pk:
        raise PermissionDenied("This lease belongs to another reviewer.", code="not_your_lease")
    if assignment.state == AssignmentState.RELEASED and assignment.skip_reason:
        raise Conflict(
            f"{assignment.skip_reason}: this item went back to the queue and your answers "
            "were not saved. Claim the next item.",
            code="lease_taken_back",
        )
    if assignment.state == AssignmentState.EXPIRED and lapsed_ok:
        _retake(item, assignment)
    if assignment.state != AssignmentState.LEASED:
        raise Conflict(
            f"This lease is already {assignment.state}.",
            code=f"lease_{assignment.state}",
        )
    if assignment.expires_at <= time_now() and not lapsed_ok:
        raise Conflict(
            f"Your lease expired at {assignment.expires_at.isoformat()}; the item went back "
            "to the pool. Claim the next item.",
            code="lease_expired",
        )
    return item, assignment


_END_LEASE_SQL = """
WITH ended AS (
    UPDATE review_assignment SET state = %(state)s, ended_at = %(now)s,
                                 skip_reason = %(reason)s
    WHERE id = %(assignment_id)s AND organization_id = %(organization_id)s
), dropped AS (
    DELETE FROM review_reviewdraft
    WHERE item_id = %(item_id)s AND reviewer_id = %(reviewer_id)s
      AND organization_id = %(organization_id)s
)
UPDATE review_queueitem
SET live_leases = live_leases - 1, submissions = submissions + %(submitted)s,
    open_slots = open_slots + %(freed)s
WHERE id = %(item_id)s AND organization_id = %(organization_id)s
"""


def _end_lease(item: QueueItem, assignment: Assignment, state: str, reason: str = "") -> None:
    """Ends a locked lease, moves its item's counters and drops the reviewer's draft on
    it, in one statement (neither the lease, the counters nor drafts are historied; the
    annotation and status changes are)."""
    submitted = state == AssignmentState.SUBMITTED
    tenancy.assert_writing_in_scope(item.organization_id)
    assignment.state, assignment.ended_at, assignment.skip_reason = state, time_now(), reason
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(
            _END_LEASE_SQL,
            {
                "state": state,
                "now": assignment.ended_at,
                "reason": reason,
                "assignment_id": assignment.pk,
                "organization_id": item.organization_id,
                "submitted": int(submitted),
                "freed": 0 if submitted else 1,
                "item_id": item.pk,
                "reviewer_id": assignment.reviewer_id,
            },
        )
    item.live_leases -= 1
    item.submissions += int(submitted)
    item.open_slots += 0 if submitted else 1


def _end_without_review(item: QueueItem, assignment: Assignment, state: str, reason: str) -> None:
    _end_lease(item, assignment, state, reason)
    _repush(item, [assignment.reviewer_id])


def _repush(item: QueueItem, leaving: Sequence[int]) -> None:
    """A round-robin item whose assignee gave it back goes on to the next pool member
    (after the one leaving, in pool order) who has not had it yet."""
    queue = item.queue
    if queue.assignment_strategy != AssignmentStrategy.ROUND_ROBIN:
        return
    leaving = list(leaving)
    seen = set(Assignment.objects.filter(item=item).values_list("reviewer_id", flat=True))
    seen |= set(leaving)
    keep = [a for a in item.assignees if a not in leaving]
    pool = queue_pool_user_ids(queue)
    for leaver in leaving:
        after = pool.index(leaver) + 1 if leaver in pool else 0
        rotated = pool[after:] + pool[:after]
        candidates = [u for u in rotated if u not in seen and u not in keep]
        if candidates:
            keep.append(candidates[0])
    if keep != list(item.assignees):
        new = [user_id for user_id in keep if user_id not in item.assignees]
        item.assignees = keep
        item.save()
        announce_items_assigned(queue, {user_id: [item.pk] for user_id in new})


def assignment_skip(*, actor: Actor, assignment_id: int, reason: str) -> Assignment:
    user = require_person(actor, "Skipping an item")
    if not reason or not reason.strip():
        raise DomainError("Say why you skip this item.", details={"reason": ["required"]})
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user)
        _end_without_review(item, assignment, AssignmentState.SKIPPED, reason.strip())
    return assignment


def assignment_release(*, actor: Actor, assignment_id: int) -> Assignment:
    user = require_person(actor, "Releasing an item")
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user)
        _end_without_review(item, assignment, AssignmentState.RELEASED, "")
    return assignment


def assignment_renew(*, actor: Actor, assignment_id: int) -> Assignment:
    """The reviewer is still at work on the item: their lease runs the queue's lease
    time again from now. A lease that lapsed is renewed too, and one already expired
    is taken again if nobody took its item meanwhile; otherwise ``Conflict``
    (``lease_taken``, or why the lease ended). Not historied (a lease's times are its
    own record)."""
    user = require_person(actor, "Keeping an item")
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user, lapsed_ok=True)
        assignment.expires_at = time_now() + timedelta(seconds=item.queue.lease_ttl_seconds)
        Assignment.objects.filter(pk=assignment.pk).update(expires_at=assignment.expires_at)
    return assignment


def assignment_submit(
    *,
    actor: Actor,
    assignment_id: int,
    values: Mapping[str, Any],
    explanation: str = "",
    expected_output: Any = None,
    failure_modes: Sequence[str] = (),
    accept_lapsed: bool = False,
    suggestions_seen: Sequence[Any] | None = None,
    suggestions_accepted: Sequence[Any] | None = None,
    turns: Mapping[str, Any] | None = None,
) -> Annotation:
    """Records one reviewer's answers for the item they hold, as human scores too, and
    drops their draft. ``accept_lapsed``: a lease that ran out is still accepted when
    nobody else has taken the item (``Conflict`` ``lease_taken`` when someone has).
    ``suggestions_seen``/``suggestions_accepted``: the config ids whose judge suggestion
    the client displayed and took with the accept key; the annotation records what was
    shown (``review.services.suggestions``), and the item's A/B arm is fixed.
    ``turns``: a conversation's turns rated one by one (trace id -> rating and note,
    ``review.services.turns``), kept on the annotation and written as a human score
    on each rated turn's trace."""
    user = require_person(actor, "Submitting a review")
    with audit.acting_as(actor), transaction.atomic():
        item, assignment = _lock_assignment(assignment_id, user, lapsed_ok=accept_lapsed)
        form = queue_form(item.queue)
        cleaned, versions = validate_answers(form, values)
        rated_turns = validate_turns(item, turns)
        shown = suggestion_record(
            item=item,
            queue=item.queue,
            form=form,
            answers=cleaned,
            seen=suggestions_seen,
            accepted=suggestions_accepted,
        )
        if not item.suggestion_arm and item.queue.suggestion_mode != SuggestionMode.OFF:
            item.suggestion_arm = shown["arm"]
            item.save(update_fields=["suggestion_arm"])
        now = time_now()
        annotation = Annotation(
            project_id=item.project_id,
            queue_id=item.queue_id,
            item=item,
            assignment=assignment,
            reviewer=user,
            target_type=item.target_type,
            trace_id=item.trace_id,
            span_id=item.span_id,
            thread_id=item.thread_id,
            values=cleaned,
            config_versions=versions,
            explanation=explanation or "",
            expected_output=expected_output_of(form, cleaned, expected_output),
            failure_modes=list(dict.fromkeys(failure_modes)),
            suggestions=shown,
            turns=rated_turns,
            opened_at=assignment.leased_at,
            submitted_at=now,
            updated_at=now,
        )
        audit.insert_recorded([annotation])
        scores_write(
            form=form,
            values=cleaned,
            item=item,
            author=user,
            link={"annotation_id": annotation.pk},
        )
        turn_scores_write(item=item, turns=rated_turns, author=user, annotation_id=annotation.pk)
        _end_lease(item, assignment, AssignmentState.SUBMITTED)
        if item.submissions >= item.queue.overlap and item.status == ItemStatus.OPEN:
            item_close(item, form)
        hooks.answers_changed.send(sender=ReviewQueue, queue=item.queue)
    return annotation


# Why a lease a manager ended ended, kept in the lease's ``skip_reason`` (a reviewer's
# own release leaves it empty): the reviewer's page and a refused submit say it.
TAKEN_BACK = "Taken back by {who}"


def leases_take_back(
    items: Sequence[QueueItem], *, by: Any, reviewer_id: int | None = None
) -> dict[int, list[Assignment]]:
    """Ends the live leases on ``items`` (locked by the caller, in the transaction),
    every holder's or only ``reviewer_id``'s: each lease becomes "released" with
    ``TAKEN_BACK`` naming ``by`` as its reason, and its item's counters move as a release
    moves them (``live_leases`` down, ``open_slots`` up, so live leases + submissions +
    open slots stays the overlap). Nothing the holder typed was saved (answers exist only
    once submitted), so nothing is kept. Sets each taken-back item's ``_change_reason``
    (who was taken back, by whom) for the history row the caller writes. Returns item
    id -> the leases ended."""
    if not items:
        return {}
    by_id = {item.pk: item for item in items}
    live = Assignment.objects.select_for_update().filter(
        item_id__in=list(by_id), state=AssignmentState.LEASED
    )
    if reviewer_id is not None:
        live = live.filter(reviewer_id=reviewer_id)
    leases = list(live.select_related("reviewer").order_by("item_id", "id"))
    if not leases:
        return {}
    now = time_now()
    reason = TAKEN_BACK.format(who=getattr(by, "email", "") or str(by))
    Assignment.objects.filter(pk__in=[a.pk for a in leases]).update(
        state=AssignmentState.RELEASED, ended_at=now, skip_reason=reason
    )
    ended: dict[int, list[Assignment]] = {}
    for lease in leases:
        lease.state, lease.ended_at, lease.skip_reason = AssignmentState.RELEASED, now, reason
        ended.setdefault(lease.item_id, []).append(lease)
    for item_id, gone in ended.items():
        item = by_id[item_id]
        _adjust_counters(item, live=-len(gone), slots=len(gone))
        holders = ", ".join(lease.reviewer.email for lease in gone)
        item._change_reason = f"Took back the lease of {holders}"
    return ended


def item_take_back(
    *, actor: Actor, item: QueueItem, reviewer_id: int | None = None
) -> list[Assignment]:
    """A manager ends the live leases on an item (every holder's, or one reviewer's):
    the item is claimable again at once, by anyone the strategy allows (a round-robin
    item goes on to the next pool member, as after a release). The holder's open page
    then says who took it back, and their submit is refused (409 ``lease_taken_back``).
    History: a row on the item under the manager, its change reason naming the holders.
    ``Conflict`` (``no_live_lease``) when nobody (or not that reviewer) holds it."""
    user = require_manager(actor, item.organization_id, "Taking an item back")
    with audit.acting_as(actor), transaction.atomic():
        item = (
            QueueItem.objects.select_for_update(of=("self",))
            .select_related("queue")
            .filter(pk=item.pk)
            .first()
        )
        if item is None:
            raise NotFound("No such item.")
        tenancy.assert_writing_in_scope(item.organization_id)
        ended = leases_take_back([item], by=user, reviewer_id=reviewer_id).get(item.pk, [])
        if not ended:
            whom = "this reviewer" if reviewer_id is not None else "nobody"
            raise Conflict(
                f"No live lease to take back: {whom} holds this item now.",
                code="no_live_lease",
            )
        before = list(item.assignees or ())
        _repush(item, [lease.reviewer_id for lease in ended])
        if list(item.assignees or ()) == before:
            item.save(update_fields=["assignees"])  # the history row, with the reason
    return ended


def leases_expire(*, queue_id: int | None = None, limit: int = 1000) -> int:
    """Returns overdue leases' items to the pool. Locks items first (skipping those
    busy right now; the next run gets them), then their assignments. Idempotent."""
    now = time_now()
    due = Assignment.objects.filter(state=AssignmentState.LEASED, expires_at__lte=now)
    if queue_id is not None:
        due = due.filter(queue_id=queue_id)
    item_ids = sorted(set(due.values_list("item_id", flat=True)[:limit]))
    if not item_ids:
        return 0
    expired = 0
    with audit.acting_as(Actor.system()), transaction.atomic():
        items = list(
            QueueItem.objects.select_for_update(skip_locked=True)
            .select_related("queue")
            .filter(pk__in=item_ids)
            .order_by("id")
        )
        for item in items:
            overdue = list(
                Assignment.objects.select_for_update().filter(
                    item=item, state=AssignmentState.LEASED, expires_at__lte=now
                )
            )
            if not overdue:
                continue
            Assignment.objects.filter(pk__in=[a.pk for a in overdue]).update(
                state=AssignmentState.EXPIRED, ended_at=now
            )
            _adjust_counters(item, live=-len(overdue), slots=len(overdue))
            _repush(item, [a.reviewer_id for a in overdue])
            expired += len(overdue)
    return expired
