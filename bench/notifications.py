"""Notifications: commit to first delivery attempt, fan-out without loss, Slack's rate.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, creates an
organization, and runs real Celery workers (``celery -A hitl worker``, separate
processes) and a local HTTP receiver on loopback. The relay runs every second in this
process, as beat would. Three phases:

1. latency: ``--latency-events`` events, one every 50 ms, each committed by its own
   transaction; for each, the time from its commit to the receiver seeing its first
   request (p50, p95, max). Budget: p95 under 2 s.
2. fan-out: ``--events`` events (100 per transaction) to 10 webhook destinations; waits
   until every delivery succeeded, checks the receiver got each (event, destination)
   exactly once, and prints deliveries/s.
3. Slack burst: ``--burst`` events at once to one Slack-style destination (the local
   receiver); checks all arrive, and that no window of the arrival times holds more than
   the burst plus one per second. About 200 s for 200 events.

    .venv/bin/python bench/notifications.py
    .venv/bin/python bench/notifications.py --events 2000 --burst 20   # a quick run
    .venv/bin/python bench/notifications.py --phases latency,burst
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack(command: str) -> None:
    subprocess.run(["bash", "-c", f"source {ROOT}/bin/_stack.sh; {command}"], check=True, cwd=ROOT)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


class Receiver:
    """Records (arrival time, path, webhook-id or Slack text) of every request; 200."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("webhook-id") or body.decode(errors="replace")
                with receiver.lock:
                    receiver.arrivals.append((now, self.path, key))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def on(self, prefix: str) -> list[tuple[float, str, str]]:
        with self.lock:
            return [a for a in self.arrivals if a[1].startswith(prefix)]


def relay_forever(stop: threading.Event) -> None:
    from django.db import connection

    from hitl import outbox

    while not stop.is_set():
        try:
            outbox.relay()
        finally:
            connection.close()
        stop.wait(1.0)


