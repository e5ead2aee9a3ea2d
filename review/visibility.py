"""The blind rule: what a person may see of an item's answers and of the scores on its
target. Every read of answers, scores, adjudications and item comments asks this
module, so the rule lives here and nowhere else.

In a **blind** queue, a reviewer of its pool sees none of the other answers on an item's
target (annotations of any queue, human scores, LLM-judge and code scores, adjudications,
comments on the item) until they have submitted their own answer on that item, whatever
their lease: never claimed, leased, skipped, released or expired. Their own answers and
scores stay visible.

Who sees everything:

* managers (organization owners and admins), even when they sit in the pool: they can
  read every answer in the admin and in exports anyway;
* a senior reviewer of the queue once the item awaits or has had a decision (disputed,
  adjudicated, sampled for audit): that is when they adjudicate;
* people outside the pool (auditors, viewers, reviewers of other queues): nothing they
  read can anchor a review they cannot give;
* API keys: they act for the project's automation, which managers create; a key holds
  no lease and gives no review.

The target of an item is its trace (a span item names its trace too, so the whole trace
is covered), its thread (with the traces of that thread) or its dataset item (answers
on that item in any queue, and the item's current expected output, which the review
page and the dataset item reads leave out while the reader is blind on it). The rule is
a set of queryset filter expressions, so a list stays one query whatever its length.
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from projects.models import MANAGE_ROLES
from review.models import Annotation, AuditStatus, ItemStatus, QueueItem, QueueReviewer
from traces.models import Score, Trace

_DECIDING = Q(status__in=(ItemStatus.NEEDS_ADJUDICATION, ItemStatus.ADJUDICATED)) | Q(
    audit_status__in=(AuditStatus.PENDING, AuditStatus.DONE)
)


def _person_id(viewer: Any) -> int | None:
    """The user id the rule applies to; None for API keys and anonymous callers."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return None
    return viewer.pk


def _blind_reader_id(viewer: Any) -> int | None:
    """The user id the rule applies to, or None when it cannot hide anything from them:
    an API key, or a person in no blind queue's pool (or there as a manager). One small
    indexed query, which spares every read of people the rule never concerns (managers,
    auditors, viewers, reviewers of open queues) a correlated subquery per row."""
    user_id = _person_id(viewer)
    if user_id is None:
        return None
    in_a_blind_pool = (
        QueueReviewer.objects.filter(membership__user_id=user_id, queue__blind_mode=True)
        .exclude(membership__role__in=MANAGE_ROLES)
        .exists()
    )
    return user_id if in_a_blind_pool else None


def blind_items(viewer: Any) -> QuerySet[QueueItem]:
    """Items whose other answers and scores ``viewer`` may not see yet: items of blind
    queues where they are a pool reviewer (not a manager) without a submitted answer,
    except, for a senior of the queue, items that await or have had a decision."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return QueueItem.objects.none()
    return _blind_items_of(user_id)


def _blind_items_of(user_id: int) -> QuerySet[QueueItem]:
    pool = QueueReviewer.objects.filter(
        queue_id=OuterRef("queue_id"), membership__user_id=user_id
    ).exclude(membership__role__in=MANAGE_ROLES)
    submitted = Annotation.objects.filter(item_id=OuterRef("pk"), reviewer_id=user_id)
    return (
        QueueItem.objects.filter(queue__blind_mode=True)
        .filter(Exists(pool))
        .exclude(Exists(submitted))
        .exclude(_DECIDING, Exists(pool.filter(is_senior=True)))
    )


def _target_match(trace: Any, thread: Any, trace_thread: Any, dataset_item: Any = None) -> Q:
    """Items aimed at a row's target: its trace, its thread, the thread of its trace or
    its dataset item (each an ``OuterRef`` or a value; None matches nothing)."""
    pairs = (
        ("trace_id", trace),
        ("thread_id", thread),
        ("thread_id", trace_thread),
        ("dataset_item_id", dataset_item),
    )
    conditions = [Q(**{column: value}) for column, value in pairs if value is not None]
    return reduce(operator.or_, conditions) if conditions else Q(pk__in=[])


def _blind_on(
    user_id: int, *, trace: str, thread: str, trace_thread: str, dataset_item: str | None = None
) -> Exists:
    """True for a row whose target (the outer row's ``trace``, ``thread``,
    ``trace_thread`` and ``dataset_item`` columns) is the target of one of the user's
    blind items."""
    match = _target_match(
        OuterRef(trace),
        OuterRef(thread),
        OuterRef(trace_thread),
        OuterRef(dataset_item) if dataset_item else None,
    )
    return Exists(_blind_items_of(user_id).filter(match))


def annotations_visible_to(viewer: Any) -> Q:
    """Filter for ``Annotation`` querysets: the annotations ``viewer`` may read."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return Q()
    hidden = _blind_on(
        user_id,
        trace="trace_id",
        thread="thread_id",
        trace_thread="trace__thread_id",
        dataset_item="dataset_item_id",
    )
    return ~Q(hidden) | Q(reviewer_id=user_id)


