"""``hitl gate``: the CI quality gate as a console command.

Exit codes: 0 the gate passes, 1 it fails, 2 usage, connection or server errors (the
experiment is still running, an unknown id, a dataset without a gate).
"""

from __future__ import annotations

import argparse
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
    return parser


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
        return gate(args)
    except UsageError as exc:
        print(f"hitl gate: {exc}", file=sys.stderr)
        return ERROR


if __name__ == "__main__":
    sys.exit(main())
