"""Agreement freshness: time from a submission's commit to the first stored agreement
report that covers it, under steady reviewing, with real Celery workers.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, creates an
organization with ``--reviewers`` reviewers and a queue (overlap 3, one 3-level
categorical question and one 0-4 graded question) holding ``--items`` items, of which
``--prefill`` already carry their three answers (so each computation covers a real
report, not a handful of answers). Runs ``--workers`` Celery worker processes
(``celery -A hitl worker``) and the outbox relay every ``HITL_OUTBOX_RELAY_SECONDS`` in
this process, as beat would. Then submits ``--submits`` answers at ``--rate`` per second
(each claimed and submitted through the services, one transaction each, reviewers in
turn) while a poller reads the newest report's ``last_annotation_id`` every 20 ms; a
submission is covered when a committed report's ``last_annotation_id`` reaches its id.
Prints p50, p95 and max of commit-to-covered, how many reports were computed (the
coalescing: far fewer than submissions), the computation time per report, and the load.

    .venv/bin/python bench/agreement_freshness.py
    .venv/bin/python bench/agreement_freshness.py --submits 60 --rate 2     # a quick run
    .venv/bin/python bench/agreement_freshness.py --rate 10 --prefill 3000  # heavier
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.notifications import free_port, percentile, relay_forever, stack  # noqa: E402

LABELS = ["wrong", "partial", "right"]


def setup(args: argparse.Namespace) -> tuple[Any, Any, list, list, Any]:
    from hitl import tenancy
    from tests.factories import make_tenant
    from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue

    tenant = make_tenant("Bench")
    label = make_config(
        tenant,
        name="correctness",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": name, "value": float(i)} for i, name in enumerate(LABELS)],
    )
    graded = make_config(tenant, name="helpfulness", min_value=0.0, max_value=4.0, step=1.0)
    reviewers = add_reviewers(tenant, args.reviewers)
    queue = make_queue(tenant, configs=[label, graded], reviewers=reviewers, overlap=3)
    add_traces(tenant, queue, args.items)
    with tenancy.tenant_scope(tenant.organization.pk):
        queue.refresh_from_db()
    return tenant, queue, [label, graded], reviewers, tenancy


def submit(tenant: Any, queue: Any, configs: list, user: Any, n: int) -> int | None:
    """One claim and submit by ``user``; returns the annotation id (None: nothing left)."""
    from hitl import tenancy
    from hitl.audit import Actor
    from review import services

    label, graded = configs
    with tenancy.tenant_scope(tenant.organization.pk):
        actor = Actor(user=user)
        lease = services.queue_claim_next(actor=actor, queue=queue)
        if lease is None:
            return None
        # Mostly agreeing answers, a disagreement now and then.
        values = {
            str(label.pk): LABELS[(lease.item_id + (n % 5 == 0)) % 3],
            str(graded.pk): float((lease.item_id + (n % 7 == 0)) % 5),
        }
        annotation = services.assignment_submit(actor=actor, assignment_id=lease.pk, values=values)
    return annotation.pk


def prefill(tenant: Any, queue: Any, configs: list, reviewers: list, items: int) -> None:
    """About ``items`` items answered by three reviewers each, reviewers in turn, as
    reviewing before the run."""
    for n in range(items * 3):
        submit(tenant, queue, configs, reviewers[n % len(reviewers)], n)


def newest_covered(tenant: Any, queue: Any) -> int:
    from django.db.models import Max

    from hitl import tenancy
    from review.quality.models import AgreementReport

    with tenancy.tenant_scope(tenant.organization.pk):
        row = AgreementReport.objects.filter(queue=queue).aggregate(last=Max("last_annotation_id"))
    return row["last"] or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--rate", type=float, default=2.0, help="submissions per second")
    parser.add_argument("--reviewers", type=int, default=12)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--prefill", type=int, default=500, help="items answered before")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="threads per worker")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-freshness."))
    os.chmod(run_dir, 0o755)
    pg_port, redis_port = free_port(), free_port()
    stack(f"PG_FSYNC=off start_postgres {run_dir}/pg {pg_port}")
    stack(f"start_redis {run_dir}/redis {redis_port}")
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/hitl",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HITL_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "HITL_DB_CONN_MAX_AGE": "600",
        "HITL_AGREEMENT_RESAMPLES": str(args.resamples),
        "DJANGO_SETTINGS_MODULE": "hitl.settings",
    }
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    stop = threading.Event()
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        tenant, queue, configs, reviewers, tenancy = setup(args)
        started = time.monotonic()
        prefill(tenant, queue, configs, reviewers, args.prefill)
        print(f"prefilled {args.prefill} items x 3 answers in "
              f"{time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
        from review.models import Annotation
        from review.quality.models import AgreementReport
        from review.quality.services import agreement

        with tenancy.tenant_scope(tenant.organization.pk):
            agreement.agreement_refresh(queue_id=queue.pk)  # the report before the run
            before_reports = AgreementReport.objects.filter(queue=queue).count()
            before_answers = Annotation.objects.filter(queue=queue).count()
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
        relay = threading.Thread(target=relay_forever, args=(stop,), daemon=True)
        relay.start()
        time.sleep(3)  # the workers connect
        print(f"{args.workers} worker process(es) x {args.concurrency} threads; "
              f"{before_answers} answers; load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip

        committed: dict[int, float] = {}
        covered: dict[int, float] = {}
        lock = threading.Lock()

        def poll() -> None:
            try:
                while not stop.is_set():
                    last = newest_covered(tenant, queue)
                    now = time.time()
                    with lock:
                        for annotation_id in committed:
                            if annotation_id <= last and annotation_id not in covered:
                                covered[annotation_id] = now
                    stop.wait(0.02)
            finally:
                connection.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        interval = 1.0 / args.rate
        next_at = time.monotonic()
        load = []
        for n in range(args.submits):
            user = reviewers[n % len(reviewers)]
            annotation_id = submit(tenant, queue, configs, user, n)
            if annotation_id is None:
                raise SystemExit("the queue ran out of items: raise --items")
            with lock:
                committed[annotation_id] = time.time()
            if n % 20 == 0:
                load.append(os.getloadavg()[0])
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with lock:
                if len(covered) == len(committed):
                    break
            time.sleep(0.1)
        stop.set()
        poller.join(5)
        with lock:
            delays = [covered[a] - committed[a] for a in committed if a in covered]
            missing = len(committed) - len(delays)
        with tenancy.tenant_scope(tenant.organization.pk):
            reports = list(
                AgreementReport.objects.filter(queue=queue).order_by("id")[before_reports:]
            )
        computations = len(reports) // len(configs)
        durations = [r.duration_ms for r in reports]
        print(
            f"submissions: {args.submits} at {args.rate}/s over {args.reviewers} reviewers; "
            f"{args.resamples} resamples; relay every {settings.HITL_OUTBOX_RELAY_SECONDS} s"
        )
        print(
            f"commit to covering report: p50 {percentile(delays, 50) * 1000:.0f} ms, "
            f"p95 {percentile(delays, 95) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms; "
            f"never covered: {missing}"
        )
        print(
            f"reports: {len(reports)} rows over {computations} computations of 2 questions "
            f"(coalesced from {args.submits} submissions); per question median "
            f"{statistics.median(durations) if durations else 0:.0f} ms, "
            f"max {max(durations, default=0)} ms"
        )
        print(f"load average during the run: {min(load):.1f} to {max(load):.1f}")
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
