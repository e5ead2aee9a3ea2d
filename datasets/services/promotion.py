"""Promotion: a trace, span, thread or reviewed queue item becomes a dataset item.

The item's key is its source (``trace:<id>``, ``span:<trace id>/<span id>``,
``thread:<id>``, by the client's external ids); a queue item promotes its target, with
the reviews as provenance. So promoting the same source twice, directly or through its
review, finds the same item: it is reported (``exists``) and changed only when the
caller asks (``update_existing=True``).

Expected outputs are ones a person accepted, never the model's output on its own. A
reviewed queue item's is the one the people stated (``review.consensus``: the
adjudicator's, else the reviewers' most common). Otherwise, for any source (a reviewed
item nobody stated one for, a trace, span or thread promoted directly or in bulk), it
is the one the person promoting gives (``overrides``), else the model's output only when
that person explicitly accepts it (``accept_output``; the API's
``expected_output_from: "output"``, the promote forms' prefilled field or checkbox).
Otherwise it stays empty and the item "needs expected output"
(``datasets.models.needs_expected_output``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from datasets.content import ITEM_CONTENT_FIELDS, ItemState
from datasets.models import Dataset, DatasetItem, DatasetVersion, SourceType
from datasets.services.datasets import validate_states
from datasets.services.events import announce_promoted
from datasets.services.versioning import VersionWriter
from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import DomainError, NotFound
from review.consensus import consensus_expected_output, stated
from review.models import Adjudication, AdjudicationKind, Annotation, ItemStatus, QueueItem
from review.models import ScoreConfig as ReviewScoreConfig
from traces.models import AUTOMATED_SCORE_SOURCES, Score, Span, Thread, Trace

MAX_BULK_PROMOTE = 50_000
CHUNK = 1_000
# Fields a caller may set on promotion, over what the source says.
OVERRIDES = tuple(name for name in ITEM_CONTENT_FIELDS if name not in ("input", "explanation"))
REVIEWED = (ItemStatus.COMPLETE, ItemStatus.ADJUDICATED)


@dataclass
class Promotion:
    status: str  # created, updated, unchanged, exists
    item: DatasetItem
    version: DatasetVersion | None


# --- states from sources -----------------------------------------------------------------


def _trace_state(trace: Trace) -> ItemState:
    return ItemState(
        key=f"trace:{trace.external_id}",
        input=trace.input,
        expected_output=trace.output,
        metadata={"source_name": trace.name} if trace.name else {},
        source_type=SourceType.TRACE,
        trace_id=trace.pk,
        thread_id=trace.thread_id,
        source_trace_id=trace.external_id,
        source_thread_id=trace.thread.external_id if trace.thread_id else None,
    )


def _span_state(span: Span) -> ItemState:
    trace = span.trace
    return ItemState(
        key=f"span:{trace.external_id}/{span.external_id}",
        input=span.input,
        expected_output=span.output,
        metadata={k: v for k, v in {"span_kind": span.kind, "model": span.model}.items() if v},
        source_type=SourceType.SPAN,
        trace_id=trace.pk,
        span_id=span.pk,
        source_trace_id=trace.external_id,
        source_span_id=span.external_id,
    )


def _message(role: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and "role" in value and "content" in value:
        return value
    return {"role": role, "content": value}


def _thread_state(thread: Thread) -> ItemState:
    """A conversation: every turn before the last as messages, then the last input;
    the last output is the expected answer."""
    turns = list(
        Trace.objects.filter(thread=thread)
        .order_by("start_time", "created_at", "id")
        .values_list("input", "output")
    )
    messages: list[dict[str, Any]] = []
    expected = None
    for index, (turn_input, turn_output) in enumerate(turns):
        messages.append(_message("user", turn_input))
        if index < len(turns) - 1:
            messages.append(_message("assistant", turn_output))
        else:
            expected = turn_output
    return ItemState(
        key=f"thread:{thread.external_id}",
        input=messages,
        expected_output=expected,
        source_type=SourceType.THREAD,
        thread_id=thread.pk,
        source_thread_id=thread.external_id,
    )


def _question_names(config_ids: Iterable[str]) -> dict[str, str]:
    ids = [int(c) for c in config_ids if str(c).isdigit()]
    return {
        str(pk): name
        for pk, name in ReviewScoreConfig.objects.filter(pk__in=ids).values_list("pk", "name")
    }


def _most_common(values: Sequence[Any]) -> Any:
    """The most common value, the earliest among ties (reviews come in submit order)."""
    keyed = [repr(v) for v in values]
    counts = Counter(keyed)
    best = max(counts.values())
    for value, key in zip(values, keyed, strict=True):
        if counts[key] == best:
            return value
    return None


def _reviewed_state(item: QueueItem, *, accept_output: bool = False) -> ItemState:
    """The item's target, with the people's expected output, explanations, answers
    and failure modes, and the adjudication when there is one. The model's output
    becomes the expected output only if nobody stated one and ``accept_output``."""
    if item.target_type == "span":
        state = _span_state(item.span)
    elif item.target_type == "thread":
        state = _thread_state(item.thread)
    else:
        state = _trace_state(item.trace)
    model_output, state.expected_output = state.expected_output, None
    state = with_reviews(state, item)
    if accept_output and not stated(state.expected_output):
        state.expected_output = model_output
    return state


def with_reviews(state: ItemState, item: QueueItem) -> ItemState:
    """``state`` with the reviews of queue item ``item`` as provenance: the people's
    expected output (``review.consensus``; else the state's own), explanations,
    answers and failure modes, and the adjudication if any."""
    annotations = list(
        Annotation.objects.filter(item=item).select_related("reviewer").order_by("submitted_at")
    )
    decision = (
        Adjudication.objects.filter(item=item)
        .select_related("adjudicator")
        .order_by(
            # A disagreement's decision settles the answer; an audit confirms it.
            "-kind",
            "-created_at",
        )
        .first()
    )
    if decision is not None and decision.kind != AdjudicationKind.DISAGREEMENT:
        disagreement = Adjudication.objects.filter(
            item=item, kind=AdjudicationKind.DISAGREEMENT
        ).first()
        decision = disagreement or decision
    config_ids = {c for a in annotations for c in a.values} | set(
        decision.values if decision else {}
    )
    names = _question_names(config_ids)

    def named(values: Mapping[str, Any]) -> dict[str, Any]:
        return {names.get(k, k): v for k, v in values.items()}

    reviews = [
        {
            "reviewer": a.reviewer.email,
            "annotation_id": a.pk,
            "answers": named(a.values),
            "explanation": a.explanation,
            "expected_output": a.expected_output,
            "failure_modes": list(a.failure_modes),
            "submitted_at": a.submitted_at.isoformat(),
            # A conversation's turns rated one by one (review.services.turns).
            **({"turns": dict(a.turns)} if a.turns else {}),
        }
        for a in annotations
    ]
    if decision is not None:
        reviews.append(
            {
                "reviewer": decision.adjudicator.email,
                "adjudication": True,
                "adjudication_id": decision.pk,
                "kind": decision.kind,
                "answers": named(decision.values),
                "explanation": decision.explanation,
                "expected_output": decision.expected_output,
            }
        )
    agreed = consensus_expected_output(annotations, decision)
    if stated(agreed):
        state.expected_output = agreed
    if decision is not None and decision.explanation:
        state.explanation = decision.explanation
    else:
        state.explanation = "\n\n".join(
            f"{a.reviewer.email}: {a.explanation}" for a in annotations if a.explanation
        )
    state.failure_modes = sorted({m for a in annotations for m in a.failure_modes})
    turn_ratings = _turn_ratings(annotations)
    if turn_ratings:
        state.metadata = {**state.metadata, "turn_ratings": turn_ratings}
    state.reviews = reviews
    state.annotation_ids = [a.pk for a in annotations]
    state.adjudication_id = decision.pk if decision else None
    state.queue_item_id = item.pk
    return state


def _turn_ratings(annotations: Sequence[Annotation]) -> list[dict[str, Any]]:
    """The reviewers' turn ratings of a conversation, turn by turn (the dataset item's
    ``metadata.turn_ratings``): each rated or noted turn with its trace id, its place,
    how many reviewers called it good and bad, and each reviewer's rating and note."""
    turns: dict[str, dict[str, Any]] = {}
    for annotation in annotations:
        for trace_id, entry in (annotation.turns or {}).items():
            turn = turns.setdefault(
                trace_id,
                {
                    "trace_id": trace_id,
                    "turn": entry.get("turn"),
                    "good": 0,
                    "bad": 0,
                    "reviews": [],
                },
            )
            rating = entry.get("rating")
            if rating in ("good", "bad"):
                turn[rating] += 1
            turn["reviews"].append(
                {
                    "reviewer": annotation.reviewer.email,
                    "rating": rating,
                    **({"note": entry["note"]} if entry.get("note") else {}),
                }
            )
    return sorted(turns.values(), key=lambda t: (t["turn"] or 0, t["trace_id"]))


