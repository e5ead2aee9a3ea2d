"""The reviewer's pages: submit-to-next-item in Chromium, and the server time of every page.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, loads the demo data
(``seed_demo``: the blind queue "Clinical answers", 24 items, both demo reviewers) and
runs the app under gunicorn (2 workers) on localhost. Then:

1. **Submit to next item, in Chromium** (Debian's ``chromium`` driven by Playwright):
   the first demo reviewer reviews ``--items`` items from the keyboard. Each time the
   page is ready the script waits until the next item is held (claimed and fetched
   ahead, as it is while a person reads), answers both questions, and measures inside
   the page from the Ctrl+Enter key press to the next item shown with the focus on its
   first question. The second demo reviewer does the same with the fetch-ahead
   endpoint blocked (``page.route``), which measures the plain boosted submit (POST,
   redirect, render) for comparison; their answers differ, so items go to adjudication.
2. **Server time of every page**, in process with Django's test client on the same
   database: each page ``--repeat`` times, median and p95 (the request through every
   middleware, the view, its queries and the template; no network).

    .venv/bin/python bench/review_pages.py                  # 20 items, 15 repeats
    .venv/bin/python bench/review_pages.py --items 10 --repeat 5

Budgets: submit-to-next p95 < 200 ms; every page's server time < 300 ms.
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "hitl-demo-password"
REVIEWERS = ("reviewer1@demo.hitl.local", "reviewer2@demo.hitl.local")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack(command: str) -> None:
    subprocess.run(["bash", "-c", f"source {ROOT}/bin/_stack.sh; {command}"], check=True, cwd=ROOT)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


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


# --- 1. submit to next item, in Chromium --------------------------------------------------------

# Inside the page: the time from the Ctrl+Enter key press to the next item shown with the
# focus on its first question (polled every animation frame).
ARM = """() => {
  window.__submitAt = null;
  const arm = (e) => {
    if (!((e.ctrlKey || e.metaKey) && e.key === "Enter")) return;
    window.__submitAt = performance.now();
    document.removeEventListener("keydown", arm, true);
  };
  document.addEventListener("keydown", arm, true);
}"""
SHOWN = """(previous) => {
  const root = document.getElementById("review-root");
  const active = document.activeElement;
  if (!root || root.dataset.assignment === previous || window.__submitAt === null) return false;
  if (!active || !active.matches("[data-question] input")) return false;
  return performance.now() - window.__submitAt;
}"""


def review_in_chromium(
    browser, base: str, email: str, items: int, *, ahead: bool, answers: tuple[str, str]
) -> tuple[list[float], int]:
    """Reviews ``items`` items; returns the submit-to-next times (ms) and how many
    submits were answered 204 (the held page shown)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30000)
    if not ahead:
        page.route("**/next/", lambda route: route.abort())
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    page.goto(f"{base}/orgs/northwind-health/work/")
    page.click("button.start-reviewing")
    page.wait_for_selector("#review-form")
    fast = 0
    times = []
    for _ in range(items):
        current = page.get_attribute("#review-root", "data-assignment")
        page.wait_for_function(
            "() => document.activeElement"
            " && document.activeElement.matches('[data-question] input')"
        )
        if ahead:
            page.wait_for_selector("#review-root[data-next-ready]", state="attached")
        page.keyboard.press(answers[0])
        page.keyboard.press("Tab")
        page.keyboard.press(answers[1])
        page.evaluate(ARM)
        with page.expect_response(lambda r: r.url.endswith("/submit/")) as submitted:
            page.keyboard.press("Control+Enter")
        try:
            handle = page.wait_for_function(SHOWN, arg=current, polling="raf")
        except Exception:
            page.screenshot(path=f"{tempfile.gettempdir()}/hitl-bench-pages-failure.png")
            raise
        times.append(float(handle.json_value()))
        fast += submitted.value.status == 204
    context.close()
    return times, fast


# --- 2. server time of every page ----------------------------------------------------------------


