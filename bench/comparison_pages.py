"""Comparison review page: submit to the next item, server time (budget: p95 < 200 ms).

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, builds one
organization with a comparison queue (two criteria, "much better" asked) and --items
comparison items of two outputs (each about --chars characters), through the services.
Then a reviewer, in process with Django's test client on that database, answers every
item: each step is the submit (POST, the preferences stored, the lease closed, the next
item claimed) and the next item's page (GET, the redirect followed), timed together from
the POST sent to the next page's last byte, and each part alone. Prints p50, p95 and
max, the queries of one step, and the load average before and after (2 cores, shared:
compare with care).

    .venv/bin/python bench/comparison_pages.py
    .venv/bin/python bench/comparison_pages.py --items 20 --chars 500   # quick
    BENCH_SQL=1 .venv/bin/python bench/comparison_pages.py --items 4    # one step's queries
"""

from __future__ import annotations

import argparse
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
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def environment(pg_port: int, redis_port: int) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/hitl",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HITL_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "HITL_DB_CONN_MAX_AGE": "600",
        "HITL_SECURE_SSL_REDIRECT": "false",
        "HITL_SECURE_COOKIES": "false",
        "HITL_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "HITL_STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "HITL_STATIC_USE_FINDERS": "true",
        "HITL_EMAIL_URL": "consolemail://",
        "HITL_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "hitl.settings",
    }


def run(items: int, chars: int) -> tuple[list[float], list[float], list[float], tuple]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from hitl import tenancy
    from hitl.audit import Actor
    from review import services as core
    from review.comparison import services
    from tests.factories import make_tenant
    from tests.review.comparison_helpers import make_comparison_queue

    tenant = make_tenant("Bench")
    org = tenant.organization
    queue = make_comparison_queue(tenant, criteria=("helpfulness", "safety"), allow_strength=True)
    with tenancy.tenant_scope(org.pk):
        made = [
            services.comparison_item_create(
                actor=Actor(user=tenant.owner),
                project=tenant.project,
                input={"question": f"question {n}"},
                outputs=[
                    services.OutputSpec(label=label, content=(f"{label} {n} " * chars)[:chars])
                    for label in ("baseline", "candidate")
                ],
            )
            for n in range(items)
        ]
        services.comparison_items_enqueue(
            actor=Actor(user=tenant.owner), queue=queue, comparison_ids=[c.pk for c in made]
        )
        lease = core.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    client = Client()
    client.force_login(tenant.reviewer)
    kwargs = {"org_slug": org.slug, "project_slug": tenant.project.slug}
    page = reverse("review-compare", kwargs={**kwargs, "assignment_pk": lease.pk})
    assert client.get(page).status_code == 200
    times: list[float] = []
    posts: list[float] = []
    gets: list[float] = []
    queries = (0, 0)
    body = {"c-0": "a", "c-1": "tie", "s-0": "2"}
    for step in range(items - 1):
        submit = page.rstrip("/") + "/submit/"
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            done = client.post(submit, body)
            middle = time.perf_counter()
            assert done.status_code == 302, done.status_code
            page = done["Location"]
            submitted = len(captured.captured_queries)
            shown = client.get(page)
            ended = time.perf_counter()
            times.append((ended - started) * 1000)
            posts.append((middle - started) * 1000)
            gets.append((ended - middle) * 1000)
        assert shown.status_code == 200 and "/compare/" in page, page
        if step == 0 and os.environ.get("BENCH_SQL"):
            for q in captured.captured_queries:
                print(q["time"], q["sql"][:160])
        if step == 0:
            queries = (submitted, len(captured.captured_queries) - submitted)
    return times, posts, gets, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--chars", type=int, default=2000)
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-compare."))
    run_dir.chmod(0o755)
    pg_port, redis_port = free_port(), free_port()
    os.environ.update(environment(pg_port, redis_port))
    loads = [os.getloadavg()]
    try:
        stack(f"start_postgres {run_dir}/pg {pg_port}")
        stack(f"start_redis {run_dir}/redis {redis_port}")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        loads.append(os.getloadavg())
        times, posts, gets, queries = run(args.items, args.chars)
        loads.append(os.getloadavg())
    finally:
        stack(f"stop_postgres {run_dir}/pg; stop_redis {run_dir}/redis")
        shutil.rmtree(run_dir, ignore_errors=True)
    print(
        "load average (1, 5, 15 min) at the start, before and after the steps (2 cores): "
        + "; ".join(" ".join(f"{x:.1f}" for x in load) for load in loads)
    )
    print(f"submit to next comparison item, server time, {len(times)} steps (ms):")
    print("| part | p50 | p95 | max | queries |")
    print("| --- | --- | --- | --- | --- |")
    for name, values, n in (
        ("submit (POST) and next page (GET)", times, sum(queries)),
        ("submit: store, close, claim the next", posts, queries[0]),
        ("the next item's page", gets, queries[1]),
    ):
        print(
            f"| {name} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} "
            f"| {max(values):.1f} | {n} |"
        )


if __name__ == "__main__":
    main()
