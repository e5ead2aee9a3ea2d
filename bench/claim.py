"""Review queue claims: 50 concurrent reviewers against a 1M-item queue, overlap 3.

Starts a throwaway PostgreSQL (bin/_stack.sh), migrates, loads 1M traces and 1M queue
items with INSERT ... SELECT generate_series, then runs 50 reviewer processes (each its
own database connection) that claim the next item and submit an answer through the
real services, for a fixed time. Prints claims/s and p50/p95/p99 claim latency, then
verifies from the assignment rows that no item ever had more than 3 live leases plus
submissions, that the item counters match the assignments, and that no reviewer
received an item twice.

    .venv/bin/python bench/claim.py                       # defaults below
    .venv/bin/python bench/claim.py --items 1000000 --reviewers 50 --seconds 60
    .venv/bin/python bench/claim.py --think-ms 0,1000,3000  # one run per think time
    .venv/bin/python bench/claim.py --claim-order complete_first
    .venv/bin/python bench/claim.py --items 100000 --profile 200 --think-ms ''
        # CPU per claim+submit cycle (600 cycles by 3 reviewers in turn: this process's
        # and its PostgreSQL backend's), then one reviewer's claims and submits, one at a
        # time: queries per claim and submit, the claim statement's plan (EXPLAIN
        # ANALYZE) and a cProfile of each path

Each think time is one run on the same loaded queue (reviewers pause that long between
claiming and submitting, as people reading the trace do; 0 saturates the machine).
Takes about 5 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def django_setup(port: int) -> None:
    os.environ.update(
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/hitl",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # claims never touch Redis
            "HITL_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
            "HITL_DB_CONN_MAX_AGE": "600",
            "DJANGO_SETTINGS_MODULE": "hitl.settings",
        }
    )
    import django

    django.setup()


def insert_series(model, count_sql: str, overrides: dict[str, str], params: list) -> int:
    """INSERT INTO model's table SELECT, with every column not overridden taking the
    field's Python default (bound once), so the load survives new columns."""
    from django.db import connection
    from django.utils import timezone

    columns, expressions, bound = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        column = field.column
        columns.append(column)
        if column in overrides:
            expressions.append(overrides[column])
            continue
        if field.has_default():
            value = field.get_default()
        elif field.null:
            value = None
        elif column.endswith("_at") or column.endswith("_time"):
            value = timezone.now()
        else:
            raise SystemExit(f"bench: no value for {model.__name__}.{column}")
        expressions.append(f"%s::{field.db_type(connection)}")
        bound.append(field.get_db_prep_save(value, connection))
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(expressions)} {count_sql}"  # noqa: E501
    with connection.cursor() as cursor:
        cursor.execute(sql, bound + params)
        return cursor.rowcount


def prepare(
    items: int, reviewers: int, overlap: int, lease_ttl: int, claim_order: str = "breadth_first"
) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from hitl import tenancy
    from hitl.audit import Actor
    from projects import services as project_services
    from projects.models import Membership, Role
    from review import services
    from review.models import QueueItem
    from traces.models import Trace

    User = get_user_model()
    owner = User.objects.create_user(username="owner@bench", email="owner@bench")
    organization = project_services.organization_create(
        actor=Actor(user=owner), name="Bench", slug="bench"
    )
    with tenancy.tenant_scope(organization.pk):
        project = project_services.project_create(actor=Actor(user=owner), name="Bench app")
        people = []
        for n in range(reviewers):
            user = User.objects.create_user(username=f"r{n}@bench", email=f"r{n}@bench")
            people.append(Membership.objects.create(user=user, role=Role.REVIEWER))
        config = services.score_config_create(
            actor=Actor(user=owner),
            project=project,
            name="correctness",
            data_type="numeric",
            min_value=0.0,
            max_value=1.0,
            step=0.25,
            rubric=[
                {"label": "Wrong", "definition": "Incorrect.", "examples": ["2+2=5"]},
                {"label": "Right", "definition": "Correct.", "examples": ["2+2=4"]},
            ],
        )
        queue = services.queue_create(
            actor=Actor(user=owner),
            project=project,
            name="bench queue",
            overlap=overlap,
            lease_ttl_seconds=lease_ttl,
            blind_mode=True,
            form=[{"config_id": config.pk}],
            reviewers=[{"membership_id": m.pk} for m in people],
            # (the default is left unsaid, for trees from before the claim order)
            **({"claim_order": claim_order} if claim_order != "breadth_first" else {}),
        )
        started = time.perf_counter()
        insert_series(
            Trace,
            "FROM generate_series(1, %s) AS g",
            {
                "organization_id": str(organization.pk),
                "project_id": str(project.pk),
                "external_id": "'bench-' || g",
                "name": "'bench run ' || g",
            },
            [items],
        )
        insert_series(
            QueueItem,
            "FROM traces_trace t WHERE t.project_id = %s",
            {
                "organization_id": str(organization.pk),
                "queue_id": str(queue.pk),
                "project_id": str(project.pk),
                "target_type": "'trace'",
                "trace_id": "t.id",
                "source": "'bulk_filter'",
                "open_slots": str(overlap),
            },
            [project.pk],
        )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE traces_trace")
            cursor.execute("VACUUM ANALYZE review_queueitem")
        load_seconds = time.perf_counter() - started
    return {
        "organization_id": organization.pk,
        "queue_id": queue.pk,
        "config_id": config.pk,
        "user_ids": [m.user_id for m in people],
        "load_seconds": load_seconds,
    }


