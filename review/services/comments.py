"""Comments on traces, spans and queue items, with @mentions."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Q

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import DomainError, PermissionDenied
from projects.models import MANAGE_ROLES, Membership, Project
from projects.selectors import membership_sees_project
from review.models import (
    Comment,
    QueueItem,
)
from review.services.common import require_person, time_now
from review.services.events import announce_mentions
from traces.models import Span, Trace

MENTION = re.compile(r"@([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")


def _mentioned_user_ids(project: Project, body: str) -> list[int]:
    emails = {m.lower().rstrip(".") for m in MENTION.findall(body)}
    if not emails:
        return []
    memberships = Membership.objects.filter(user__email__in=emails).select_related("user")
    return sorted(m.user_id for m in memberships if membership_sees_project(m, project))


def comment_create(
    *,
    actor: Actor,
    project: Project,
    body: str,
    trace_id: int | None = None,
    span_id: int | None = None,
    item_id: int | None = None,
) -> Comment:
    """A comment on a trace, a span or a queue item, with its @mentions announced.
    On an item it may name a span of the item's target (``span_id``) or, on a
    conversation, one of its turns (``trace_id``: a trace of the item's thread); such
    a comment belongs to the item, so the blind rule covers it."""
    user = require_person(actor, "Commenting")
    body = (body or "").strip()
    if not body:
        raise DomainError("A comment needs text.", details={"body": ["required"]})
    given = [v for v in (trace_id, span_id, item_id) if v is not None]
    on_item_span = item_id is not None and span_id is not None and trace_id is None
    on_item_turn = item_id is not None and trace_id is not None and span_id is None
    if len(given) != 1 and not on_item_span and not on_item_turn:
        raise DomainError(
            "Name exactly one of trace_id, span_id or item_id.",
            details={"target": ["exactly one of trace_id, span_id, item_id"]},
        )
    with audit.acting_as(actor), transaction.atomic():
        fields: dict[str, Any] = {}
        if trace_id is not None and item_id is None:
            if not Trace.objects.filter(project=project, pk=trace_id).exists():
                raise DomainError(
                    f"No trace {trace_id} in this project.", details={"trace_id": ["not found"]}
                )
            fields = {"trace_id": trace_id}
        elif span_id is not None and item_id is None:
            span = Span.objects.filter(project=project, pk=span_id).values("trace_id").first()
            if span is None:
                raise DomainError(
                    f"No span {span_id} in this project.", details={"span_id": ["not found"]}
                )
            fields = {"trace_id": span["trace_id"], "span_id": span_id}
        else:
            item = QueueItem.objects.filter(project=project, pk=item_id).first()
            if item is None:
                raise DomainError(
                    f"No queue item {item_id} in this project.",
                    details={"item_id": ["not found"]},
                )
            fields = {"item_id": item.pk, "trace_id": item.trace_id, "span_id": item.span_id}
            if span_id is not None:
                # A span of the item's trace (or of a turn of its thread), discussed in
                # the review: the comment belongs to the item too, so the blind rule
                # covers it.
                in_target = Q(pk__in=[])
                if item.trace_id is not None:
                    in_target |= Q(trace_id=item.trace_id)
                if item.thread_id is not None:
                    in_target |= Q(trace__thread_id=item.thread_id)
                span = (
                    Span.objects.filter(in_target, pk=span_id, project=project)
                    .values("trace_id")
                    .first()
                )
                if span is None:
                    raise DomainError(
                        f"No span {span_id} in this item's trace.",
                        details={"span_id": ["not found"]},
                    )
                fields.update(trace_id=span["trace_id"], span_id=span_id)
            elif trace_id is not None:
                # A turn of the item's conversation (a trace of its thread), discussed
                # in the review: on the item too, so the blind rule covers it.
                in_thread = item.thread_id is not None and (
                    Trace.objects.filter(
                        project=project, pk=trace_id, thread_id=item.thread_id
                    ).exists()
                )
                if not in_thread:
                    raise DomainError(
                        f"No turn {trace_id} in this item's conversation.",
                        details={"trace_id": ["not a turn of this item"]},
                    )
                fields.update(trace_id=trace_id)
        comment = Comment.objects.create(
            project=project,
            author=user,
            body=body,
            mentions=_mentioned_user_ids(project, body),
            **fields,
        )
        announce_mentions(comment, comment.mentions)
        return comment


def comment_update(*, actor: Actor, comment: Comment, body: str) -> Comment:
    user = require_person(actor, "Editing a comment")
    body = (body or "").strip()
    if not body:
        raise DomainError("A comment needs text.", details={"body": ["required"]})
    with audit.acting_as(actor), transaction.atomic():
        comment = Comment.objects.select_for_update().get(pk=comment.pk)
        if comment.author_id != user.pk:
            raise PermissionDenied("Only its author can edit a comment.", code="not_author")
        comment.body = body
        mentioned_before = set(comment.mentions)
        comment.mentions = _mentioned_user_ids(Project.objects.get(pk=comment.project_id), body)
        comment.edited_at = time_now()
        comment.save()
        announce_mentions(comment, set(comment.mentions) - mentioned_before)
    return comment


def comment_delete(*, actor: Actor, comment: Comment, membership: Membership | None) -> None:
    with audit.acting_as(actor), transaction.atomic():
        is_author = actor.user is not None and comment.author_id == actor.user.pk
        if not is_author and (membership is None or membership.role not in MANAGE_ROLES):
            raise PermissionDenied("Only its author or a manager can delete a comment.")
        comment.delete()