def wait(predicate: Any, what: str, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def make_destination(tenant: Any, name: str, kind: str, url: str, types: list[str]) -> Any:
    from hitl import tenancy
    from hitl.audit import Actor
    from projects.notifications.destinations import destination_create

    with tenancy.tenant_scope(tenant.organization.pk):
        destination, _secret = destination_create(
            actor=Actor(user=tenant.owner), name=name, kind=kind, url=url, event_types=types
        )
    return destination


def emit(tenant: Any, event_type: str, count: int, label: str) -> list[tuple[str, float]]:
    """``count`` events in one transaction; returns (uid, commit time) of each."""
    from django.db import transaction

    from hitl import tenancy
    from projects.notifications import event_emit

    uids = []
    with tenancy.tenant_scope(tenant.organization.pk), transaction.atomic():
        for n in range(count):
            event = event_emit(
                event_type,
                organization_id=tenant.organization.pk,
                project_id=tenant.project.pk,
                payload={"summary": f"{label} {n}", "url": "http://localhost:8000/"},
            )
            uids.append(event.uid)
    committed = time.time()
    return [(uid, committed) for uid in uids]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def phase_latency(
    tenant: Any, receiver: Receiver, events: int, warmup: int = 0
) -> dict[str, float]:
    from projects.notifications import catalogue

    url = receiver.url("/latency")
    make_destination(tenant, "latency", "webhook", url, [catalogue.MEMBER_INVITED])
    if warmup:
        # Long-running workers are warm: every thread has its database connection and
        # the modules of the path are imported. Cold workers are measured apart.
        for n in range(warmup):
            emit(tenant, catalogue.MEMBER_INVITED, 1, f"warm-up {n}")
        wait(lambda: len(receiver.on("/latency")) >= warmup, "the warm-up", 300)
        time.sleep(1)
    seen = len(receiver.on("/latency"))
    committed: dict[str, float] = {}
    for n in range(events):
        ((uid, at),) = emit(tenant, catalogue.MEMBER_INVITED, 1, f"latency {n}")
        committed[uid] = at
        time.sleep(0.05)
    wait(lambda: len(receiver.on("/latency")) >= seen + events, "latency deliveries", 300)
    first: dict[str, float] = {}
    for at, _path, uid in receiver.on("/latency")[seen:]:
        first.setdefault(uid, at)
    delays = [first[uid] - committed[uid] for uid in committed]
    half = len(delays) // 2
    return {
        "events": events,
        "warm-up events": warmup,
        "p50_ms": percentile(delays, 50) * 1000,
        "p95_ms": percentile(delays, 95) * 1000,
        "max_ms": max(delays) * 1000,
        # A tail that grows from the first half to the second is a backlog (the workers
        # fall behind), not a slow hop.
        "p95_first_half_ms": percentile(delays[:half], 95) * 1000,
        "p95_second_half_ms": percentile(delays[half:], 95) * 1000,
    }


def phase_fan_out(tenant: Any, receiver: Receiver, events: int) -> dict[str, Any]:
    from hitl import tenancy
    from projects.models import Delivery, DeliveryState
    from projects.notifications import catalogue

    for n in range(10):
        url = receiver.url(f"/fan/{n}")
        make_destination(tenant, f"fan-out {n}", "webhook", url, [catalogue.API_KEY_CREATED])
    started = time.monotonic()
    uids: list[str] = []
    for _ in range(0, events, 100):
        uids += [uid for uid, _at in emit(tenant, catalogue.API_KEY_CREATED, 100, "fan-out")]
    emitted = time.monotonic() - started
    expected = 10 * len(uids)

    def done() -> bool:
        with tenancy.tenant_scope(tenant.organization.pk):
            return (
                Delivery.objects.filter(
                    destination__name__startswith="fan-out", state=DeliveryState.SUCCEEDED
                ).count()
                >= expected
            )

    wait(done, "every fan-out delivery", 3 * 3600)
    elapsed = time.monotonic() - started
    received = Counter((path, uid) for _at, path, uid in receiver.on("/fan/"))
    missing = expected - len(received)
    duplicates = sum(c - 1 for c in received.values())
    return {
        "events": len(uids),
        "deliveries": expected,
        "emit_s": emitted,
        "elapsed_s": elapsed,
        "deliveries_per_s": expected / elapsed,
        "events_per_s": len(uids) / elapsed,
        "missing": missing,
        "duplicates": duplicates,
    }


def phase_burst(tenant: Any, receiver: Receiver, events: int) -> dict[str, Any]:
    from django.conf import settings

    from projects.notifications import catalogue

    make_destination(
        tenant,
        "slack burst",
        "slack",
        receiver.url("/services/T0/B0/burst"),
        [catalogue.MEMBER_JOINED],
    )
    started = time.time()
    emit(tenant, catalogue.MEMBER_JOINED, events, "burst")
    wait(lambda: len(receiver.on("/services/")) >= events, "the Slack burst", events * 3 + 120)
    times = sorted(at for at, _p, _k in receiver.on("/services/"))
    burst, rate = settings.HITL_SLACK_BURST, settings.HITL_SLACK_RATE_PER_SECOND
    # The most arrivals in any window of w seconds, against burst + rate * w.
    worst_excess = 0.0
    for window in (1.0, 5.0, 10.0, 60.0):
        most = max(sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times))
        worst_excess = max(worst_excess, most - (burst + rate * window))
    texts = Counter(k for _at, _p, k in receiver.on("/services/"))
    return {
        "events": events,
        "received": len(times),
        "distinct": len(texts),
        "span_s": times[-1] - started,
        "first_10_s": round(times[min(9, len(times) - 1)] - started, 2),
        "worst_excess_over_allowance": worst_excess,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument(
        "--warmup", type=int, default=40, help="events sent (and not measured) before latency"
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--phases", default="latency,fan-out,burst")
    args = parser.parse_args()
    phases = args.phases.split(",")

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-notify."))
    os.chmod(run_dir, 0o755)
    pg_port, redis_port = free_port(), free_port()
    stack(f"PG_FSYNC=off start_postgres {run_dir}/pg {pg_port}")
    stack(f"start_redis {run_dir}/redis {redis_port}")
    receiver = Receiver()
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/hitl",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HITL_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "HITL_DB_CONN_MAX_AGE": "600",
        "HITL_WEBHOOKS_ALLOW_HOSTS": f"127.0.0.1:{receiver.server.server_address[1]}",
        "DJANGO_SETTINGS_MODULE": "hitl.settings",
    }
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    stop = threading.Event()
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from tests.factories import make_tenant

        tenant = make_tenant("Bench")
        log = (run_dir / "workers.log").open("ab")
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "celery", "-A", "hitl", "worker"),
                        *("--pool=threads", f"--concurrency={args.concurrency}"),
                        *("--loglevel=WARNING", "--without-gossip", "--without-mingle"),
                    ],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        threading.Thread(target=relay_forever, args=(stop,), daemon=True).start()
        time.sleep(3)  # the workers connect
        print(f"{args.workers} worker processes x {args.concurrency} threads; load "
              f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        if "latency" in phases:
            pids = [worker.pid for worker in workers]
            cpu_before = cpu_seconds(pids)
            latency = phase_latency(tenant, receiver, args.latency_events, args.warmup)
            print("latency:", latency, flush=True)
            total = args.latency_events + args.warmup
            per_event = (cpu_seconds(pids) - cpu_before) / total * 1000
            print(f"  worker CPU per event: {per_event:.1f} ms", flush=True)
        if "fan-out" in phases:
            print("fan-out:", phase_fan_out(tenant, receiver, args.events), flush=True)
        if "burst" in phases:
            print("burst:", phase_burst(tenant, receiver, args.burst), flush=True)
        print(f"load at the end {os.getloadavg()[0]:.1f}")
    finally:
        stop.set()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        stack(f"stop_postgres {run_dir}/pg; stop_redis {run_dir}/redis")
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