def reviewer(args: tuple) -> None:
    port, setup, user_id, seconds, think_ms, out_path, start_at = args
    django_setup(port)
    from django.contrib.auth import get_user_model

    from hitl import tenancy
    from hitl.audit import Actor
    from review import services
    from review.models import ReviewQueue

    user = get_user_model().objects.get(pk=user_id)
    actor = Actor(user=user, source="command")
    latencies, items, errors = [], [], 0
    with tenancy.tenant_scope(setup["organization_id"]):
        queue = ReviewQueue.objects.get(pk=setup["queue_id"])
        services.queue_claim_next  # noqa: B018 - imported before the clock starts
        while time.time() < start_at:
            time.sleep(0.01)
        deadline = start_at + seconds
        while time.time() < deadline:
            t0 = time.perf_counter()
            assignment = services.queue_claim_next(actor=actor, queue=queue)
            latencies.append((time.perf_counter() - t0) * 1000)
            if assignment is None:
                break
            items.append(assignment.item_id)
            if think_ms:
                time.sleep(think_ms / 1000)
            try:
                services.assignment_submit(
                    actor=actor,
                    assignment_id=assignment.pk,
                    values={str(setup["config_id"]): 0.75},
                )
            except Exception:
                errors += 1
    Path(out_path).write_text(
        json.dumps({"latencies": latencies, "items": items, "errors": errors})
    )


