"""Promoting one trace into a dataset from the trace page (``traces.hooks``): managers
choose one of the project's datasets; the item is made by ``dataset_promote``. Its
expected output stays empty unless the person ticks "accept the output" (the promotion
rule, datasets/services/promotion.py)."""

from __future__ import annotations

from typing import Any

from datasets import services
from datasets.models import Dataset
from hitl.audit import Actor
from projects.models import MANAGE_ROLES
from traces.hooks import TraceAction


def trace_dataset_actions(*, membership: Any, project: Any, trace: Any) -> list[TraceAction]:
    """ "Add to a dataset" for managers, among the project's datasets."""
    if membership.role not in MANAGE_ROLES:
        return []
    choices = [
        (str(dataset.pk), dataset.name)
        for dataset in Dataset.objects.filter(project=project).order_by("name", "pk")
    ]

    def perform(*, actor: Actor, trace: Any, choice: str, accept_output: bool) -> str:
        dataset = Dataset.objects.get(project=project, pk=int(choice))
        promotion = services.dataset_promote(
            actor=actor,
            dataset=dataset,
            trace_id=trace.external_id,
            accept_output=accept_output,
        )
        if promotion.status == "exists":
            return f"“{dataset.name}” already has this trace (item “{promotion.item.key}”)."
        wording = "Added" if promotion.status == "created" else "Updated"
        told = f"{wording} this trace to “{dataset.name}” as “{promotion.item.key}”."
        if promotion.item.needs_expected_output:
            told += " It has no expected output yet: give one on the item's page."
        return told

    return [
        TraceAction(
            key="dataset",
            label="Add to a dataset",
            choice_label="Dataset",
            choices=choices,
            perform=perform,
            offers_accept_output=True,
            empty_text="The project has no dataset yet.",
            help_text="The expected output stays empty unless you accept the trace's output.",
        )
    ]
