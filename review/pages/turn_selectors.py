"""Reads for a conversation reviewed turn by turn (a thread item): the comments on each
turn that the reader may see (``review.visibility``: comments on an item follow the
blind rule) and an annotation's turn ratings as a person reads them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from review import selectors, visibility
from review.models import Annotation, Comment, QueueItem
from review.services.turns import turn_in_words, turn_rows
from traces.models import Trace


def turn_comments(*, item: QueueItem, turns: Sequence[Trace], user: Any) -> dict[int, list[dict]]:
    """The comments on each turn of ``item`` (on the item, naming the turn's trace and
    no span) that ``user`` may read, oldest first, by the turn's trace row id: one query."""
    if not turns:
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    comments = (
        Comment.objects.filter(
            item_id=item.pk, trace_id__in=[t.pk for t in turns], span__isnull=True
        )
        .filter(visibility.comments_visible_to(user))
        .select_related("author", "trace", "span")
        .order_by("created_at", "id")
    )
    for comment in comments:
        found.setdefault(comment.trace_id, []).append(selectors.comment_as_dict(comment))
    return found


def turn_ratings_for_display(annotation: Annotation) -> list[dict[str, Any]]:
    """An annotation's turn ratings, turn by turn, in words (the lead's page of one
    review): the turn's place and trace id, the rating and the note."""
    return [
        {
            "turn": entry.get("turn"),
            "trace_id": trace_id,
            "rating": entry.get("rating") or "",
            "note": entry.get("note") or "",
            "words": turn_in_words(entry),
        }
        for trace_id, entry in turn_rows(annotation.turns)
    ]