def verify(setup: dict, results: list[dict], overlap: int) -> list[str]:
    from django.db import connection

    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT item_id FROM review_assignment WHERE queue_id = %s"
            " AND state IN ('leased', 'submitted') GROUP BY item_id HAVING count(*) > %s) x",
            [setup["queue_id"], overlap],
        )
        over = cursor.fetchone()[0]
        if over:
            problems.append(f"{over} items have more than {overlap} live leases + submissions")
        # Nothing expires, skips or releases during the run: every assignment ever made
        # is still leased or submitted, so the check above covers "ever".
        cursor.execute(
            "SELECT count(*) FROM review_assignment WHERE queue_id = %s"
            " AND state NOT IN ('leased', 'submitted')",
            [setup["queue_id"]],
        )
        if cursor.fetchone()[0]:
            problems.append("some assignments ended otherwise; 'ever' needs a closer look")
        cursor.execute(
            """
            SELECT count(*) FROM review_queueitem qi
            LEFT JOIN (SELECT item_id,
                              count(*) FILTER (WHERE state = 'leased') AS live,
                              count(*) FILTER (WHERE state = 'submitted') AS done
                       FROM review_assignment WHERE queue_id = %s GROUP BY item_id) a
                   ON a.item_id = qi.id
            WHERE qi.queue_id = %s AND (qi.live_leases <> coalesce(a.live, 0)
               OR qi.submissions <> coalesce(a.done, 0)
               OR qi.open_slots <> %s - coalesce(a.live, 0) - coalesce(a.done, 0))
            """,
            [setup["queue_id"], setup["queue_id"], overlap],
        )
        drift = cursor.fetchone()[0]
        if drift:
            problems.append(f"{drift} items' counters disagree with their assignments")
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM review_assignment WHERE queue_id = %s"
            " GROUP BY item_id, reviewer_id HAVING count(*) > 1) x",
            [setup["queue_id"]],
        )
        if cursor.fetchone()[0]:
            problems.append("a reviewer holds two assignments on one item")
    for user_id, result in zip(setup["user_ids"], results, strict=True):
        if len(result["items"]) != len(set(result["items"])):
            problems.append(f"reviewer {user_id} received an item twice")
    return problems


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cycle_cpu(setup: dict, count: int, overlap: int) -> None:
    """CPU per claim and submit, as the timed runs spend it: ``count`` cycles by
    ``overlap`` reviewers in turn on untouched items (so every ``overlap``-th submit
    closes its item, as in a run), in this process, no profiler; this process's CPU
    and its PostgreSQL backend's (read from /proc: the database is local)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from hitl import tenancy
    from hitl.audit import Actor
    from review import services
    from review.models import ReviewQueue

    # The last reviewers: the profile's reviewer (the first) then finds these items done.
    users = get_user_model().objects.filter(pk__in=setup["user_ids"][-overlap:])
    actors = [Actor(user=user, source="command") for user in users]
    values = {str(setup["config_id"]): 0.75}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()

    def run(queue: ReviewQueue, cycles: int) -> dict[str, float]:
        spent = {"claim": 0.0, "submit": 0.0}
        for n in range(cycles):
            actor = actors[n % overlap]
            t0 = time.process_time()
            lease = services.queue_claim_next(actor=actor, queue=queue)
            t1 = time.process_time()
            services.assignment_submit(actor=actor, assignment_id=lease.pk, values=values)
            spent["claim"] += t1 - t0
            spent["submit"] += time.process_time() - t1
        return spent

    with tenancy.tenant_scope(setup["organization_id"]):
        queue = ReviewQueue.objects.get(pk=setup["queue_id"])
        run(queue, overlap * 3)  # warm: prepared statements, caches
        cycles = count - count % overlap
        started, backend_started = time.process_time(), _cpu_seconds(backend)
        spent = run(queue, cycles)
        here = (time.process_time() - started) * 1000 / cycles
        there = (_cpu_seconds(backend) - backend_started) * 1000 / cycles
    print(
        f"\nCPU per claim+submit cycle, {cycles} cycles by {overlap} reviewers in turn "
        f"(every {overlap}th submit closes its item): this process {here:.2f} ms "
        f"(claim {spent['claim'] * 1000 / cycles:.2f}, submit "
        f"{spent['submit'] * 1000 / cycles:.2f}), its PostgreSQL backend {there:.2f} ms, "
        f"together {here + there:.2f} ms  (load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def profile(setup: dict, count: int) -> None:
    """``count`` claims and submits by one reviewer, one at a time, in this process:
    the queries each makes, the claim statement's plan, and where the Python time goes."""
    import cProfile
    import pstats

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from hitl import tenancy
    from hitl.audit import Actor
    from review import services
    from review.models import ReviewQueue
    from review.services import claims

    user = get_user_model().objects.get(pk=setup["user_ids"][0])
    actor = Actor(user=user, source="command")
    values = {str(setup["config_id"]): 0.75}
    with tenancy.tenant_scope(setup["organization_id"]):
        queue = ReviewQueue.objects.get(pk=setup["queue_id"])
        for _ in range(3):  # warm: prepared statements, caches
            lease = services.queue_claim_next(actor=actor, queue=queue)
            services.assignment_submit(actor=actor, assignment_id=lease.pk, values=values)
        with CaptureQueriesContext(connection) as claim_queries:
            lease = services.queue_claim_next(actor=actor, queue=queue)
        with CaptureQueriesContext(connection) as submit_queries:
            services.assignment_submit(actor=actor, assignment_id=lease.pk, values=values)
        # The claim statement runs on a raw psycopg cursor, which Django does not log.
        print(f"\nqueries: claim {len(claim_queries) + 1} (the claim statement and:)")
        for query in claim_queries.captured_queries:
            print("   ", query["time"], query["sql"][:150])
        print(f"queries: submit {len(submit_queries)}")
        for query in submit_queries.captured_queries:
            print("   ", query["time"], query["sql"][:150].replace("\n", " "))
        if hasattr(claims, "claim_sql"):  # (a tree from before it was named: no plan)
            params = claims.claim_params(queue, user.pk, claims.time_now())
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + claims.claim_sql(queue), params)
                print("\nclaim statement plan:")
                for (line,) in cursor.fetchall():
                    print("   ", line)
                transaction.set_rollback(True)
        timings = {"claim": [], "submit": []}
        profiles = {"claim": cProfile.Profile(), "submit": cProfile.Profile()}
        for _ in range(count):
            t0 = time.perf_counter()
            with profiles["claim"]:
                lease = services.queue_claim_next(actor=actor, queue=queue)
            t1 = time.perf_counter()
            if lease is None:
                break
            with profiles["submit"]:
                services.assignment_submit(actor=actor, assignment_id=lease.pk, values=values)
            timings["claim"].append((t1 - t0) * 1000)
            timings["submit"].append((time.perf_counter() - t1) * 1000)
        for name, values_ms in timings.items():
            print(
                f"\n{name}, one reviewer alone, {len(values_ms)} times: "
                f"p50 {percentile(values_ms, 50):.2f} ms  p95 {percentile(values_ms, 95):.2f} ms"
                f"  (load average {os.getloadavg()[0]:.1f})"
            )
            pstats.Stats(profiles[name]).sort_stats("cumulative").print_stats(18)


