"""Reads for the lead's pages: rubrics and their versions, queues with their counts, the
board's cards, the routing preview and edit histories. Managers read these; the blind
rule lets managers see every answer, so nothing here hides answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from hitl import audit
from projects.models import Project
from review.adjudication import DisagreementRule
from review.models import (
    Annotation,
    ItemStatus,
    QueueFormField,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    RoutingRule,
    ScoreConfig,
    ScoreConfigVersion,
)
from review.services.common import sampled_in
from review.services.routing_strategies import DraftSpec, StrategySpec, strategy_choose

PREVIEW_RECENT = 500


PREVIEW_SHOWN = 25


def configs_for_project(project: Project) -> QuerySet[ScoreConfig]:
    return ScoreConfig.objects.filter(project=project).order_by(
        F("archived_at").asc(nulls_first=True), "name"
    )


def config_versions(config: ScoreConfig) -> list[dict[str, Any]]:
    """Every frozen version of a config, newest first, each with what changed from the
    one before it (field by field; rubric levels by label: added, removed, reordered or
    edited)."""
    versions = list(
        ScoreConfigVersion.objects.filter(config=config)
        .select_related("created_by")
        .order_by("version")
    )
    shown = []
    previous: dict[str, Any] | None = None
    for version in versions:
        snapshot = version.snapshot
        changes = [] if previous is None else snapshot_changes(previous, snapshot)
        shown.append({"version": version, "snapshot": snapshot, "changes": changes})
        previous = snapshot
    return list(reversed(shown))


def snapshot_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for name in after:
        if name == "rubric":
            continue
        old, new = before.get(name), after.get(name)
        if old != new and name == "options":
            # In words, in their order: "Correct = 1, Wrong = 0".
            old, new = _options_in_words(old), _options_in_words(new)
        if old != new:
            changes.append({"field": name, "old": old, "new": new})
    return changes + level_changes(before.get("rubric") or [], after.get("rubric") or [])


def _options_in_words(options: Any) -> str:
    return (
        ", ".join(
            f"{o.get('label')} = {o.get('value'):g}"
            if isinstance(o.get("value"), int | float)
            else str(o.get("label"))
            for o in options or []
            if isinstance(o, dict)
        )
        or "none"
    )


def level_changes(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What changed in a rubric's levels, told apart by label: each level added (with
    its place) or removed, the new order of the levels both keep, and a kept level's
    definition or examples (``field``/``old``/``new``); the others carry ``text``."""
    changes: list[dict[str, Any]] = []
    old_levels = {level["label"]: level for level in before}
    new_levels = {level["label"]: level for level in after}
    for place, (label, level) in enumerate(new_levels.items(), start=1):
        old = old_levels.get(label)
        if old is None:
            text = f"Level “{label}” added as level {place}: {level.get('definition', '')}"
            changes.append({"field": f"level {label}", "text": text})
            continue
        for key in ("definition", "examples"):
            if old.get(key) != level.get(key):
                changes.append(
                    {"field": f"level {label}: {key}", "old": old.get(key), "new": level.get(key)}
                )
    for label in old_levels:
        if label not in new_levels:
            changes.append({"field": f"level {label}", "text": f"Level “{label}” removed"})
    kept_before = [label for label in old_levels if label in new_levels]
    kept_after = [label for label in new_levels if label in old_levels]
    if kept_before != kept_after:
        order = f"{', '.join(kept_before)} → {', '.join(kept_after)}"
        changes.append({"field": "level order", "text": f"Levels reordered: {order}"})
    return changes