def _unless_accepted(state: ItemState, *, accept_output: bool) -> ItemState:
    """A directly promoted source: its output is the model's, expected only when the
    person promoting accepts it; else the expected output stays empty (module docstring).
    """
    if not accept_output:
        state.expected_output = None
    return state


def _apply_overrides(state: ItemState, overrides: Mapping[str, Any]) -> ItemState:
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise DomainError(f"Cannot set {', '.join(sorted(unknown))} on promotion.")
    for name, value in overrides.items():
        if name == "metadata":
            value = {**state.metadata, **(value or {})}
        setattr(state, name, value)
    return state


def source_state(
    *,
    project_id: int,
    trace_id: str | None = None,
    span_id: str | None = None,
    thread_id: str | None = None,
    queue_item_id: int | None = None,
    accept_output: bool = False,
) -> ItemState:
    """The state a source promotes to; sources are named as clients know them
    (external ids; a span by its trace's and its own id). Another project's or a
    missing source answers NotFound. ``accept_output``: the model's output is the
    expected one when nobody stated one (the caller accepts it); without it a source's
    expected output is only what reviewers stated."""
    named = [n for n in (trace_id, thread_id, queue_item_id) if n is not None]
    if span_id is not None and trace_id is None:
        raise DomainError("A span is named with its trace_id.", details={"trace_id": ["Required."]})
    if len(named) != 1:
        raise DomainError(
            "Name one source: trace_id (with span_id for a span), thread_id or queue_item_id."
        )
    if queue_item_id is not None:
        item = (
            QueueItem.objects.select_related("trace__thread", "span__trace", "thread")
            .filter(project_id=project_id, pk=queue_item_id)
            .first()
        )
        if item is None:
            raise NotFound("Queue item not found.")
        if item.target_type == "dataset_item":
            raise DomainError(
                "This queue item labels a dataset item: its reviews are written to that "
                "item's expected output, not promoted.",
                code="labels_dataset_item",
            )
        if item.status not in REVIEWED:
            raise DomainError(
                "The queue item is not reviewed yet (complete or adjudicated).",
                code="not_reviewed",
                details={"status": item.status},
            )
        return _reviewed_state(item, accept_output=accept_output)
    if span_id is not None:
        span = (
            Span.objects.select_related("trace")
            .filter(project_id=project_id, trace__external_id=trace_id, external_id=span_id)
            .first()
        )
        if span is None:
            raise NotFound("Span not found.")
        return _unless_accepted(_span_state(span), accept_output=accept_output)
    if trace_id is not None:
        trace = (
            Trace.objects.select_related("thread")
            .filter(project_id=project_id, external_id=trace_id)
            .first()
        )
        if trace is None:
            raise NotFound("Trace not found.")
        return _unless_accepted(_trace_state(trace), accept_output=accept_output)
    thread = Thread.objects.filter(project_id=project_id, external_id=thread_id).first()
    if thread is None:
        raise NotFound("Thread not found.")
    return _unless_accepted(_thread_state(thread), accept_output=accept_output)


