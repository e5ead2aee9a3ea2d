"""The events review announces (docs/notifications.md), each built and emitted inside
the service's transaction by one call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model

from projects.models import Project
from projects.notifications import catalogue, event_emit, site_url
from review.models import Comment, ItemStatus, QueueItem

EXCERPT = 500


def _project_path(project: Project) -> str:
    return f"api/orgs/{project.organization.slug}/projects/{project.slug}/"


def announce_item_closed(item: QueueItem, score_names: Sequence[str]) -> None:
    """``review.item.completed`` or ``review.item.needs_adjudication``, by the item's
    new status."""
    event_type = {
        ItemStatus.COMPLETE: catalogue.ITEM_COMPLETED,
        ItemStatus.NEEDS_ADJUDICATION: catalogue.ITEM_NEEDS_ADJUDICATION,
    }.get(item.status)
    if event_type is None:
        return
    queue, project = item.queue, item.project
    what = "is complete" if item.status == ItemStatus.COMPLETE else "needs adjudication"
    event_emit(
        event_type,
        organization_id=item.organization_id,
        project_id=item.project_id,
        queue_id=item.queue_id,
        score_names=score_names,
        payload={
            "summary": f"Item #{item.pk} in the queue {queue.name!r} ({project.name}) {what}.",
            "item": {
                "id": item.pk,
                "status": item.status,
                "target_type": item.target_type,
                "trace_id": item.trace_id,
                "span_id": item.span_id,
                "thread_id": item.thread_id,
            },
            "queue": {"id": queue.pk, "name": queue.name},
            "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            "score_names": sorted(set(score_names)),
            "url": site_url(f"{_project_path(project)}queues/{queue.pk}/items/{item.pk}/"),
        },
    )


def announce_mentions(comment: Comment, mentioned_user_ids: Iterable[int]) -> None:
    """``review.comment.mentioned`` for the people newly mentioned in ``comment``."""
    ids = sorted(set(mentioned_user_ids))
    if not ids:
        return
    project = comment.project
    people = list(
        get_user_model().objects.filter(pk__in=ids).order_by("pk").values_list("pk", "email")
    )
    emails = [email for _pk, email in people]
    author = comment.author.email if comment.author_id else "someone"
    body = comment.body if len(comment.body) <= EXCERPT else comment.body[: EXCERPT - 1] + "…"
    queue_id = None
    if comment.item_id:
        items = QueueItem.objects.filter(pk=comment.item_id)
        queue_id = items.values_list("queue_id", flat=True).first()
    event_emit(
        catalogue.COMMENT_MENTIONED,
        organization_id=comment.organization_id,
        project_id=comment.project_id,
        queue_id=queue_id,
        payload={
            "summary": f"{author} mentioned {', '.join(emails)} in {project.name}: {body}",
            "comment": {
                "id": comment.pk,
                "author": author,
                "excerpt": body,
                "item_id": comment.item_id,
                "trace_id": comment.trace_id,
                "span_id": comment.span_id,
            },
            "mentioned": [{"id": pk, "email": email} for pk, email in people],
            "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            "url": site_url(f"{_project_path(project)}comments/{comment.pk}/"),
        },
    )