def queues_for_project(project: Project) -> list[dict[str, Any]]:
    """The project's queues with their items counted by state (one query)."""
    queues = list(ReviewQueue.objects.filter(project=project).order_by("archived_at", "name"))
    counts = {
        row["queue_id"]: row
        for row in QueueItem.objects.filter(queue__in=queues)
        .values("queue_id")
        .annotate(
            total=Count("id"),
            open=Count("id", filter=Q(status=ItemStatus.OPEN)),
            disputed=Count("id", filter=Q(status=ItemStatus.NEEDS_ADJUDICATION)),
            done=Count("id", filter=Q(status__in=[ItemStatus.COMPLETE, ItemStatus.ADJUDICATED])),
        )
    }
    empty = {"total": 0, "open": 0, "disputed": 0, "done": 0}
    return [{"queue": q, **counts.get(q.pk, empty)} for q in queues]


def queue_form_rules(queue: ReviewQueue) -> list[dict[str, Any]]:
    """The queue's questions in order, each with its adjudication rule in words."""
    fields = (
        QueueFormField.objects.filter(queue=queue).select_related("config").order_by("position")
    )
    return [{"field": f, "rule": DisagreementRule.of(f).describe()} for f in fields]


def queue_pool(queue: ReviewQueue) -> dict[int, QueueReviewer]:
    """membership id -> the queue's pool entry."""
    return {r.membership_id: r for r in QueueReviewer.objects.filter(queue=queue)}


def routing_preview(
    *,
    project: Project,
    filter_params: Mapping[str, Any],
    sampling_rate: float,
    rule: RoutingRule | None = None,
    strategy: StrategySpec | None = None,
) -> dict[str, Any]:
    """Which of the project's newest traces a rule would take: those its filter matches,
    then those its strategy picks (``strategy``, else the rule's; each row's ``reason``
    says why), then its deterministic sampling draw (the same draw routing makes; for a
    rule not yet saved, an example draw at the same rate). Raises ``DomainError`` for an
    invalid filter."""
    from traces.models import Trace
    from traces.selectors import trace_input_head, traces_matching

    recent = Trace.objects.filter(project=project).order_by("-created_at", "-id")
    recent_ids = list(recent.values_list("pk", flat=True)[:PREVIEW_RECENT])
    matching = list(
        traces_matching(project=project, params=filter_params)
        .filter(pk__in=recent_ids)
        .order_by("-created_at", "-id")
        .values("pk", "external_id", "name", "status", "created_at", "start_time")
        .annotate(input_head=trace_input_head())
    )
    seed = f"route:{rule.pk}" if rule is not None else "route:preview"
    spec = strategy if strategy is not None else (rule if rule is not None else DraftSpec())
    reasons = strategy_choose(project=project, spec=spec, trace_ids=[r["pk"] for r in matching])
    for row in matching:
        row["reason"] = reasons.get(row["pk"], "")
        row["taken"] = row["pk"] in reasons and sampled_in(f"{seed}:{row['pk']}", sampling_rate)
    return {
        "recent": len(recent_ids),
        "matched": len(matching),
        "taken": sum(1 for row in matching if row["taken"]),
        "rows": matching[:PREVIEW_SHOWN],
        "exact": rule is not None,
    }


def item_annotations(item: QueueItem) -> list[Annotation]:
    return list(
        Annotation.objects.filter(item=item).select_related("reviewer").order_by("submitted_at")
    )


def config_names(project: Project) -> dict[str, str]:
    """config id (as answers key it) -> question name, for history and answers."""
    return {
        str(pk): name
        for pk, name in ScoreConfig.objects.filter(project=project).values_list("pk", "name")
    }


def queue_history(queue: ReviewQueue) -> list[dict[str, Any]]:
    """The queue's settings, form and pool edits together, newest first."""
    org = queue.organization_id
    entries = []
    for what, records in (
        ("settings", queue.history.all()),
        ("form", QueueFormField.history.filter(queue_id=queue.pk, organization_id=org)),
        ("pool", QueueReviewer.history.filter(queue_id=queue.pk, organization_id=org)),
    ):
        for entry in audit.history_for_display(records):
            entry["what"] = what
            entries.append(entry)
    return sorted(entries, key=lambda e: e["when"], reverse=True)
