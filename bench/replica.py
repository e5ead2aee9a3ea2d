"""Trace list p95 on a read replica while ingestion runs on the primary, against the
primary alone.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh, fsync off as in bin/test),
migrates, loads agent traces with COPY (``bench/trace_reads.py``'s loader), then takes a
base backup with ``pg_basebackup -R`` and starts it as a streaming replica on another
port (``DATABASE_REPLICA_URLS``). Reads go through Django's test client in this process
(middleware, session authentication, tenant resolution, filter, page, JSON), as a
viewer who writes nothing. Ingestion runs in separate processes, each posting REST
batches (10 traces of 8 spans, ~1 KB per span) with an ``ingest`` key as fast as it can
through the test client, so every write lands on the primary.

Four runs per list: reads on the primary, then on the replica, each without and with
ingestion running. Prints p50/p95, the ingestion rate, the replica's lag and the load.

    .venv/bin/python bench/replica.py                    # 200k spans, 2 ingesting processes
    .venv/bin/python bench/replica.py --spans 50000 --runs 40 --ingesters 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import trace_reads  # noqa: E402  (the stack, the loader, the timing)


def ingest_worker(env: dict, url: str, key: str, seconds: float, seed: int, out) -> None:
    """Posts batches until ``seconds`` have passed; sends back spans stored."""
    os.environ.update(env)
    import django

    django.setup()
    from django.test import Client

    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    payload = "x" * 900
    stored, batch = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        events = []
        for t in range(10):
            trace_id = f"live-{seed}-{batch}-{t}"
            events.append({"type": "trace", "body": {"id": trace_id, "name": "live-run"}})
            for s in range(8):
                body = {
                    "id": f"{trace_id}-{s}",
                    "trace_id": trace_id,
                    "name": f"step {s}",
                    "kind": "llm",
                    "input": {"messages": [{"role": "user", "content": payload}]},
                }
                events.append({"type": "span", "body": body})
        response = client.post(
            url, json.dumps({"events": events}), content_type="application/json", **headers
        )
        assert response.status_code < 300, response.content[:300]
        stored += 80
        batch += 1
    out.put(stored)


def replica_lag_ms(alias: str) -> float | None:
    from hitl import replica

    state = replica.probe(alias)
    return None if state.lag_seconds is None else state.lag_seconds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--ingesters", type=int, default=2)
    args = parser.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-replica."))
    os.chmod(run_dir, 0o755)
    pg_port, replica_port, redis_port = (trace_reads.free_port() for _ in range(3))
    started = time.perf_counter()
    os.environ["DATABASE_REPLICA_URLS"] = f"postgres://postgres@127.0.0.1:{replica_port}/hitl"
    os.environ["HITL_REPLICA_PROBE_SECONDS"] = "1"
    os.environ["HITL_THROTTLE_INGEST"] = "1000000/min"
    os.environ["HITL_THROTTLE_API_KEY"] = "1000000/min"
    try:
        trace_reads.stack(f"PG_FSYNC=off start_postgres {run_dir}/pg {pg_port}")
        trace_reads.stack(f"start_redis {run_dir}/redis {redis_port}")
        trace_reads.django_setup(pg_port, redis_port)
        run(args, run_dir, pg_port, replica_port)
    finally:
        trace_reads.stack(
            f"[ -f {run_dir}/replica/postmaster.pid ] && run_as_db_user "
            f"$(pg_bindir)/pg_ctl -D {run_dir}/replica -m immediate -w stop >/dev/null 2>&1; "
            f"stop_postgres {run_dir}/pg; stop_redis {run_dir}/redis"
        )
        subprocess.run(["rm", "-rf", str(run_dir)], check=False)
        print(f"\nwhole run: {time.perf_counter() - started:.0f} s")


def start_replica(run_dir: Path, pg_port: int, replica_port: int) -> None:
    data = run_dir / "replica"
    trace_reads.stack(
        f"mkdir -p {data}; chmod 700 {data}; "
        f'[ "$(id -u)" -eq 0 ] && chown postgres {data}; '
        f"run_as_db_user $(pg_bindir)/pg_basebackup -h 127.0.0.1 -p {pg_port} -U postgres "
        f"-D {data} -R -X stream -c fast; "
        f"run_as_db_user $(pg_bindir)/pg_ctl -D {data} -l {data}/server.log -w -t 60 "
        f'-o "-p {replica_port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off '
        f'-c max_connections=200 -c shared_buffers=512MB" start >/dev/null'
    )


def run(args, run_dir: Path, pg_port: int, replica_port: int) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    from hitl import replica
    from tests.factories import make_tenant
    from traces import partitions

    call_command("migrate", verbosity=0)
    month = partitions.month_start(trace_reads.T_END - timedelta(days=31))
    while month <= trace_reads.T_END:
        partitions.span_partition_ensure(month)
        month = partitions.next_month(month)
    tenant = make_tenant("Bench")
    org, project = tenant.organization, tenant.project
    n_traces = int(args.spans / 8)
    print(f"loading ~{args.spans:,} spans in {n_traces:,} traces with COPY ...", flush=True)
    connection.ensure_connection()
    loader = trace_reads.Loader(connection.connection, org.pk, project.pk)
    loader.threads(max(1, n_traces // 6))
    spans = loader.traces(n_traces, 8.0)
    loader.finish()
    with connection.connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"loaded {spans:,} spans; starting the replica (pg_basebackup -R) ...", flush=True)
    start_replica(run_dir, pg_port, replica_port)
    alias = settings.DATABASE_REPLICAS[0]
    replica.forget_states()
    assert replica.probe(alias).usable, replica.probe(alias)

    client = Client()
    client.force_login(tenant.viewer)
    api = f"/api/orgs/{org.slug}/projects/{project.slug}/traces/"
    page = f"/orgs/{org.slug}/projects/{project.slug}/traces/"
    lists = [
        ("API list, newest 50", api),
        ("API list, name + errors", api + "?name=refund-flow&has_error=true"),
        ("API list, score + thumbs down", api + "?score=correctness%3C0.6&feedback=thumbs_down"),
        ("explorer page, newest 50", page),
    ]
    env = {k: v for k, v in os.environ.items() if k.startswith(("HITL_", "DATABASE", "REDIS"))}
    env["DJANGO_SETTINGS_MODULE"] = "hitl.settings"
    ingest_url = f"/api/orgs/{org.slug}/projects/{project.slug}/ingest/"
    key = tenant.key("ingest")

    statements = {"default": 0, alias: 0}

    def counter(name: str):
        def count(execute, sql, params, many, context):
            if "traces_trace" in sql:
                statements[name] += 1
            return execute(sql, params, many, context)

        return count

    def served_by(label: str, url: str) -> tuple[str, dict]:
        """Times ``url``; says which database answered its trace queries."""
        before = dict(statements)
        with (
            connections["default"].execute_wrapper(counter("default")),
            connections[alias].execute_wrapper(counter(alias)),
        ):
            figures = trace_reads.measure(client, url, args.runs)
        on = {name: statements[name] - before[name] for name in statements}
        return ("replica" if on[alias] > on["default"] else "primary"), figures

    results = []
    for ingesting in (False, True):
        for target in ("primary", "replica"):
            settings.DATABASE_REPLICAS = [alias] if target == "replica" else []
            replica.forget_states()
            processes, queue = [], multiprocessing.get_context("spawn").Queue()
            seconds = 0.0
            if ingesting:
                # Long enough for every list of this run; stopped when it is done.
                seconds = 4.0 + len(lists) * (args.runs + 4) * 0.4
                for n in range(args.ingesters):
                    process = multiprocessing.get_context("spawn").Process(
                        target=ingest_worker,
                        args=(env, ingest_url, key, seconds, n, queue),
                    )
                    process.start()
                    processes.append(process)
                time.sleep(4.0)  # the ingesters are up and posting
            began = time.perf_counter()
            loads, lags, rows = [trace_reads.load_average()], [], []
            for label, url in lists:
                where, figures = served_by(label, url)
                loads.append(trace_reads.load_average())
                if target == "replica":
                    lag = replica_lag_ms(alias)
                    if lag is not None:
                        lags.append(lag)
                rows.append((label, where, figures))
            elapsed = time.perf_counter() - began
            stored = sum(queue.get(timeout=120) for _ in processes)
            for process in processes:
                process.join()
            rate = stored / seconds if seconds else 0
            results.append((ingesting, target, rows, rate, lags, loads, elapsed))
            for label, where, figures in rows:
                print(
                    f"{'ingesting' if ingesting else 'quiet':9} reads on {target:7} "
                    f"(served by {where:7}) {label:32} p50 {figures['p50']:6.1f} ms  "
                    f"p95 {figures['p95']:6.1f} ms",
                    flush=True,
                )
            if ingesting:
                print(f"  ingestion: {rate:,.0f} spans/s over {seconds:.0f} s", flush=True)
            if lags:
                print(f"  replica lag at the probes: {', '.join(f'{v:.0f}' for v in lags)} ms")
            print(f"  load average: {' | '.join(loads)}", flush=True)
    connections.close_all()
    print("\n| list | ingestion | reads on | p50 | p95 |")
    print("| --- | --- | --- | --- | --- |")
    for ingesting, target, rows, rate, _lags, _loads, _elapsed in results:
        for label, _where, figures in rows:
            shown = f"{rate:,.0f} spans/s" if ingesting else "none"
            print(
                f"| {label} | {shown} | {target} | {figures['p50']:.1f} ms | "
                f"{figures['p95']:.1f} ms |"
            )


if __name__ == "__main__":
    main()
