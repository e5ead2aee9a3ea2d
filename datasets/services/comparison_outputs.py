"""Experiments' results for review's comparison items: the outputs of two or more
experiments on the same dataset items, grouped per item (registered with
``review.comparison.hooks`` in ``DatasetsConfig.ready()``)."""

from __future__ import annotations

from collections.abc import Sequence

from datasets.models import Experiment, ExperimentResult
from hitl.exceptions import DomainError, NotFound
from review.comparison.hooks import ExperimentGroup, ExperimentOutput


def experiment_outputs_for_review(
    *, project_id: int, experiment_ids: Sequence[int]
) -> list[ExperimentGroup]:
    """One group per dataset item with results (without an error) of two or more of the
    experiments, the outputs labelled by experiment name in the order asked. Experiments
    of another project answer as missing; experiments on different datasets are
    refused."""
    wanted = list(dict.fromkeys(int(i) for i in experiment_ids))
    experiments = {e.pk: e for e in Experiment.objects.filter(project_id=project_id, pk__in=wanted)}
    if len(experiments) != len(wanted):
        raise NotFound("An experiment named is not in this project.")
    if len({e.dataset_id for e in experiments.values()}) != 1:
        raise DomainError(
            "The experiments compared ran on the same dataset.",
            details={"experiment_ids": ["different datasets"]},
        )
    names = [experiments[pk].name for pk in wanted]
    labels = {
        pk: (name if names.count(name) == 1 else f"{name} (#{pk})")[:200]
        for pk, name in zip(wanted, names, strict=True)
    }
    rank = {pk: i for i, pk in enumerate(wanted)}
    by_item: dict[int, list[ExperimentResult]] = {}
    for result in (
        ExperimentResult.objects.filter(experiment_id__in=wanted, error="")
        .select_related("revision")
        .order_by("revision__item_id", "id")
    ):
        by_item.setdefault(result.revision.item_id, []).append(result)
    groups = []
    for item_id, results in by_item.items():
        results.sort(key=lambda r: rank[r.experiment_id])
        if len(results) < 2:
            continue
        latest = max(results, key=lambda r: r.revision.added_in)
        groups.append(
            ExperimentGroup(
                key=latest.revision.key,
                dataset_item_id=item_id,
                input=(latest.revision.content or {}).get("input"),
                outputs=[
                    ExperimentOutput(
                        label=labels[r.experiment_id],
                        content=r.output,
                        experiment_result_id=r.pk,
                        trace_id=r.trace_id,
                    )
                    for r in results
                ],
            )
        )
    return groups
