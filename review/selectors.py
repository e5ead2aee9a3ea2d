"""Reads for review: queues, items (with blind mode), boards, annotations, comments."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, F, QuerySet, Sum

from hitl import sql_rows, tenancy
from hitl.replica import read_connection, reads_from_replica
from projects.hooks import QueueChoice
from projects.models import REVIEW_ROLES, Membership
from review import visibility
from review.adjudication import DisagreementRule
from review.models import (
    BOARD_COLUMN_Q,
    Annotation,
    Assignment,
    AssignmentState,
    Comment,
    ItemStatus,
    QueueFormField,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    ScoreConfig,
    SuggestionArm,
    SuggestionMode,
    board_status_of,
)

# A reviewer's pace (reviews per hour) is shown once it rests on this many reviews.
RATE_MIN_REVIEWS = 10

# --- a queue's form and how its answers disagree -----------------------------------------


@dataclass(frozen=True)
class FormQuestion:
    config: ScoreConfig
    rule: DisagreementRule


_QUEUE_FORM_SQL = """
SELECT {field}, {config}
FROM review_queueformfield f JOIN review_scoreconfig c ON c.id = f.config_id
WHERE f.queue_id = %s AND {scope}
ORDER BY f.position
"""


def queue_form(queue: ReviewQueue) -> list[FormQuestion]:
    """The queue's questions in order, each with its config and disagreement rule. One
    statement written as SQL (``hitl.sql_rows``): every submit reads it."""
    scope, params = tenancy.scope_sql("f.organization_id")
    sql = _QUEUE_FORM_SQL.format(
        field=sql_rows.columns(QueueFormField, "f"),
        config=sql_rows.columns(ScoreConfig, "c"),
        scope=scope,
    )
    config_at = sql_rows.width(QueueFormField)
    database = read_connection()  # a replica's inside reads_from_replica, as the ORM's
    with sql_rows.prepared_cursor(database) as cursor:
        cursor.execute(sql, [queue.pk, *params])
        rows = cursor.fetchall()
    form = []
    for row in rows:
        field = sql_rows.instance(QueueFormField, row, using=database.alias)
        field.config = sql_rows.instance(ScoreConfig, row, config_at, using=database.alias)
        form.append(FormQuestion(field.config, DisagreementRule.of(field)))
    return form


def item_disagreement(
    form: Sequence[FormQuestion], annotations: Sequence[Annotation]
) -> dict[str, Any]:
    """Per config id, how the answers disagree under the question's rule
    (``review.adjudication``); empty when the reviews agree well enough."""
    found: dict[str, Any] = {}
    for question in form:
        key = str(question.config.pk)
        disagreement = question.rule.disagreement([a.values.get(key) for a in annotations])
        if disagreement is not None:
            found[key] = {
                "config": question.config.name,
                "rule": question.rule.describe(),
                **disagreement,
            }
    return found


# --- for the trace detail view -----------------------------------------------------------


def client_target_ids(row: Annotation | Comment | QueueItem) -> dict[str, str | None]:
    """The trace, span and thread a row names, by the ids their client sent (the row
    must come with ``trace``, ``span`` and ``thread`` selected; a comment has no thread).
    """
    ids: dict[str, str | None] = {}
    for name in ("trace", "span", "thread"):
        if not hasattr(row, f"{name}_id"):
            continue
        related = getattr(row, name) if getattr(row, f"{name}_id") is not None else None
        ids[f"{name}_id"] = related.external_id if related is not None else None
    return ids


def _row_target_ids(row: Annotation | Comment) -> dict[str, int | None]:
    ids = {"trace_id": row.trace_id, "span_id": row.span_id}
    if hasattr(row, "thread_id"):
        ids["thread_id"] = row.thread_id
    return ids


def annotation_as_dict(annotation: Annotation, *, client_ids: bool = True) -> dict[str, Any]:
    """One annotation as plain data. Its trace, span and thread are named by the ids
    their client sent (``client_ids``); row ids only for ``trace_attachments``, whose
    reader (``traces.selectors``) names them itself."""
    return {
        "id": annotation.pk,
        "queue_id": annotation.queue_id,
        "item_id": annotation.item_id,
        "target_type": annotation.target_type,
        **(client_target_ids(annotation) if client_ids else _row_target_ids(annotation)),
        "reviewer": {"id": annotation.reviewer_id, "email": annotation.reviewer.email},
        "values": annotation.values,
        "config_versions": annotation.config_versions,
        "explanation": annotation.explanation,
        "expected_output": annotation.expected_output,
        "failure_modes": list(annotation.failure_modes),
        "suggestions": annotation.suggestions,
        "version": annotation.version,
        "opened_at": annotation.opened_at.isoformat(),
        "submitted_at": annotation.submitted_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }


def comment_as_dict(comment: Comment, *, client_ids: bool = True) -> dict[str, Any]:
    """One comment as plain data, its trace and span named as in ``annotation_as_dict``."""
    return {
        "id": comment.pk,
        **(client_target_ids(comment) if client_ids else _row_target_ids(comment)),
        "item_id": comment.item_id,
        "author": {"id": comment.author_id, "email": comment.author.email},
        "body": comment.body,
        "mentions": list(comment.mentions),
        "created_at": comment.created_at.isoformat(),
        "edited_at": comment.edited_at.isoformat() if comment.edited_at else None,
    }


def trace_attachments(*, trace: Any, viewer: Any = None) -> dict[str, Any]:
    """Annotations and comments on a trace and its spans, as plain JSON-able dicts, as
    ``viewer`` may see them (``review.visibility``; None: an API key, sees all).

    Two queries whatever the number of spans (span rows carry their trace).
    Registered with ``traces.hooks`` as the trace detail's attachments provider, which
    groups them by span row and names the trace and spans by their client ids itself:
    these carry row ids (a trace's annotations and comments have no thread).
    """
    annotations = (
        Annotation.objects.filter(trace_id=trace.pk)
        .filter(visibility.annotations_visible_to(viewer))
        .select_related("reviewer")
        .order_by("submitted_at", "id")
    )
    comments = (
        Comment.objects.filter(trace_id=trace.pk)
        .filter(visibility.comments_visible_to(viewer))
        .select_related("author")
        .order_by("created_at", "id")
    )
    return {
        "annotations": [annotation_as_dict(a, client_ids=False) for a in annotations],
        "comments": [comment_as_dict(c, client_ids=False) for c in comments],
    }


# --- queues and items ----------------------------------------------------------------------


def pool_candidates() -> list[Membership]:
    """Members who may review (owners, admins, reviewers), by email."""
    return list(
        Membership.objects.filter(role__in=REVIEW_ROLES)
        .select_related("user")
        .prefetch_related("projects")
        .order_by("user__email")
    )


def queue_choices() -> list[QueueChoice]:
    """The queues of the organization in scope, for the notification settings and
    invitations (``projects.hooks``)."""
    rows = ReviewQueue.objects.values_list(
        "pk", "name", "project_id", "project__name", "archived_at"
    )
    return [
        QueueChoice(pk, name, pid, project, archived is not None)
        for pk, name, pid, project, archived in rows
    ]


def queue_pool_entry(*, queue: ReviewQueue, user: Any) -> QueueReviewer | None:
    return (
        QueueReviewer.objects.filter(queue=queue, membership__user=user)
        .select_related("membership")
        .first()
    )


@reads_from_replica
def queue_board(*, queue: ReviewQueue) -> dict[str, Any]:
    """Counts by board column and, per assignee, what is done and what is pending."""
    columns = QueueItem.objects.filter(queue=queue).aggregate(
        **{column: Count("id", filter=q) for column, q in BOARD_COLUMN_Q.items()}
    )
    per_reviewer: dict[int, dict[str, Any]] = {}
    states = (
        Assignment.objects.filter(queue=queue)
        .values("reviewer_id", "reviewer__email", "state")
        .annotate(n=Count("id"))
    )
    for row in states:
        entry = per_reviewer.setdefault(
            row["reviewer_id"],
            {
                "reviewer_id": row["reviewer_id"],
                "email": row["reviewer__email"],
                "done": 0,
                "in_progress": 0,
                "skipped": 0,
                "released": 0,
                "expired": 0,
                "pending": 0,
            },
        )
        key = "done" if row["state"] == AssignmentState.SUBMITTED else row["state"]
        key = "in_progress" if key == AssignmentState.LEASED else key
        entry[key] += row["n"]
    # Pushed items (round robin, manual) wait for their assignees until claimed.
    with read_connection().cursor() as cursor:
        cursor.execute(
            """
            SELECT assignee, count(*)
            FROM review_queueitem qi, unnest(qi.assignees) AS assignee
            WHERE qi.queue_id = %s AND qi.organization_id = %s AND qi.status = 'open'
              AND NOT EXISTS (SELECT 1 FROM review_assignment a
                              WHERE a.item_id = qi.id AND a.reviewer_id = assignee)
            GROUP BY assignee
            """,
            [queue.pk, queue.organization_id],
        )
        pending_by_reviewer = dict(cursor.fetchall())
    if pending_by_reviewer:
        from django.contrib.auth import get_user_model

        emails = dict(
            get_user_model().objects.filter(pk__in=pending_by_reviewer).values_list("pk", "email")
        )
        for reviewer_id, n in pending_by_reviewer.items():
            entry = per_reviewer.setdefault(
                reviewer_id,
                {
                    "reviewer_id": reviewer_id,
                    "email": emails.get(reviewer_id, ""),
                    "done": 0,
                    "in_progress": 0,
                    "skipped": 0,
                    "released": 0,
                    "expired": 0,
                    "pending": 0,
                },
            )
            entry["pending"] = n
    # Time on task (opened to submitted) per reviewer, for throughput and cost per review.
    timing = (
        Annotation.objects.filter(queue=queue)
        .values("reviewer_id")
        .annotate(
            average=Avg(F("submitted_at") - F("opened_at")),
            total=Sum(F("submitted_at") - F("opened_at")),
            reviews=Count("id"),
        )
    )
    for row in timing:
        entry = per_reviewer.get(row["reviewer_id"])
        if entry is not None and row["average"] is not None:
            average = row["average"].total_seconds()
            entry["seconds_on_task_avg"] = average
            entry["seconds_on_task_total"] = row["total"].total_seconds()
            # Reviews an hour of focused work yields; times an hourly rate, cost per review.
            # Not extrapolated from a handful of reviews (two quick ones are no pace).
            steady = row["reviews"] >= RATE_MIN_REVIEWS and average > 0
            entry["reviews_per_hour"] = round(3600 / average, 2) if steady else None
    for entry in per_reviewer.values():
        entry.setdefault("seconds_on_task_avg", None)
        entry.setdefault("seconds_on_task_total", 0.0)
        entry.setdefault("reviews_per_hour", None)
    return {
        "columns": columns,
        "total": sum(columns.values()),
        "assignees": sorted(per_reviewer.values(), key=lambda e: e["email"]),
    }


def filter_by_board_status(queryset: QuerySet[QueueItem], board_status: str) -> QuerySet:
    """Items in one kanban column (the open ones split by their counters)."""
    column = BOARD_COLUMN_Q.get(board_status)
    if column is not None:
        return queryset.filter(column)
    from hitl.exceptions import DomainError

    raise DomainError(
        f"Unknown board status {board_status!r}.",
        details={"board_status": [f"one of {', '.join(BOARD_COLUMNS)}"]},
    )


# The board's columns, in the board's order.
BOARD_COLUMNS = tuple(BOARD_COLUMN_Q)


def item_board_status(item: QueueItem) -> str:
    return board_status_of(item.status, item.live_leases, item.submissions)


def items_for_queue(*, queue: ReviewQueue) -> QuerySet[QueueItem]:
    return QueueItem.objects.filter(queue=queue).select_related("trace", "span", "thread")


def item_detail(*, item: QueueItem, user: Any) -> dict[str, Any]:
    """What one person may see of an item: its answers and the scores on its target,
    with the blind rule (``review.visibility``) applied."""
    reveal = not visibility.item_answers_hidden(item=item, viewer=user)
    annotations = (
        Annotation.objects.filter(item=item)
        .filter(visibility.annotations_visible_to(user))
        .select_related("reviewer", "trace", "span", "thread")
    )
    scores = target_scores(item).select_related("span")
    scores = scores.filter(visibility.scores_visible_to(user))
    return {
        "revealed": reveal,
        "annotations": [annotation_as_dict(a) for a in annotations.order_by("submitted_at", "id")],
        "scores": [
            {
                "id": s.pk,
                "name": s.name,
                "data_type": s.data_type,
                "value": s.value,
                "label": s.label,
                "source": s.source,
                "source_name": s.source_name,
                "author_id": s.author_id,
                # The span's id as its client sent it (null: on the trace or thread).
                "span_id": s.span.external_id if s.span_id is not None else None,
                "created_at": s.created_at.isoformat(),
            }
            for s in scores.order_by("created_at", "id")
        ],
    }


def _target_score_columns(item: QueueItem) -> dict[str, int | None] | None:
    """The rule of :func:`target_scores` as score columns and the value each must have
    (None: is null); None when no score can be on the target. The ORM and the SQL of
    :func:`item_suggestions` both read it."""
    if item.target_type == "dataset_item" or item.target_type == "comparison":
        return None
    if item.target_type == "thread":
        return {"thread_id": item.thread_id}
    if item.target_type == "span":
        return {"span_id": item.span_id}
    return {"trace_id": item.trace_id, "span_id": None}


def target_scores(item: QueueItem) -> QuerySet[Any]:
    """The scores on an item's target: its trace (not its spans'), its span or its
    thread; none for a dataset item (it has an expected output, not scores)."""
    from traces.models import Score

    scores = Score.objects.filter(project_id=item.project_id)
    columns = _target_score_columns(item)
    if columns is None:
        return scores.none()
    return scores.filter(**columns)


# --- judge suggestions --------------------------------------------------------------------


def suggestion_draw(queue_id: int, item_id: int) -> float:
    """A number in [0, 100) drawn from the queue's and item's ids (SHA-256): the same on
    every read, in every tab and process, and spread evenly over items."""
    digest = hashlib.sha256(f"hitl-suggestions:{queue_id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def suggestion_arm(item: QueueItem, queue: ReviewQueue) -> str:
    """The item's arm in its queue's A/B of suggestions (``SuggestionArm``): fixed on
    the item at its first review; until then drawn from its id, hidden when the draw
    falls under the queue's hold-out share."""
    if item.suggestion_arm:
        return item.suggestion_arm
    if suggestion_draw(queue.pk, item.pk) < queue.suggestion_holdout_percent:
        return SuggestionArm.HIDDEN
    return SuggestionArm.SHOWN


