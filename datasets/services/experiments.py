"""Experiments: an eval job's run over a pinned version, its results and summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from datasets.models import (
    Dataset,
    DatasetVersion,
    Experiment,
    ExperimentResult,
    ExperimentStatus,
)
from datasets.selectors import experiment_metrics, version_revisions
from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound
from traces.models import Trace

MAX_RESULTS_PER_BATCH = 1_000


def experiment_create(
    *,
    actor: Actor,
    dataset: Dataset,
    name: str,
    version: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Experiment:
    """Starts an experiment on ``version`` (default: the dataset's newest)."""
    with audit.acting_as(actor), transaction.atomic():
        dataset = Dataset.objects.get(pk=dataset.pk)  # its newest version, not a stale one
        number = version if version is not None else dataset.current_version
        pinned = DatasetVersion.objects.filter(dataset=dataset, number=number).first()
        if pinned is None:
            raise NotFound(
                f"Dataset {dataset.name!r} has no version {number}.",
                code="no_such_version",
                details={"version": [f"No version {number}."]},
            )
        return Experiment.objects.create(
            project_id=dataset.project_id,
            dataset=dataset,
            version=pinned,
            name=name,
            metadata=dict(metadata or {}),
            created_by=actor.user if getattr(actor.user, "pk", None) else None,
            created_by_api_key_prefix=actor.api_key_prefix,
        )


def _check_scores(scores: Any) -> str | None:
    if not isinstance(scores, dict):
        return "scores must be an object of metric: number"
    for name, value in scores.items():
        if not isinstance(name, str) or not name or len(name) > 200:
            return "a metric name is text of 1 to 200 characters"
        if isinstance(value, bool):
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            return f"score {name!r} is not a finite number"
    return None


def experiment_results_post(
    *, actor: Actor, experiment: Experiment, results: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Stores a batch of per-item results; posting an item again replaces its result
    (idempotent). A row for an item not in the pinned version, or with bad scores,
    rejects the batch: every bad row is named by its index and id, nothing is stored."""
    if len(results) > MAX_RESULTS_PER_BATCH:
        raise DomainError(f"At most {MAX_RESULTS_PER_BATCH} results per batch.")
    with audit.acting_as(actor), transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != ExperimentStatus.RUNNING:
            raise Conflict(
                "The experiment is finished; it takes no more results.",
                code="experiment_finished",
            )
        keys = [str(row.get("id", "")) for row in results]
        revisions = dict(
            version_revisions(experiment.version).filter(key__in=keys).values_list("key", "pk")
        )
        errors: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for index, (row, key) in enumerate(zip(results, keys, strict=True)):
            problem = None
            if key in seen:
                problem = f"id repeated in this batch (first at {seen[key]})"
            elif key not in revisions:
                problem = f"not an item of version {experiment.version.number}"
            else:
                problem = _check_scores(row.get("scores", {}))
            seen.setdefault(key, index)
            if problem:
                errors.append({"index": index, "id": key, "reason": problem})
        if errors:
            raise DomainError(
                f"{len(errors)} of {len(results)} results were refused; none was stored.",
                code="results_rejected",
                details={"results": errors},
            )
        trace_ids = {str(r["trace_id"]) for r in results if r.get("trace_id")}
        traces = dict(
            Trace.objects.filter(
                project_id=experiment.project_id, external_id__in=trace_ids
            ).values_list("external_id", "pk")
        )
        now = timezone.now()
        rows = [
            ExperimentResult(
                organization_id=experiment.organization_id,
                experiment=experiment,
                key=key,
                revision_id=revisions[key],
                output=row.get("output"),
                scores={k: float(v) for k, v in (row.get("scores") or {}).items()},
                trace_external_id=str(row.get("trace_id") or ""),
                trace_id=traces.get(str(row.get("trace_id") or "")),
                error=str(row.get("error") or ""),
                created_at=now,
                updated_at=now,
            )
            for row, key in zip(results, keys, strict=True)
        ]
        ExperimentResult.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["experiment", "key"],
            update_fields=[
                "revision",
                "output",
                "scores",
                "trace_external_id",
                "trace",
                "error",
                "updated_at",
            ],
        )
        return {"stored": len(rows), "experiment": experiment.pk}


def experiment_finish(
    *, actor: Actor, experiment: Experiment, summary: Mapping[str, Any] | None = None
) -> Experiment:
    """Closes the experiment: the mean of every metric over its results, the counts,
    and what the job sent as its own summary."""
    with audit.acting_as(actor), transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != ExperimentStatus.RUNNING:
            raise Conflict("The experiment is already finished.", code="experiment_finished")
        metrics = experiment_metrics(experiment)
        results = ExperimentResult.objects.filter(experiment=experiment).count()
        errors = ExperimentResult.objects.filter(experiment=experiment).exclude(error="").count()
        experiment.summary = {
            "metrics": metrics,
            "results": results,
            "items": experiment.version.item_count,
            "missing": max(0, experiment.version.item_count - results),
            "errors": errors,
            "client": dict(summary or {}),
        }
        experiment.status = ExperimentStatus.FINISHED
        experiment.finished_at = timezone.now()
        experiment.save()
        return experiment
