"""What the kept score averages (traces/score_averages.py) cost a write of scores.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, makes one project
with ``--traces`` traces, then times statements that write scores, each repeated
``--runs`` times, with the averages' triggers on and off in turns (``ALTER TABLE ... DISABLE
TRIGGER``; the trace signals' triggers stay on in both), in one transaction rolled back
after each statement so every run starts from the same rows:

* a batch insert as ingestion sends it (``--batch`` scores over as many traces, one
  ``INSERT ... SELECT``, about half on traces that already have that score name);
* one score inserted alone (a reviewer's answer writes one human score);
* an update of one score's value, and a delete of one score.

Prints the median and p95 per statement and the ratio on/off.

    .venv/bin/python bench/score_writes.py
    .venv/bin/python bench/score_writes.py --batch 5000 --runs 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.trace_reads import load_average, percentile, throwaway_stack  # noqa: E402

TRIGGERS = ("traces_score_averages_insert", "traces_score_averages_update",
            "traces_score_averages_delete")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with throwaway_stack("hitl-bench-scores."):
        run(args)


def run(args) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from tests.factories import make_tenant

    call_command("migrate", verbosity=0)
    tenant = make_tenant("Bench")
    org, project = tenant.organization.pk, tenant.project.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO traces_trace (organization_id, project_id, external_id, name, "
            "metadata, tags, user_id, environment, release, input_tokens, output_tokens, "
            "total_tokens, status, error_message, is_placeholder, created_at, updated_at) "
            "SELECT %s, %s, 't-' || n, 'bench', '{}', '{}', '', '', '', 0, 0, 0, 'ok', '', "
            "false, now(), now() FROM generate_series(1, %s) AS n",
            [org, project, args.traces],
        )
        # One score of each name on every other trace: half the batch meets an average.
        cursor.execute(
            "INSERT INTO traces_score (organization_id, project_id, trace_id, name, "
            "data_type, value, label, rationale, source, source_name, source_version, "
            "metadata, created_at, updated_at) "
            "SELECT organization_id, project_id, id, 'correctness', 'numeric', random(), "
            "'', '', 'llm_judge', '', '', '{}', now(), now() FROM traces_trace "
            "WHERE project_id = %s AND id %% 2 = 0",
            [project],
        )
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT min(id), max(id) FROM traces_trace")
        low, high = cursor.fetchone()
        cursor.execute("SELECT id FROM traces_score ORDER BY id LIMIT 1")
        (score_id,) = cursor.fetchone()

    batch = (
        "INSERT INTO traces_score (organization_id, project_id, trace_id, name, data_type, "
        "value, label, rationale, source, source_name, source_version, metadata, "
        "created_at, updated_at) "
        "SELECT %s, %s, t, 'correctness', 'numeric', random(), '', '', 'code', '', '', "
        "'{}', now(), now() FROM generate_series(%s, %s) AS t"
    )
    statements = [
        (f"insert {args.batch:,} scores", batch, [org, project, low, low + args.batch - 1]),
        ("insert 1 score", batch, [org, project, low + 1, low + 1]),
        ("update 1 score's value", "UPDATE traces_score SET value = 0.5 WHERE id = %s",
         [score_id]),
        ("delete 1 score", "DELETE FROM traces_score WHERE id = %s", [score_id]),
    ]  # fmt: skip
    assert high - low + 1 >= args.batch

    def once(sql: str, params: list, on: bool) -> float:
        with transaction.atomic(), connection.cursor() as cursor:
            for trigger in TRIGGERS:
                state = "ENABLE" if on else "DISABLE"
                cursor.execute(f"ALTER TABLE traces_score {state} TRIGGER {trigger}")
            started = time.perf_counter()
            cursor.execute(sql, params)
            spent = (time.perf_counter() - started) * 1000
            transaction.set_rollback(True)
        return spent

    def timed(sql: str, params: list) -> tuple[list[float], list[float]]:
        """On and off in turns, so a change in the machine's load falls on both."""
        on, off = [], []
        for _ in range(args.runs):
            on.append(once(sql, params, True))
            off.append(once(sql, params, False))
        return on, off

    print(f"load average before: {load_average()} (2 cores)")
    print(f"{args.traces:,} traces, {args.traces // 2:,} scores; {args.runs} runs each, ms")
    print(f"{'statement':26} {'on p50':>8} {'p95':>8} {'off p50':>8} {'p95':>8} {'on/off':>7}")
    for label, sql, params in statements:
        on, off = timed(sql, params)
        ratio = statistics.median(on) / statistics.median(off)
        print(
            f"{label:26} {statistics.median(on):8.2f} {percentile(on, 95):8.2f} "
            f"{statistics.median(off):8.2f} {percentile(off, 95):8.2f} {ratio:7.2f}",
            flush=True,
        )
    print(f"load average after: {load_average()} (2 cores)")


if __name__ == "__main__":
    main()