def dataset_promote(
    *,
    actor: Actor,
    dataset: Dataset,
    trace_id: str | None = None,
    span_id: str | None = None,
    thread_id: str | None = None,
    queue_item_id: int | None = None,
    update_existing: bool = False,
    overrides: Mapping[str, Any] | None = None,
    accept_output: bool = False,
) -> Promotion:
    """Promotes one source. If the dataset already has it: ``exists`` (nothing
    changes) unless ``update_existing``, then ``updated`` or ``unchanged``. An
    ``expected_output`` in ``overrides`` is the one the person typed; ``accept_output``
    takes the model's output when nobody stated one (module docstring)."""
    with audit.acting_as(actor), transaction.atomic():
        state = source_state(
            project_id=dataset.project_id,
            trace_id=trace_id,
            span_id=span_id,
            thread_id=thread_id,
            queue_item_id=queue_item_id,
            accept_output=accept_output,
        )
        state = _apply_overrides(state, overrides or {})
        writer = VersionWriter(dataset=dataset, message=f"promote {state.key}")
        existing = DatasetItem.objects.filter(dataset=dataset, key=state.key).first()
        if existing is not None and not update_existing:
            return Promotion("exists", existing, None)
        validate_states(writer.dataset, [state])
        (outcome,) = writer.upsert([state])
        version = writer.finish()
        item = DatasetItem.objects.get(pk=outcome.item_id)
        announce_promoted(dataset, source=state.key, counts={outcome.status: 1}, item=item)
        return Promotion(outcome.status, item, version)