def run_phase(
    args: argparse.Namespace, port: int, setup: dict, run_dir: Path, think_ms: float
) -> bool:
    """One timed run of every reviewer; prints figures, verifies; True if it failed."""
    from django.db import connections

    connections.close_all()
    outs = [run_dir / f"reviewer-{think_ms:g}-{n}.json" for n in range(args.reviewers)]
    start_at = time.time() + 3 + args.reviewers * 0.05
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(
            target=reviewer,
            args=((port, setup, uid, args.seconds, think_ms, str(out), start_at),),
        )
        for uid, out in zip(setup["user_ids"], outs, strict=True)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    results = [json.loads(out.read_text()) for out in outs]
    latencies = [lat for r in results for lat in r["latencies"]]
    claims = sum(len(r["items"]) for r in results)
    errors = sum(r["errors"] for r in results)
    print(
        f"\nreviewers={args.reviewers} overlap={args.overlap} items={args.items} "
        f"load average {os.getloadavg()[0]:.1f} "
        f"seconds={args.seconds:g} think_ms={think_ms:g}"
    )
    print(f"claims: {claims}  ({claims / args.seconds:.0f} claims/s)  submit errors: {errors}")
    print(
        "claim latency ms: "
        f"p50 {percentile(latencies, 50):.1f}  p95 {percentile(latencies, 95):.1f}  "
        f"p99 {percentile(latencies, 99):.1f}  mean {statistics.fmean(latencies):.1f}  "
        f"max {max(latencies):.1f}",
        flush=True,
    )
    problems = verify(setup, results, args.overlap)
    for problem in problems:
        print("FAILED:", problem)
    if not problems:
        print(
            f"verified: no item over {args.overlap} live leases + submissions, counters "
            "match assignments, no reviewer received an item twice",
            flush=True,
        )
    return bool(problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think-ms", default="0,1000,3000", help="comma-separated, one run each")
    parser.add_argument("--keep", action="store_true", help="leave the database running")
    parser.add_argument(
        "--claim-order", default="breadth_first", choices=["breadth_first", "complete_first"]
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="profile this many claims by one reviewer first"
    )
    args = parser.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-claim."))
    os.chmod(run_dir, 0o755)
    port = free_port()
    print(f"PostgreSQL on :{port} in {run_dir}", flush=True)
    stack(f"PG_FSYNC=off start_postgres {run_dir}/pg {port}")
    try:
        django_setup(port)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        setup = prepare(
            args.items, args.reviewers, args.overlap, lease_ttl=3600, claim_order=args.claim_order
        )
        print(f"loaded {args.items} traces and queue items in {setup['load_seconds']:.1f} s")
        connections.close_all()

        if args.profile:
            cycle_cpu(setup, args.profile * 3, args.overlap)
            connections.close_all()
            profile(setup, args.profile)
            connections.close_all()
        failed = False
        for think_ms in [float(t) for t in args.think_ms.split(",") if t]:
            failed |= run_phase(args, port, setup, run_dir, think_ms)
            connections.close_all()
        if failed:
            sys.exit(1)
    finally:
        if not args.keep:
            stack(f"stop_postgres {run_dir}/pg")
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