def server_times(repeat: int) -> list[tuple[str, float, float, int]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from hitl import tenancy
    from projects.models import Membership, Organization
    from review.models import Annotation, Assignment, QueueItem

    org = Organization.objects.get(slug="northwind-health")
    with tenancy.tenant_scope(org.pk):
        reviewer = Membership.objects.get(user__email=REVIEWERS[0]).user
        owner = Membership.objects.filter(role="owner").first().user
        lease = Assignment.objects.filter(reviewer=reviewer, state="leased").first()
        annotation = Annotation.objects.filter(reviewer=reviewer).order_by("-id").first()
        disputed = QueueItem.objects.filter(status="needs_adjudication").first()
        project = lease.queue.project.slug if lease else annotation.queue.project.slug
    base = {"org_slug": org.slug}
    in_project = {**base, "project_slug": project}
    pages: list[tuple[str, object, str, str]] = [
        ("sign-in page", None, "get", reverse("account_login")),
        ("organization home", reviewer, "get", f"/orgs/{org.slug}/"),
        ("My work (reviewer)", reviewer, "get", reverse("review-my-work", kwargs=base)),
        ("My work (owner, with the team)", owner, "get", reverse("review-my-work", kwargs=base)),
        ("My history (20+ answers)", reviewer, "get", reverse("review-history", kwargs=base)),
        (
            "history item (edit, what others said)",
            reviewer,
            "get",
            reverse("review-history-item", kwargs={**in_project, "annotation_pk": annotation.pk}),
        ),
        ("adjudication list", owner, "get", reverse("review-adjudication", kwargs=base)),
    ]
    if lease is not None:
        pages += [
            (
                "focused review",
                reviewer,
                "get",
                reverse("review-item", kwargs={**in_project, "assignment_pk": lease.pk}),
            ),
            (
                "next item ahead (POST, already claimed)",
                reviewer,
                "post",
                reverse("review-prefetch", kwargs={**in_project, "assignment_pk": lease.pk}),
            ),
        ]
    if disputed is not None:
        pages.append(
            (
                "adjudicate (reviews side by side)",
                owner,
                "get",
                reverse("review-adjudicate", kwargs={**in_project, "item_pk": disputed.pk}),
            )
        )
    results = []
    for name, user, method, url in pages:
        client = Client()
        if user is not None:
            client.force_login(user)
        getattr(client, method)(url)  # warm: imports, template loading, connection
        timings = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = getattr(client, method)(url)
                timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        count = len(queries.captured_queries)
        results.append((name, statistics.median(timings), percentile(timings, 95), count))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    chromium = os.environ.get("HITL_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is needed (bin/test installs it)")

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-pages."))
    run_dir.chmod(0o755)
    pg_port, redis_port, web_port = free_port(), free_port(), free_port()
    env = environment(pg_port, redis_port)
    os.environ.update(env)
    gunicorn = None
    try:
        print(f"starting PostgreSQL :{pg_port} and Redis :{redis_port} in {run_dir}", flush=True)
        stack(f"start_postgres {run_dir}/pg {pg_port}")
        stack(f"start_redis {run_dir}/redis {redis_port}")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        subprocess.run(
            [sys.executable, "manage.py", "seed_demo"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        gunicorn = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "hitl.wsgi", "-w", "2",
             "-b", f"127.0.0.1:{web_port}", "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env},
        )  # fmt: skip
        base = f"http://127.0.0.1:{web_port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)

        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, headless=True
            )
            held, held_fast = review_in_chromium(
                browser, base, REVIEWERS[0], args.items, ahead=True, answers=("1", "1")
            )
            plain, plain_fast = review_in_chromium(
                browser, base, REVIEWERS[1], args.items, ahead=False, answers=("2", "1")
            )
            browser.close()

        import django

        django.setup()
        pages = server_times(args.repeat)
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        stack(f"stop_postgres {run_dir}/pg; stop_redis {run_dir}/redis")
        shutil.rmtree(run_dir, ignore_errors=True)

    load = os.getloadavg()
    print(f"\nload average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores)")
    print(f"\nsubmit to next item in Chromium, {args.items} items each (ms):")
    print("| path | p50 | p95 | max | submits answered 204 |")
    print("| --- | --- | --- | --- | --- |")
    for name, times, fast in (
        ("next item held (claimed and fetched ahead)", held, held_fast),
        ("fetch-ahead blocked (boosted POST, redirect, render)", plain, plain_fast),
    ):
        print(
            f"| {name} | {statistics.median(times):.0f} | {percentile(times, 95):.0f} "
            f"| {max(times):.0f} | {fast}/{len(times)} |"
        )
    print(f"\nserver time per page, Django test client, {args.repeat} requests each (ms):")
    print("| page | median | p95 | queries |")
    print("| --- | --- | --- | --- |")
    for name, median, p95, queries in pages:
        print(f"| {name} | {median:.1f} | {p95:.1f} | {queries} |")


if __name__ == "__main__":
    main()