# --- bulk -----------------------------------------------------------------------------------


def _write_bulk(
    *,
    dataset: Dataset,
    states: Iterable[ItemState],
    update_existing: bool,
    message: str,
) -> dict[str, Any]:
    """Writes states in chunks under one version; reports what happened per kind."""
    from datasets.content import SchemaCheck

    writer = VersionWriter(dataset=dataset, message=message)
    writer.keep_outcomes = False
    check = SchemaCheck(writer.dataset.schema)
    counts = Counter()
    existing_ids: list[int] = []
    rejected: list[dict[str, Any]] = []
    chunk: list[ItemState] = []

    def flush() -> None:
        keys = [s.key for s in chunk]
        present = dict(
            DatasetItem.objects.filter(dataset=dataset, key__in=keys).values_list("key", "pk")
        )
        todo = []
        for state in chunk:
            if state.key in present and not update_existing:
                counts["exists"] += 1
                if len(existing_ids) < 1000:
                    existing_ids.append(present[state.key])
                continue
            errors = check.errors(state)
            if errors:
                counts["rejected"] += 1
                if len(rejected) < 1000:
                    rejected.append({"id": state.key, "errors": errors})
                continue
            todo.append(state)
        for outcome in writer.upsert(todo):
            counts[outcome.status] += 1
        chunk.clear()

    seen: set[str] = set()
    for state in states:
        if state.key in seen:
            continue
        seen.add(state.key)
        chunk.append(state)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    version = writer.finish()
    announce_promoted(dataset, source=message.removeprefix("promote "), counts=counts)
    return {
        "matched": len(seen),
        "created": counts["created"],
        "updated": counts["updated"],
        "unchanged": counts["unchanged"],
        "exists": counts["exists"],
        "existing_item_ids": existing_ids,
        "rejected": rejected,
        "version": version.number if version else writer.dataset.current_version,
    }


def dataset_promote_from_trace_filter(
    *,
    actor: Actor,
    dataset: Dataset,
    params: Mapping[str, Any],
    update_existing: bool = False,
    overrides: Mapping[str, Any] | None = None,
    accept_output: bool = False,
) -> dict[str, Any]:
    """Promotes every trace the trace filter matches (the trace list's parameters).
    Each trace's output becomes its expected output only with ``accept_output`` (the
    caller accepts them all); else they need one (module docstring)."""
    from projects.models import Project
    from traces import filter_builder
    from traces import selectors as trace_selectors

    normalized = trace_selectors.validate_trace_filter(params)
    with audit.acting_as(actor), transaction.atomic():
        project = Project.objects.get(pk=dataset.project_id)
        # A score condition on a name the project has no score of would promote
        # nothing, silently: refused with its reason, as routing rules and bulk add do.
        trace_selectors.trace_filter_check_score_names(project=project, params=normalized)
        matching = trace_selectors.traces_matching(project=project, params=normalized)
        ids = list(matching.order_by().values_list("id", flat=True)[: MAX_BULK_PROMOTE + 1])
        if len(ids) > MAX_BULK_PROMOTE:
            raise DomainError(
                f"The filter matches more than {MAX_BULK_PROMOTE} traces. Narrow it.",
                code="too_many",
            )
        ids.sort()

        def states() -> Iterable[ItemState]:
            for start in range(0, len(ids), CHUNK):
                traces = Trace.objects.select_related("thread").filter(
                    pk__in=ids[start : start + CHUNK]
                )
                for trace in traces.order_by("id"):
                    state = _unless_accepted(_trace_state(trace), accept_output=accept_output)
                    yield _apply_overrides(state, overrides or {})

        return _write_bulk(
            dataset=dataset,
            states=states(),
            update_existing=update_existing,
            message=f"promote traces matching {filter_builder.summary(normalized)}",
        )