def suggestion_mode_for(item: QueueItem, queue: ReviewQueue) -> str:
    """How the item's reviewers see suggestions (``SuggestionMode``): the queue's mode,
    off for an item in the hidden arm, and off in a blind queue whose lead did not
    choose suggestions there (the database refuses that queue anyway)."""
    if queue.suggestion_mode == SuggestionMode.OFF:
        return SuggestionMode.OFF
    if queue.blind_mode and not queue.suggestions_in_blind:
        return SuggestionMode.OFF
    if suggestion_arm(item, queue) == SuggestionArm.HIDDEN:
        return SuggestionMode.OFF
    return queue.suggestion_mode


def suggested_answer(config: ScoreConfig, data_type: str, value: Any, label: str) -> Any:
    """An automated score as an answer to ``config`` (None when it answers nothing: another
    type, a free-text question, or a value the question does not take)."""
    from traces.score_kinds import score_kind

    if data_type != config.data_type:
        return None
    kind = score_kind(data_type)
    if kind.free_text:
        return None
    if kind.has_options:
        answer: Any = label
    elif kind.yes_no:
        answer = None if value is None else value >= 0.5
    else:
        answer = value
    if answer is None or kind.answer_error(config, answer) is not None:
        return None
    return answer


# The latest automated score of each name on an item's target (``item_suggestions``).
_SUGGESTIONS_SQL = """
SELECT DISTINCT ON (s.name)
       s.id, s.name, s.data_type, s.value, s.label, s.source, s.source_name, s.source_version
FROM traces_score s
WHERE {scope} AND s.project_id = %s AND {target}
  AND s.source = ANY(%s) AND s.name = ANY(%s)
ORDER BY s.name, s.created_at DESC, s.id DESC
"""


