"""Runs an experiment over the demo dataset of ``bin/up`` (``Clinical questions``).

    pip install ./client
    export HITL_URL=http://localhost:8000 HITL_API_KEY=<the key bin/up printed>
    export HITL_ORG=northwind-health HITL_PROJECT=clinical-assistant
    python client/examples/demo_experiment.py <dataset id, printed by bin/up> [name] [baseline]

With a baseline (an earlier experiment's id, printed by its run), it prints the link that
compares the two item by item, and the gate reads the run against it. The "application"
here answers from a small table; yours would call your model.
"""

from __future__ import annotations

import sys

from hitl_client import Client, run_experiment

ANSWERS = {
    "acetaminophen": "For adults with cirrhosis, limit acetaminophen to 2 g per day.",
    "cystitis": "Nitrofurantoin 100 mg twice daily for 5 days.",
}


def answer(record: dict) -> str:
    question = str(record["input"].get("question", "")).lower()
    return next((a for drug, a in ANSWERS.items() if drug in question), "I do not know.")


def exact(record: dict, output: str) -> float:
    return float(output == record.get("expected_output"))


if __name__ == "__main__":
    client = Client.from_env()
    run = run_experiment(
        client,
        dataset_id=int(sys.argv[1]),
        name=sys.argv[2] if len(sys.argv) > 2 else "table lookup",
        task=answer,
        scorers={"exact": exact},
        baseline_id=int(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
    print(f"experiment {run.experiment['id']}:", run.experiment_url)
    if run.compare_url:
        print("compare:", run.compare_url)
    print("gate:", run.gate["verdict"] if run.gate else "no gate")
    sys.exit(1 if run.passed is False else 0)
