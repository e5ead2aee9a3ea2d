"""The events review announces (docs/notifications.md), each built and emitted inside
the service's transaction by one call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import connection

from projects.models import Project, QueueAlert
from projects.notifications import catalogue, event_emit, is_subscribed, site_reverse
from review.models import Comment, ItemStatus, QueueItem, ReviewQueue, RoutingRule

EXCERPT = 500
# Item ids listed in one review.item.assigned event (the count is always exact).
MAX_ASSIGNED_IDS = 100
# pg_advisory_xact_lock(class, queue id): backlog and completion checks of one queue run
# one at a time, so two concurrent writers never both (or neither) see the crossing.
_LOCK_CLASS = 0x4E51  # "NQ"
# Items that still wait for a review or a decision.
_WAITING = (ItemStatus.OPEN, ItemStatus.NEEDS_ADJUDICATION)


def _in_project(project: Project) -> dict[str, str]:
    """The URL arguments of a route under the project."""
    return {"org_slug": project.organization.slug, "project_slug": project.slug}


def _queue_payload(queue: ReviewQueue, project: Project) -> dict:
    return {
        "queue": {"id": queue.pk, "name": queue.name},
        "project": {"id": project.pk, "slug": project.slug, "name": project.name},
    }


def _queue_url(queue: ReviewQueue, project: Project) -> str:
    return site_reverse("lead-queue-board", **_in_project(project), queue_pk=queue.pk)


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _lock_queue(queue_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, queue_id])


def announce_items_assigned(queue: ReviewQueue, pushed: Mapping[int, Sequence[int]]) -> None:
    """``review.item.assigned``: one event per reviewer and push (a bulk add of 10,000
    items to a pool of 5 sends 5 events, each with the count and the first item ids).
    ``pushed`` maps a user id to the ids of the items just assigned to them. Claims
    from a pull queue send nothing: the reviewer took the item themselves."""
    pushed = {user_id: ids for user_id, ids in pushed.items() if ids}
    if not pushed or not is_subscribed(catalogue.ITEM_ASSIGNED, project_id=queue.project_id):
        return
    project = Project.objects.select_related("organization").get(pk=queue.project_id)
    emails = dict(get_user_model().objects.filter(pk__in=list(pushed)).values_list("pk", "email"))
    for user_id in sorted(pushed):
        ids = sorted(pushed[user_id])
        email = emails.get(user_id, "a reviewer")
        what = f"item #{ids[0]}" if len(ids) == 1 else f"{len(ids)} items"
        event_emit(
            catalogue.ITEM_ASSIGNED,
            organization_id=queue.organization_id,
            project_id=queue.project_id,
            queue_id=queue.pk,
            payload={
                "summary": f"{what.capitalize()} of the queue {queue.name!r} ({project.name}) "
                f"assigned to {email}.",
                "assignee": {"id": user_id, "email": email},
                "count": len(ids),
                "item_ids": ids[:MAX_ASSIGNED_IDS],
                **_queue_payload(queue, project),
                "url": _queue_url(queue, project),
            },
        )


def announce_backlog(queue: ReviewQueue, added: int) -> None:
    """``review.queue.backlog`` when ``added`` new items take the queue's waiting items
    from under its threshold (``projects.QueueAlert``) to at least it: once per
    crossing, again only after the backlog fell below and rises again."""
    if added <= 0 or not is_subscribed(catalogue.QUEUE_BACKLOG, project_id=queue.project_id):
        return
    alert = QueueAlert.objects.filter(queue_id=queue.pk).first()
    if alert is None:
        return
    _lock_queue(queue.pk)
    waiting = QueueItem.objects.filter(queue_id=queue.pk, status__in=_WAITING).count()
    if not (waiting - added < alert.backlog_threshold <= waiting):
        return
    project = Project.objects.select_related("organization").get(pk=queue.project_id)
    event_emit(
        catalogue.QUEUE_BACKLOG,
        organization_id=queue.organization_id,
        project_id=queue.project_id,
        queue_id=queue.pk,
        payload={
            "summary": f"The queue {queue.name!r} ({project.name}) has {waiting} items waiting "
            f"(threshold {alert.backlog_threshold}).",
            "waiting": waiting,
            "threshold": alert.backlog_threshold,
            **_queue_payload(queue, project),
            "url": _queue_url(queue, project),
        },
    )


def announce_if_queue_completed(item: QueueItem) -> None:
    """``review.queue.completed`` when ``item`` (just closed) was the queue's last item
    waiting for a review or a decision."""
    if item.status in _WAITING or not is_subscribed(
        catalogue.QUEUE_COMPLETED, project_id=item.project_id
    ):
        return
    _lock_queue(item.queue_id)
    if QueueItem.objects.filter(queue_id=item.queue_id, status__in=_WAITING).exists():
        return
    queue, project = item.queue, item.project
    total = QueueItem.objects.filter(queue_id=queue.pk).count()
    event_emit(
        catalogue.QUEUE_COMPLETED,
        organization_id=item.organization_id,
        project_id=item.project_id,
        queue_id=queue.pk,
        payload={
            "summary": f"The queue {queue.name!r} ({project.name}) is complete: all {total} "
            "items are reviewed.",
            "items": total,
            "last_item_id": item.pk,
            **_queue_payload(queue, project),
            "url": _queue_url(queue, project),
        },
    )


def _client_ids(row: QueueItem | Comment, names: Sequence[str]) -> dict[str, str | None]:
    """The trace, span or thread ``row`` names, by the ids their client sent (what the
    API takes and answers; row ids never leave the server)."""
    ids: dict[str, str | None] = {}
    for name in names:
        related = getattr(row, name) if getattr(row, f"{name}_id") is not None else None
        ids[f"{name}_id"] = related.external_id if related is not None else None
    return ids


def announce_item_closed(item: QueueItem, score_names: Sequence[str]) -> None:
    """``review.item.completed`` or ``review.item.needs_adjudication``, by the item's
    new status."""
    event_type = {
        ItemStatus.COMPLETE: catalogue.ITEM_COMPLETED,
        ItemStatus.NEEDS_ADJUDICATION: catalogue.ITEM_NEEDS_ADJUDICATION,
    }.get(item.status)
    # Asked first: the payload reads the project, the trace and the organization.
    if event_type is None or not is_subscribed(event_type, project_id=item.project_id):
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
                **_client_ids(item, ("trace", "span", "thread")),
                "dataset_item_id": item.dataset_item_id,
            },
            "queue": {"id": queue.pk, "name": queue.name},
            "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            "score_names": sorted(set(score_names)),
            "url": site_reverse(
                "queue-item-detail", **_in_project(project), queue_pk=queue.pk, pk=item.pk
            ),
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
                **_client_ids(comment, ("trace", "span")),
            },
            "mentioned": [{"id": pk, "email": email} for pk, email in people],
            "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            # The page where the mentioned person reads it; the API object beside it.
            "url": site_reverse("review-comment", **_in_project(project), comment_pk=comment.pk),
            "api_url": site_reverse("comment-detail", **_in_project(project), pk=comment.pk),
        },
    )


def announce_routing_rule_failing(rule: RoutingRule) -> None:
    """``review.routing_rule.failing`` when routing finds ``rule`` failing and it was
    not already marked failing (the caller holds the rule's row lock, so two workers
    never both announce): once per time it goes from routing to failing."""
    queue = rule.queue
    project = Project.objects.select_related("organization").get(pk=rule.project_id)
    event_emit(
        catalogue.ROUTING_RULE_FAILING,
        organization_id=rule.organization_id,
        project_id=rule.project_id,
        queue_id=rule.queue_id,
        payload={
            "summary": f"The routing rule {rule.name!r} of the queue {queue.name!r} "
            f"({project.name}) fails and routes nothing: {rule.last_error.rstrip('.')}. The "
            "other rules go on routing.",
            "rule": {
                "id": rule.pk,
                "name": rule.name,
                "filter": _excerpt(urlencode(rule.filter_params or {}, doseq=True)),
                "failing_since": rule.failing_since.isoformat() if rule.failing_since else None,
                "error": rule.last_error,
            },
            **_queue_payload(queue, project),
            "url": site_reverse(
                "lead-rule-edit", **_in_project(project), queue_pk=queue.pk, rule_pk=rule.pk
            ),
        },
    )
