"""Experiments over the API with a key, comparison, the gate verdict and `hitl gate`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasets import services
from datasets.models import ExperimentResult
from hitl import tenancy
from hitl.audit import Actor
from tests.datasets.helpers import import_rows, make_dataset, make_reviewed_item
from traces.models import Score

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _cases(tenant, n: int = 4):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": f"case-{i}", "input": {"q": i}} for i in range(n)])
    return dataset


def _run(tenant, dataset, scores: dict[str, float], *, name: str = "run"):
    """A finished experiment with ``accuracy`` per item as given."""
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        experiment = services.experiment_create(actor=owner, dataset=dataset, name=name)
        services.experiment_results_post(
            actor=owner,
            experiment=experiment,
            results=[
                {"id": key, "output": f"out {key}", "scores": {"accuracy": value}}
                for key, value in scores.items()
            ],
        )
        return services.experiment_finish(actor=owner, experiment=experiment)


def test_an_eval_job_posts_results_with_an_api_key(tenant, client_for):
    dataset = _cases(tenant)
    api = client_for(key=tenant.key("all"))
    base = _base(tenant)
    created = api.post(
        f"{base}/experiments/", {"dataset_id": dataset.pk, "name": "nightly"}, format="json"
    )
    assert created.status_code == 201, created.content
    experiment = created.json()
    assert experiment["version"] == 1 and experiment["status"] == "running"
    results_url = f"{base}/experiments/{experiment['id']}/results/"

    # A row for an item outside the pinned version refuses the whole batch, by id.
    bad = api.post(
        results_url,
        {
            "results": [
                {"id": "case-0", "scores": {"accuracy": 1}},
                {"id": "case-404", "scores": {"accuracy": 1}},
                {"id": "case-1", "scores": {"accuracy": "high"}},
            ]
        },
        format="json",
    )
    assert bad.status_code == 400
    errors = bad.json()["error"]["details"]["results"]
    assert [(e["index"], e["id"]) for e in errors] == [(1, "case-404"), (2, "case-1")]
    assert "version 1" in errors[0]["reason"]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ExperimentResult.objects.exists()

    batch = {"results": [{"id": f"case-{i}", "scores": {"accuracy": 0.5}} for i in range(4)]}
    assert api.post(results_url, batch, format="json").status_code == 200
    batch["results"][0]["scores"]["accuracy"] = 1.0  # posted again: replaced, not added
    assert api.post(results_url, batch, format="json").status_code == 200
    listed = api.get(results_url).json()["results"]
    assert len(listed) == 4 and listed[0]["scores"] == {"accuracy": 1.0}

    gate_url = f"{base}/experiments/{experiment['id']}/gate/"
    running = api.get(gate_url)
    assert running.status_code == 409
    assert running.json()["error"]["code"] == "experiment_running"

    finished = api.post(f"{base}/experiments/{experiment['id']}/finish/", {}, format="json")
    assert finished.status_code == 200, finished.content
    summary = finished.json()["summary"]
    assert summary["metrics"]["accuracy"]["mean"] == pytest.approx(0.625)
    assert summary["results"] == 4 and summary["missing"] == 0
    late = api.post(results_url, batch, format="json")
    assert late.status_code == 409

    assert api.get(gate_url).json()["error"]["code"] == "no_gate"
    owner = client_for(tenant.owner)
    gate = owner.put(
        f"{base}/datasets/{dataset.pk}/gate/",
        {"thresholds": [{"metric": "accuracy", "min": 0.6}]},
        format="json",
    )
    assert gate.status_code == 200, gate.content
    verdict = api.get(gate_url).json()
    assert verdict["verdict"] == "pass"
    (check,) = verdict["checks"]
    assert check["status"] == "pass" and check["value"] == pytest.approx(0.625)


def test_compare_names_regressed_and_improved_items(tenant, client_for):
    dataset = _cases(tenant, 3)
    before = _run(tenant, dataset, {"case-0": 1.0, "case-1": 0.0, "case-2": 1.0})
    after = _run(tenant, dataset, {"case-0": 0.0, "case-1": 1.0, "case-2": 1.0})
    response = client_for(tenant.viewer).get(
        f"{_base(tenant)}/experiments/{after.pk}/compare/", {"baseline": before.pk}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["metrics"]["accuracy"]["delta"] == pytest.approx(0.0)
    assert [r["id"] for r in body["regressed"]] == ["case-0"]
    assert [r["id"] for r in body["improved"]] == ["case-1"]
    assert body["counts"]["unchanged"] == 1


def test_baseline_threshold_and_human_thresholds_not_available(tenant):
    dataset = _cases(tenant, 2)
    before = _run(tenant, dataset, {"case-0": 1.0, "case-1": 1.0})
    after = _run(tenant, dataset, {"case-0": 1.0, "case-1": 0.5})
    from datasets.gate import gate_verdict

    with tenancy.tenant_scope(tenant.organization.pk):
        services.quality_gate_set(
            actor=Actor(user=tenant.owner),
            dataset=dataset,
            thresholds=[{"metric": "accuracy", "max_drop": 0.1}],
            min_judge_alignment=0.8,
            judge_score_name="correctness",
            human_question="accuracy",
            min_reviewer_agreement=0.5,
        )
        verdict = gate_verdict(experiment=after, baseline=before)
        no_baseline = gate_verdict(experiment=after)
    drop, alignment, agreement = verdict["checks"]
    assert drop["status"] == "fail" and drop["delta"] == pytest.approx(-0.25)
    # Imported items carry no reviews: the human checks say so and do not pass.
    assert alignment["status"] == "not_available" and "judge score" in alignment["message"]
    assert agreement["status"] == "not_available"
    assert verdict["verdict"] == "fail"
    assert no_baseline["checks"][0]["status"] == "not_available"


# --- the console command -------------------------------------------------------------------


def _gate_command(live_server, tenant, experiment, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update(PYTHONPATH=str(CLIENT), HITL_API_KEY=tenant.key("read"))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_client.cli",
            "gate",
            "--url",
            live_server.url,
            "--org",
            tenant.organization.slug,
            "--project",
            tenant.project.slug,
            "--experiment",
            str(experiment.pk),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(CLIENT),
    )


def test_the_gate_command_fails_and_passes_on_human_alignment(tenant, live_server):
    """Reviewers failed the answer (0.0); a judge that passes it disagrees with them."""
    item, trace, _ = make_reviewed_item(tenant, disagree=False)
    dataset = make_dataset(tenant)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.dataset_promote(actor=owner, dataset=dataset, queue_item_id=item.pk)
        services.quality_gate_set(
            actor=owner,
            dataset=dataset,
            thresholds=[{"metric": "accuracy", "min": 0.5}],
            min_judge_alignment=0.9,
            judge_score_name="correctness",
            human_question="accuracy",
            alignment_tolerance=0.25,
        )
        judge = Score.objects.create(
            project=tenant.project, trace=trace, name="correctness", data_type="numeric",
            value=1.0, source="llm_judge",
        )  # fmt: skip
    experiment = _run(tenant, dataset, {"trace:consult-7": 1.0})

    failing = _gate_command(live_server, tenant, experiment)
    assert failing.returncode == 1, failing.stderr
    assert "[FAIL] judge_alignment" in failing.stdout and "0 of 1 items" in failing.stdout
    assert "[PASS] absolute: accuracy 1 meets >= 0.5" in failing.stdout
    assert failing.stdout.strip().endswith("FAIL: 1 passed, 1 failed, 0 not available")

    with tenancy.tenant_scope(tenant.organization.pk):
        judge.value = 0.0  # a judge that agrees with the reviewers
        judge.save()
    passing = _gate_command(live_server, tenant, experiment)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "[PASS] judge_alignment" in passing.stdout and "1 of 1 items" in passing.stdout


def test_the_gate_command_exits_2_on_errors(tenant, live_server):
    dataset = _cases(tenant, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        running = services.experiment_create(
            actor=Actor(user=tenant.owner), dataset=dataset, name="still going"
        )
    busy = _gate_command(live_server, tenant, running)
    assert busy.returncode == 2 and "experiment_running" in busy.stderr
    unreachable = subprocess.run(
        [
            sys.executable,
            "-m",
            "hitl_client.cli",
            "gate",
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "x",
            "--org",
            "o",
            "--project",
            "p",
            "--experiment",
            "1",
        ],
        env={**os.environ, "PYTHONPATH": str(CLIENT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "hitl_client.cli", "gate"],
        env={**os.environ, "PYTHONPATH": str(CLIENT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2


def test_the_client_installs_with_pip_and_provides_the_command(tmp_path):
    import shutil

    source = tmp_path / "client"  # a copy: the build leaves its files beside the source
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    script = target / "bin" / "hitl"
    assert script.exists()
    shown = subprocess.run(
        [sys.executable, str(script), "gate", "--help"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and "--experiment" in shown.stdout