def item_suggestions(item: QueueItem, form: Sequence[FormQuestion]) -> dict[str, dict[str, Any]]:
    """Per config id (a string), the judge's suggestion for the question: the latest
    automated score (``AUTOMATED_SCORE_SOURCES``: LLM judge, code) on the item's target
    (:func:`target_scores`) named as the question, as an answer the question takes. A
    question without one is absent. One statement, written as SQL: every submit
    records what it was shown."""
    from traces.models import AUTOMATED_SCORE_SOURCES
    from traces.score_kinds import score_kind

    by_name = {
        q.config.name: q.config for q in form if not score_kind(q.config.data_type).free_text
    }
    columns = _target_score_columns(item)
    if not by_name or columns is None:
        return {}
    scope, params = tenancy.scope_sql("s.organization_id")
    target = [f"s.{c} = %s" if v is not None else f"s.{c} IS NULL" for c, v in columns.items()]
    params += [item.project_id, *(v for v in columns.values() if v is not None)]
    params += [[source.value for source in AUTOMATED_SCORE_SOURCES], list(by_name)]
    database = read_connection()  # a replica's inside reads_from_replica, as the ORM's
    with sql_rows.prepared_cursor(database) as cursor:
        cursor.execute(_SUGGESTIONS_SQL.format(scope=scope, target=" AND ".join(target)), params)
        scores = cursor.fetchall()
    found: dict[str, dict[str, Any]] = {}
    for score_id, name, data_type, value, label, source, source_name, version in scores:
        config = by_name[name]
        answer = suggested_answer(config, data_type, value, label)
        if answer is None:
            continue
        found[str(config.pk)] = {
            "value": answer,
            "text": score_kind(config.data_type).render(answer),
            "score_id": score_id,
            "score_name": name,
            "source": source,
            "source_name": source_name,
            "source_version": version,
        }
    return found


