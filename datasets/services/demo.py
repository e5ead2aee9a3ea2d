"""The demo's dataset: the sample agent's questions with their expected answers, and a
gate on an ``exact`` score, so an experiment can be run over it from code at once
(``client/examples/demo_experiment.py``)."""

from __future__ import annotations

import io
import json

from datasets.models import Dataset
from datasets.services.datasets import dataset_create, quality_gate_set
from datasets.services.imports import dataset_import
from projects.demo import DemoContext
from traces.demo import QUESTIONS

DEMO_DATASET = "Clinical questions"
DEMO_GATE = [{"metric": "exact", "min": 0.4}]


def demo_step(context: DemoContext) -> str:
    """Registered in :class:`datasets.apps.DatasetsConfig` (after the traces). Seeding
    again keeps the dataset as it is (it may hold a lead's edits and experiments)."""
    existing = Dataset.objects.filter(project=context.project, name=DEMO_DATASET).first()
    if existing is not None:
        return f"dataset “{DEMO_DATASET}” (id {existing.pk}): kept as it is"
    dataset = dataset_create(
        actor=context.actor,
        project=context.project,
        name=DEMO_DATASET,
        description="The sample agent's questions and the answers expected of it.",
    )
    rows = [
        {"id": f"q-{n}", "input": {"question": question}, "expected_output": answer}
        for n, (question, answer) in enumerate(QUESTIONS, start=1)
    ]
    stream = io.BytesIO(b"".join(json.dumps(row).encode() + b"\n" for row in rows))
    dataset_import(
        actor=context.actor, dataset=dataset, stream=stream, file_format="jsonl", atomic=True
    )
    quality_gate_set(actor=context.actor, dataset=dataset, thresholds=DEMO_GATE)
    return (
        f"dataset “{DEMO_DATASET}” (id {dataset.pk}): {len(rows)} items and a gate on "
        f"“exact”; run an experiment over it: python client/examples/demo_experiment.py "
        f"{dataset.pk}"
    )