def scores_visible_to(viewer: Any) -> Q:
    """Filter for ``traces.Score`` querysets: the human and automated scores ``viewer``
    may read (their own always)."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return Q()
    hidden = _blind_on(
        user_id, trace="trace_id", thread="thread_id", trace_thread="trace__thread_id"
    )
    return ~Q(hidden) | Q(author_id=user_id)


def traces_with_hidden_scores(*, viewer: Any, project: Any, cap: int) -> set[int] | None:
    """The ids of ``project``'s traces where ``scores_visible_to(viewer)`` may hide a
    score: a score is hidden when a blind item aims at its trace, its thread or its
    trace's thread, so these are the items' traces, the traces of the items' threads and
    the traces of scores on those threads. None past ``cap`` of any of them."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return set()
    targets = list(
        _blind_items_of(user_id)
        .filter(project=project)
        .filter(Q(trace__isnull=False) | Q(thread__isnull=False))
        .values_list("trace_id", "thread_id")[: cap + 1]
    )
    found = {trace for trace, _ in targets if trace is not None}
    threads = [thread for _, thread in targets if thread is not None]
    if threads:
        found |= set(
            Trace.objects.filter(project=project, thread_id__in=threads).values_list(
                "pk", flat=True
            )[: cap + 1]
        )
        found |= set(
            Score.objects.filter(project=project, thread_id__in=threads, trace__isnull=False)
            .values_list("trace_id", flat=True)
            .distinct()[: cap + 1]
        )
    return None if len(targets) > cap or len(found) > cap else found


def adjudications_visible_to(viewer: Any) -> Q:
    """Filter for ``Adjudication`` querysets."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return Q()
    hidden = _blind_on(
        user_id,
        trace="item__trace_id",
        thread="item__thread_id",
        trace_thread="item__trace__thread_id",
        dataset_item="item__dataset_item_id",
    )
    return ~Q(hidden) | Q(adjudicator_id=user_id)


def comments_visible_to(viewer: Any) -> Q:
    """Filter for ``Comment`` querysets: comments on a queue item are review discussion
    and follow the rule; comments on a trace or span outside any item stay visible."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return Q()
    hidden = _blind_on(
        user_id,
        trace="item__trace_id",
        thread="item__thread_id",
        trace_thread="item__trace__thread_id",
        dataset_item="item__dataset_item_id",
    )
    return Q(item__isnull=True) | ~Q(hidden) | Q(author_id=user_id)


def item_answers_hidden(*, item: QueueItem, viewer: Any) -> bool:
    """Whether ``viewer`` is still blind on ``item``'s target, as the filters above
    would judge the item's own rows (two small queries)."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return False
    trace_thread = item.trace.thread_id if item.trace_id is not None else None
    match = _target_match(item.trace_id, item.thread_id, trace_thread, item.dataset_item_id)
    return _blind_items_of(user_id).filter(match).exists()


def blind_dataset_item_ids(viewer: Any) -> QuerySet[QueueItem]:
    """The dataset items ``viewer`` is blind on (a ``values_list`` of ids, usable as a
    subquery): reads of dataset items leave out their expected output and reviews."""
    user_id = _blind_reader_id(viewer)
    if user_id is None:
        return QueueItem.objects.none().values_list("dataset_item_id", flat=True)
    return (
        _blind_items_of(user_id)
        .filter(dataset_item_id__isnull=False)
        .values_list("dataset_item_id", flat=True)
    )


# END