def suggestions_for_reviewer(item: QueueItem, queue: ReviewQueue) -> dict[str, Any]:
    """What a reviewer of the item is shown of the judges' suggestions: the mode they
    see (``suggestion_mode_for``), the item's arm, and each question's suggestion when
    the mode shows them (none when off)."""
    mode = suggestion_mode_for(item, queue)
    questions = {} if mode == SuggestionMode.OFF else item_suggestions(item, queue_form(queue))
    return {"mode": mode, "arm": suggestion_arm(item, queue), "questions": questions}


def dataset_item_summary(item: QueueItem, *, revealed: bool) -> dict[str, Any] | None:
    """A dataset item target as datasets describes it (``review.hooks``): its input, and
    its current expected output and metadata unless the reader is blind on it. None when
    the item is gone (or, failing closed, not the project's)."""
    from review import hooks

    found = hooks.dataset_item(project_id=item.project_id, pk=item.dataset_item_id)
    if found is None:
        return None
    return {
        "id": found.id,
        "dataset_id": found.dataset_id,
        "dataset": found.dataset_name,
        "key": found.key,
        "input": found.input,
        "expected_output": found.expected_output if revealed else None,
        "metadata": found.metadata if revealed else None,
        "hidden": not revealed,
        "url": found.url,
    }


