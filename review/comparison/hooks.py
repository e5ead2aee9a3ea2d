"""What the comparison wing asks of the apps above review.

datasets sits above review, so review never imports it: the outputs of experiments on
the same dataset items come through the provider datasets registers here (in
``DatasetsConfig.ready()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hitl.exceptions import DomainError


@dataclass(frozen=True)
class ExperimentOutput:
    label: str
    content: Any
    experiment_result_id: int
    trace_id: int | None = None


@dataclass(frozen=True)
class ExperimentGroup:
    """The results of several experiments for one dataset item."""

    key: str
    dataset_item_id: int | None
    input: Any
    outputs: list[ExperimentOutput] = field(default_factory=list)


# A provider takes ``project_id`` and ``experiment_ids`` and returns one group per dataset
# item the experiments share (results of the same item), or raises ``DomainError`` with
# the reason (an experiment of another project answers as a missing one).
ExperimentOutputsProvider = Callable[..., list[ExperimentGroup]]
_providers: list[ExperimentOutputsProvider] = []


def register_experiment_outputs(provider: ExperimentOutputsProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def experiment_outputs(*, project_id: int, experiment_ids: Sequence[int]) -> list[ExperimentGroup]:
    if not _providers:
        raise DomainError("Experiments cannot be compared here.", code="unavailable")
    groups: list[ExperimentGroup] = []
    for provider in _providers:
        groups.extend(provider(project_id=project_id, experiment_ids=list(experiment_ids)))
    return groups
