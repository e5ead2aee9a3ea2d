"""The client's documented example (client/examples/demo_experiment.py), run as the
README says against a live server seeded by the demo command: the first run passes the
demo dataset's gate and prints its experiment's id and link; a second run, given the
first as its baseline, prints the link that compares the two."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

from django.core.management import call_command

from datasets.models import Experiment
from hitl.tenancy import tenant_scope
from projects.models import Organization

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "client" / "examples" / "demo_experiment.py"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_example_runs_against_the_demo_dataset(transactional_db, live_server):
    printed = StringIO()
    call_command("seed_demo", stdout=printed)
    text = printed.getvalue()
    key = text.split("API key (shown once): ")[1].split()[0]
    dataset_id = re.search(r"demo_experiment\.py (\d+)", text).group(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update(
        PYTHONPATH=str(ROOT / "client"),
        HITL_URL=live_server.url,
        HITL_API_KEY=key,
        HITL_ORG="northwind-health",
        HITL_PROJECT="clinical-assistant",
    )

    first = _run(env, dataset_id, "table lookup")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "gate: pass" in first.stdout, first.stdout
    made = re.search(r"experiment (\d+): http://\S+/experiments/(\d+)/", first.stdout)
    assert made and made.group(1) == made.group(2), first.stdout

    second = _run(env, dataset_id, "table lookup again", made.group(1))
    assert second.returncode == 0, second.stdout + second.stderr
    compare = re.search(r"compare: (\S+)", second.stdout)
    assert compare and "/compare/" in compare.group(1), second.stdout
    assert f"baseline={made.group(1)}" in compare.group(1)
    assert "gate: pass" in second.stdout

    organization = Organization.objects.get(slug="northwind-health")
    with tenant_scope(organization.pk):
        runs = Experiment.objects.filter(dataset_id=int(dataset_id)).order_by("pk")
        assert [run.name for run in runs] == ["table lookup", "table lookup again"]