def item_target_summary(item: QueueItem, *, revealed: bool = True) -> dict[str, Any]:
    """What the reviewer judges: the trace (and span), the thread or the dataset item,
    payloads included (a dataset item's expected output only when ``revealed``). A
    trace, span or thread is named by the id its client sent: ``id`` (and
    ``external_id``, the same) is what ``GET traces/<id>/``, ``traces/<trace>/spans/<id>/``
    and ``threads/<id>/`` take."""
    summary: dict[str, Any] = {"type": item.target_type}
    if item.dataset_item_id is not None:
        summary["dataset_item"] = dataset_item_summary(item, revealed=revealed)
    if item.trace is not None:
        trace = item.trace
        summary["trace"] = {
            "id": trace.external_id,
            "external_id": trace.external_id,
            "name": trace.name,
            "input": trace.input,
            "output": trace.output,
            "metadata": trace.metadata,
            "tags": list(trace.tags),
            "status": trace.status,
            "latency_ms": trace.latency_ms,
            "start_time": trace.start_time.isoformat() if trace.start_time else None,
        }
    if item.span is not None:
        span = item.span
        summary["span"] = {
            "id": span.external_id,
            "external_id": span.external_id,
            "trace_id": item.trace.external_id if item.trace is not None else None,
            "kind": span.kind,
            "name": span.name,
            "model": span.model,
            "input": span.input,
            "output": span.output,
            "status": span.status,
            "error_message": span.error_message,
        }
    if item.thread is not None:
        summary["thread"] = {
            "id": item.thread.external_id,
            "external_id": item.thread.external_id,
        }
    return summary