def reviewed_answer(item_reviews: Sequence[dict[str, Any]], question: str) -> Any:
    """The experts' answer to ``question`` on an item: the adjudication's, else the
    mean of numbers, else the most common label."""
    for review in item_reviews:
        if review.get("adjudication") and question in (review.get("answers") or {}):
            return review["answers"][question]
    values = [
        r["answers"][question]
        for r in item_reviews
        if not r.get("adjudication") and question in (r.get("answers") or {})
    ]
    values = [v for v in values if v is not None]
    if not values:
        return None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sum(values) / len(values)
    return _most_common(values)


_OPS = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


def check_condition(condition: Any, what: str) -> dict[str, Any]:
    if not isinstance(condition, dict):
        raise DomainError(f"{what} is an object.", details={what: ["An object."]})
    name_key = "question" if what == "human" else "score"
    if not isinstance(condition.get(name_key), str) or condition.get("op") not in _OPS:
        raise DomainError(
            f'{what} needs "{name_key}", "op" ({", ".join(_OPS)}) and "value".',
            details={what: ["Incomplete."]},
        )
    if "value" not in condition:
        raise DomainError(f'{what} needs a "value".', details={what: ["Incomplete."]})
    return condition


def _matches(value: Any, condition: Mapping[str, Any]) -> bool:
    if value is None:
        return False
    try:
        return bool(_OPS[condition["op"]](value, condition["value"]))
    except TypeError:
        return False


def dataset_promote_from_reviews(
    *,
    actor: Actor,
    dataset: Dataset,
    queue_id: int,
    human: Mapping[str, Any] | None = None,
    judge: Mapping[str, Any] | None = None,
    update_existing: bool = False,
    overrides: Mapping[str, Any] | None = None,
    accept_output: bool = False,
) -> dict[str, Any]:
    """Promotes a queue's reviewed items (expected outputs as in ``dataset_promote``),
    optionally only where the experts' answer to a question meets ``human``
    (``{"question": "accuracy", "op": "lt", "value": 0.5}``) and an automated
    judge's latest score on the same target meets ``judge``
    (``{"score": "correctness", "op": "gte", "value": 0.5}``): for example every
    item the reviewers failed and the judge passed."""
    from review.models import ReviewQueue

    if human is not None:
        check_condition(human, "human")
    if judge is not None:
        check_condition(judge, "judge")
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.filter(project_id=dataset.project_id, pk=queue_id).first()
        if queue is None:
            raise NotFound("Queue not found.")
        item_ids = list(
            QueueItem.objects.filter(queue=queue, status__in=REVIEWED)
            # Dataset items' reviews are written back to those items, not promoted.
            .exclude(target_type="dataset_item")
            .order_by("id")
            .values_list("id", flat=True)[: MAX_BULK_PROMOTE + 1]
        )
        if len(item_ids) > MAX_BULK_PROMOTE:
            raise DomainError(f"More than {MAX_BULK_PROMOTE} reviewed items.", code="too_many")

        def states() -> Iterable[ItemState]:
            for start in range(0, len(item_ids), CHUNK):
                items = QueueItem.objects.select_related(
                    "trace__thread", "span__trace", "thread"
                ).filter(pk__in=item_ids[start : start + CHUNK])
                for item in items.order_by("id"):
                    state = _reviewed_state(item, accept_output=accept_output)
                    if human is not None and not _matches(
                        reviewed_answer(state.reviews, human["question"]), human
                    ):
                        continue
                    if judge is not None and not _matches(_judge_value(item, judge), judge):
                        continue
                    yield _apply_overrides(state, overrides or {})

        return _write_bulk(
            dataset=dataset,
            states=states(),
            update_existing=update_existing,
            message=f"promote reviews of queue {queue.name}",
        )


def _judge_value(item: QueueItem, judge: Mapping[str, Any]) -> Any:
    target = {f"{item.target_type}_id": getattr(item, f"{item.target_type}_id")}
    if item.target_type == "trace":
        target["span__isnull"] = True
    score = (
        Score.objects.filter(source__in=AUTOMATED_SCORE_SOURCES, name=judge["score"], **target)
        .order_by("-created_at", "-id")
        .values("value", "label")
        .first()
    )
    if score is None:
        return None
    return score["value"] if score["value"] is not None else score["label"]
