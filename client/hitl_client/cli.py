"""``hitl gate``: the CI quality gate as a console command; ``hitl run``: run a function
over a dataset version as an experiment (``hitl_client.api.run_experiment``).

Exit codes: 0 the gate passes, 1 it fails, 2 usage, connection or server errors (the
experiment is still running, an unknown id, a dataset without a gate). ``hitl run``
exits 0 when the dataset has no gate.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PASS, FAIL, ERROR = 0, 1, 2
MARKS = {"pass": "PASS", "fail": "FAIL", "not_available": "N/A "}


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hitl", description="hitl command-line client")
    commands = parser.add_subparsers(dest="command", required=True)
    gate = commands.add_parser(
        "gate",
        help="the quality gate's verdict on an experiment (exit 0 pass, 1 fail, 2 error)",
    )
    gate.add_argument("--url", default=os.environ.get("HITL_URL"), help="server (HITL_URL)")
    gate.add_argument(
        "--api-key", default=os.environ.get("HITL_API_KEY"), help="project API key (HITL_API_KEY)"
    )
    gate.add_argument("--org", default=os.environ.get("HITL_ORG"), help="organization slug")
    gate.add_argument("--project", default=os.environ.get("HITL_PROJECT"), help="project slug")
    gate.add_argument("--experiment", required=True, type=int, help="experiment id")
    gate.add_argument("--baseline", type=int, help="baseline experiment id (else the gate's)")
    gate.add_argument("--json", action="store_true", help="print the verdict as JSON")
    gate.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")

    run = commands.add_parser(
        "run",
        help="run a function over a dataset version as an experiment, then the gate",
        description="Calls TASK (module:function, given the record) on every record of the "
        "dataset version, scores each output with the SCORERs (name=module:function, given "
        "the record and the output), posts the results, finishes the experiment and prints "
        "its page, the comparison and the gate's verdict (exit 0 pass or no gate, 1 fail, "
        "2 error).",
    )
    run.add_argument("--url", default=os.environ.get("HITL_URL"), help="server (HITL_URL)")
    run.add_argument(
        "--api-key", default=os.environ.get("HITL_API_KEY"), help="write key (HITL_API_KEY)"
    )
    run.add_argument("--org", default=os.environ.get("HITL_ORG"), help="organization slug")
    run.add_argument("--project", default=os.environ.get("HITL_PROJECT"), help="project slug")
    run.add_argument("--dataset", required=True, type=int, help="dataset id")
    run.add_argument("--version", type=int, help="dataset version (default: the newest)")
    run.add_argument("--name", required=True, help="the experiment's name")
    run.add_argument("--task", required=True, help="module:function run on each record")
    run.add_argument(
        "--scorer", action="append", default=[], help="name=module:function (repeatable)"
    )
    run.add_argument("--baseline", type=int, help="baseline experiment id (else the gate's)")
    run.add_argument("--concurrency", type=int, default=4, help="parallel calls (default 4)")
    run.add_argument("--retries", type=int, default=2, help="retries of a failing call")
    run.add_argument("--batch-size", type=int, default=100, help="results per request")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print the outcome as JSON")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    return parser


def _function(spec: str) -> Any:
    """``module:function`` imported (the current directory first on the path)."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise UsageError(f"{spec!r} is not module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot import {spec}: {exc}") from None
    if not callable(found):
        raise UsageError(f"{spec} is not a function")
    return found


def run(args: argparse.Namespace) -> int:
    from hitl_client.api import Client, HitlError, run_experiment

    scorers = {}
    for spec in args.scorer:
        name, sep, target = spec.partition("=")
        if not sep or not name:
            raise UsageError(f"--scorer {spec!r} is not name=module:function")
        scorers[name] = _function(target)
    task = _function(args.task)
    try:
        client = Client.from_env(
            url=args.url,
            api_key=args.api_key,
            org=args.org,
            project=args.project,
            timeout=args.timeout,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        outcome = run_experiment(
            client,
            dataset_id=args.dataset,
            name=args.name,
            task=task,
            scorers=scorers,
            version=args.version,
            baseline_id=args.baseline,
            concurrency=args.concurrency,
            retries=args.retries,
            batch_size=args.batch_size,
            progress=None if args.no_progress or args.json else sys.stderr,
        )
    except (HitlError, ValueError) as exc:
        print(f"hitl run: {exc}", file=sys.stderr)
        return ERROR
    if args.json:
        print(
            json.dumps(
                {
                    "experiment": outcome.experiment,
                    "posted": outcome.posted,
                    "failed": outcome.failed,
                    "experiment_url": outcome.experiment_url,
                    "compare_url": outcome.compare_url,
                    "gate": outcome.gate,
                },
                indent=2,
            )
        )
    else:
        print(f"experiment {outcome.experiment['id']}: {outcome.experiment_url}")
        print(f"  {outcome.posted} results posted, {outcome.failed} with an error")
        if outcome.compare_url:
            print(f"compare: {outcome.compare_url}")
        print(_summary(outcome.gate) if outcome.gate else "no gate on this dataset")
    return FAIL if outcome.passed is False else PASS


def _get(url: str, api_key: str, timeout: float) -> tuple[int, dict[str, Any]]:
    # The scheme was checked (http or https) in gate().
    request = urllib.request.Request(  # noqa: S310
        url, headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return exc.code, body


def _summary(verdict: dict[str, Any]) -> str:
    lines = [
        f"hitl gate: experiment {verdict['experiment']} ({verdict.get('experiment_name', '')}) "
        f"on dataset {verdict['dataset']} v{verdict['version']}"
        + (f", baseline {verdict['baseline']}" if verdict.get("baseline") else "")
    ]
    for check in verdict.get("checks", []):
        mark = MARKS.get(check.get("status"), "????")
        lines.append(f"  [{mark}] {check.get('kind')}: {check.get('message')}")
    if not verdict.get("checks"):
        lines.append("  the gate has no thresholds: nothing was checked")
    counts = verdict.get("counts", {})
    lines.append(
        f"{verdict['verdict'].upper()}: {counts.get('pass', 0)} passed, "
        f"{counts.get('fail', 0)} failed, {counts.get('not_available', 0)} not available"
    )
    return "\n".join(lines)


def gate(args: argparse.Namespace) -> int:
    missing = [
        name
        for name, value in (
            ("--url", args.url),
            ("--api-key", args.api_key),
            ("--org", args.org),
            ("--project", args.project),
        )
        if not value
    ]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}")
    base = args.url.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise UsageError(f"--url must be an http or https address, not {base!r}")
    org, project = urllib.parse.quote(args.org), urllib.parse.quote(args.project)
    url = f"{base}/api/orgs/{org}/projects/{project}/experiments/{args.experiment}/gate/"
    if args.baseline:
        url += "?" + urllib.parse.urlencode({"baseline": args.baseline})
    try:
        status, body = _get(url, args.api_key, args.timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"hitl gate: cannot reach {base}: {exc}", file=sys.stderr)
        return ERROR
    if status != 200 or "verdict" not in body:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        print(
            f"hitl gate: the server answered {status}"
            + (f" ({error.get('code')}): {error.get('message')}" if error else ""),
            file=sys.stderr,
        )
        return ERROR
    print(json.dumps(body, indent=2) if args.json else _summary(body))
    return PASS if body.get("passed") else FAIL


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return run(args) if args.command == "run" else gate(args)
    except UsageError as exc:
        print(f"hitl {args.command}: {exc}", file=sys.stderr)
        return ERROR


if __name__ == "__main__":
    sys.exit(main())