def form_for_reviewer(queue: ReviewQueue) -> list[dict[str, Any]]:
    """The queue's questions in order, each with its rubric, as the reviewer sees them."""
    return [
        {
            "config_id": q.config.pk,
            "name": q.config.name,
            "description": q.config.description,
            "data_type": q.config.data_type,
            "min_value": q.config.min_value,
            "max_value": q.config.max_value,
            "step": q.config.step,
            "options": q.config.options,
            "rubric": q.config.rubric,
            "required": q.config.required,
            "writes_expected_output": q.config.writes_expected_output,
            "version": q.config.version,
        }
        for q in queue_form(queue)
    ]


def item_view(*, item: QueueItem, user: Any) -> dict[str, Any]:
    """Everything the item page and a claim show one person, blind rule applied."""
    detail = item_detail(item=item, user=user)
    disagreement = None
    if detail["revealed"] and item.status in (
        ItemStatus.NEEDS_ADJUDICATION,
        ItemStatus.ADJUDICATED,
    ):
        disagreement = item_disagreement(
            queue_form(item.queue),
            list(Annotation.objects.filter(item=item).order_by("submitted_at", "id")),
        )
    mine = (
        Assignment.objects.filter(item=item, reviewer=user).first()
        if getattr(user, "pk", None)
        else None
    )
    suggestions = suggestions_for_reviewer(item, item.queue)
    # ``after`` shows a suggestion once its question is answered; through the API the
    # answers go in one submit, so whoever holds the item's lease sees them after it.
    withheld = (
        suggestions["mode"] == SuggestionMode.AFTER
        and mine is not None
        and mine.state == AssignmentState.LEASED
    )
    suggestions = {**suggestions, "withheld": withheld}
    if withheld:
        suggestions["questions"] = {}
    return {
        **detail,
        "target": item_target_summary(item, revealed=detail["revealed"]),
        "form": form_for_reviewer(item.queue),
        "suggestions": suggestions,
        "disagreement": disagreement,
        "my_assignment": (
            {
                "id": mine.pk,
                "state": mine.state,
                "leased_at": mine.leased_at.isoformat(),
                "expires_at": mine.expires_at.isoformat(),
            }
            if mine
            else None
        ),
    }
