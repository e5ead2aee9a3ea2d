"""Experiments from code against a live server: the client reads a version's records a
page at a time, runs a function over them (retrying a failing call, recording one that
keeps failing), posts scores in batches, finishes, and reads the gate; ``hitl run`` does
the same from the command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets import services
from datasets.models import ExperimentResult
from hitl import tenancy
from hitl.audit import Actor
from tests.datasets.helpers import import_rows, make_dataset

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
sys.path.insert(0, str(CLIENT))

from hitl_client import Client, HitlError, Outcome, run_experiment  # noqa: E402


@pytest.fixture
def cases(tenant):
    dataset = make_dataset(tenant)
    import_rows(
        tenant,
        dataset,
        [{"id": f"case-{i}", "input": {"n": i}, "expected_output": str(i * 2)} for i in range(5)],
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        services.quality_gate_set(
            actor=Actor(user=tenant.owner),
            dataset=dataset,
            thresholds=[{"metric": "exact", "min": 0.6}],
        )
    return dataset


def _client(live_server, tenant, scope: str = "all") -> Client:
    return Client(
        url=live_server.url,
        api_key=tenant.key(scope),
        org=tenant.organization.slug,
        project=tenant.project.slug,
        retries=0,
    )


def test_run_experiment_posts_every_item_and_reads_the_gate(tenant, live_server, cases):
    client = _client(live_server, tenant)
    records = list(client.version_records(cases.pk, 1, page_size=2))  # three pages
    assert [r["id"] for r in records] == [f"case-{i}" for i in range(5)]
    calls: dict[str, int] = {}

    def task(record):
        calls[record["id"]] = calls.get(record["id"], 0) + 1
        if record["id"] == "case-1" and calls["case-1"] == 1:
            raise TimeoutError("the model was slow")  # retried, then answers
        if record["id"] == "case-4":
            raise ValueError("no answer")  # fails every time: posted with its error
        return Outcome(output=str(record["input"]["n"] * 2), scores={"latency_ms": 10.0})

    progress = io.StringIO()
    run = run_experiment(
        client,
        dataset_id=cases.pk,
        name="doubling",
        task=task,
        scorers={"exact": lambda record, output: output == record["expected_output"]},
        concurrency=2,
        retries=1,
        batch_size=2,
        progress=progress,
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        errors = dict(
            ExperimentResult.objects.filter(experiment_id=run.experiment["id"])
            .exclude(error="")
            .values_list("key", "error")
        )
    assert errors == {"case-4": "ValueError: no answer"}
    assert (run.posted, run.failed) == (5, 1)
    assert calls == {"case-0": 1, "case-1": 2, "case-2": 1, "case-3": 1, "case-4": 2}
    assert run.experiment["status"] == "finished"
    assert run.gate["verdict"] == "pass" and run.passed is True  # 4 of 5 exact
    assert run.experiment_url.endswith(f"/experiments/{run.experiment['id']}/")
    assert "doubling [" in progress.getvalue() and "5/5, 1 failed" in progress.getvalue()
    with tenancy.tenant_scope(tenant.organization.pk):
        results = {
            r.key: r for r in ExperimentResult.objects.filter(experiment_id=run.experiment["id"])
        }
    assert results["case-3"].output == "6"
    assert results["case-3"].scores == {"latency_ms": 10.0, "exact": 1.0}
    assert results["case-4"].error == "ValueError: no answer" and results["case-4"].output is None

    # A read key may not create an experiment: the server's reason, not a crash.
    with pytest.raises(HitlError) as refused:
        run_experiment(
            _client(live_server, tenant, "read"),
            dataset_id=cases.pk,
            name="x",
            task=str,
            progress=None,
        )
    assert refused.value.status == 403


def test_hitl_run_from_the_command_line(tenant, live_server, cases, tmp_path):
    (tmp_path / "app.py").write_text(
        "def answer(record):\n    return 'nothing'\n\n"
        "def exact(record, output):\n    return output == record['expected_output']\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update(
        PYTHONPATH=str(CLIENT),
        HITL_URL=live_server.url,
        HITL_API_KEY=tenant.key("all"),
        HITL_ORG=tenant.organization.slug,
        HITL_PROJECT=tenant.project.slug,
    )
    command = [sys.executable, "-m", "hitl_client.cli", "run", "--dataset", str(cases.pk)]
    done = subprocess.run(
        [*command, "--name", "always wrong", "--task", "app:answer", "--scorer", "exact=app:exact"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the gate fails
    assert "5 results posted, 0 with an error" in done.stdout
    assert "[FAIL] absolute: exact 0 " in done.stdout
    usage = subprocess.run(
        [*command, "--name", "x", "--task", "app"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "is not module:function" in usage.stderr
