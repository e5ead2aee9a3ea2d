"""Drafts: a reviewer's answers on an item kept as they type, so nothing they wrote is
lost to a closed tab, an ended session, a lapsed lease or a second tab.

One draft per item and reviewer (``review.models.ReviewDraft``). The review page saves
it (debounced) while the reviewer types, and every failed submit keeps what was posted
in it; opening the item again restores it. Submitting, skipping or releasing the item
deletes it (``draft_delete`` inside that transaction). A draft sent for an item already
submitted (another tab) is kept as a ``conflict`` until the reviewer keeps the stored
answer or replaces it (``draft_resolve``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from hitl import audit, tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, NotFound, PermissionDenied
from review.models import Annotation, Assignment, AssignmentState, ReviewDraft
from review.services.common import require_person, time_now


def draft_delete(*, item_id: int, reviewer_id: int) -> None:
    """Drops the reviewer's draft on an item (inside the caller's transaction)."""
    ReviewDraft.objects.filter(item_id=item_id, reviewer_id=reviewer_id).delete()


def draft_save(
    *, actor: Actor, assignment_id: int, data: Mapping[str, Any], conflict: bool = False
) -> ReviewDraft:
    """Keeps ``data`` (the review form as posted, cleaned by the page's form) as the
    acting reviewer's draft on the lease's item, replacing the one before.

    Kept for a live lease and for one that ended without an answer (it lapsed, or a
    manager took it back: the reviewer may still copy their notes). Refused (409
    ``already_submitted``) once the item is submitted, unless ``conflict``: answers a
    second tab sent for it, kept to be compared with the stored ones."""
    user = require_person(actor, "Keeping a draft")
    with audit.acting_as(actor), transaction.atomic():
        assignment = Assignment.objects.filter(pk=assignment_id).first()
        if assignment is None:
            raise NotFound("No such lease.")
        if assignment.reviewer_id != user.pk:
            raise PermissionDenied("This lease belongs to another reviewer.", code="not_your_lease")
        tenancy.assert_writing_in_scope(assignment.organization_id)
        submitted = assignment.state == AssignmentState.SUBMITTED
        if submitted and not conflict:
            raise Conflict("This item is already submitted.", code="already_submitted")
        if assignment.state == AssignmentState.SKIPPED:
            raise Conflict("You skipped this item.", code="lease_skipped")
        draft, _created = ReviewDraft.objects.update_or_create(
            item_id=assignment.item_id,
            reviewer_id=user.pk,
            defaults={
                "organization_id": assignment.organization_id,
                "queue_id": assignment.queue_id,
                "assignment_id": assignment.pk,
                "data": dict(data),
                "conflict": submitted,
                "updated_at": time_now(),
            },
        )
    return draft


def draft_discard(*, actor: Actor, assignment_id: int) -> None:
    """The reviewer drops their draft on the lease's item (they keep the stored answer)."""
    user = require_person(actor, "Dropping a draft")
    with audit.acting_as(actor), transaction.atomic():
        assignment = Assignment.objects.filter(pk=assignment_id, reviewer_id=user.pk).first()
        if assignment is None:
            raise NotFound("No such lease.")
        draft_delete(item_id=assignment.item_id, reviewer_id=user.pk)


def draft_replace_annotation(
    *,
    actor: Actor,
    assignment_id: int,
    expected_version: int,
    values: Mapping[str, Any],
    explanation: str,
    expected_output: Any,
    failure_modes: list[str],
    turns: Mapping[str, Any] | None = None,
) -> Annotation:
    """The reviewer replaces their stored answer on the lease's item with the answers of
    their conflicting draft (already typed by the caller): an edit of the annotation
    through ``annotation_update`` (version-checked, history recorded with the reason),
    and the draft is dropped in the same transaction. ``turns``: a conversation's turn
    ratings, replacing the stored ones (None: a trace's item, nothing to replace)."""
    from review.services.annotations import annotation_update

    user = require_person(actor, "Replacing an answer")
    with audit.acting_as(actor), transaction.atomic():
        annotation = (
            Annotation.objects.filter(assignment_id=assignment_id, reviewer_id=user.pk)
            .only("id", "item_id")
            .first()
        )
        if annotation is None:
            raise NotFound("No answer to replace.")
        updated = annotation_update(
            actor=actor,
            annotation_id=annotation.pk,
            expected_version=expected_version,
            values=values,
            explanation=explanation,
            expected_output=expected_output,
            failure_modes=failure_modes,
            turns=turns,
            change_reason="Replaced by the answers sent from another tab",
        )
        draft_delete(item_id=annotation.item_id, reviewer_id=user.pk)
    return updated
