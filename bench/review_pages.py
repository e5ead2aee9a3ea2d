"""The reviewer's pages: submit-to-next-item in Chromium, page open times (server and first
paint) for a normal and a 300-span trace, and the server time of every page.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, loads the demo data
(``seed_demo``: the blind queue "Clinical answers", 24 items, both demo reviewers), adds
the queue "Long traces" (the demo queue's questions, both demo reviewers, items that are
each a 300-span trace with a 233 KB answer: ``tests/review/long_trace.py``) and runs the
app under gunicorn (2 workers) on localhost. With ``--before REV`` the code of that
revision (``git archive``) runs too, under a second gunicorn on the same database, and
every measurement below is taken on both, interleaved, in the same run: compare the
ratios, not the absolute figures, on a shared machine. Then:

1. **Submit to next item, in Chromium** (Debian's ``chromium`` driven by Playwright):
   a demo reviewer reviews ``--items`` items of each queue from the keyboard. Each time
   the page is ready the script waits until the next item is held (claimed and fetched
   ahead, as it is while a person reads), answers both questions, and measures inside
   the page from the Ctrl+Enter key press to the next item shown with the focus on its
   first question. Without ``--before`` the second demo reviewer does the same with the
   fetch-ahead endpoint blocked (``page.route``), the plain boosted submit; with it, the
   second reviewer runs on the old code.
2. **Page open**: for a normal and a 300-span item, ``--repeat`` times each: the server
   time of the review page over HTTP (request to last byte, on localhost) and, in
   Chromium, the first contentful paint and the load event of a fresh navigation;
   "Start reviewing" (POST, claim, redirect, the review page: both requests; the lease
   is released between tries, untimed); one span's detail (the page's script loads it
   when a span is selected).
3. **Server time of every page**, in process with Django's test client on the same
   database (the current code only): each page ``--repeat`` times, median and p95; the
   item pages (history item, decision page, lead's item page, trace page) for a normal
   and a 300-span trace.

With ``--pages-only`` there is no browser: the reviews are given through the services
(both reviewers answer ``--items`` items of each queue differently, so they await a
decision), then step 3 runs ``--rounds`` times in a fresh process each, and with
``--before`` that revision's code (this script copied into its tree) runs it between
them on the same database.

    .venv/bin/python bench/review_pages.py                  # 20 items, 15 repeats
    .venv/bin/python bench/review_pages.py --items 8 --repeat 7 --before HEAD~3
    .venv/bin/python bench/review_pages.py --pages-only --items 3 --repeat 5 --before HEAD~3

Budgets: submit-to-next p95 < 200 ms; every page's server time < 300 ms; the 300-span
review page under 300 ms server time and first paint under 1 s; "Start reviewing" to
the review page under 300 ms server time.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
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
  // Kept in the tab's session storage: a submit without a page held is an ordinary post
  // and a full navigation to the next item, which starts a new window object.
  sessionStorage.removeItem("benchSubmitAt");
  const arm = (e) => {
    if (!((e.ctrlKey || e.metaKey) && e.key === "Enter")) return;
    sessionStorage.setItem("benchSubmitAt", String(performance.timeOrigin + performance.now()));
    document.removeEventListener("keydown", arm, true);
  };
  document.addEventListener("keydown", arm, true);
}"""
CLEAR_LONG_EXPECTED = """() => {
  const field = document.getElementById("expected-output");
  if (field && field.value.length > 20000) field.value = "";
}"""
SHOWN = """(previous) => {
  const root = document.getElementById("review-root");
  const active = document.activeElement;
  const at = Number(sessionStorage.getItem("benchSubmitAt"));
  if (!root || root.dataset.assignment === previous || !at) return false;
  if (!active || !active.matches("[data-question] input")) return false;
  return performance.timeOrigin + performance.now() - at;
}"""


def review_in_chromium(
    browser,
    base: str,
    email: str,
    items: int,
    *,
    ahead: bool,
    answers: tuple[str, str],
    queue: str = "Clinical answers",
) -> tuple[list[float], int]:
    """Reviews ``items`` items of ``queue``; returns the submit-to-next times (ms) and
    how many submits were answered 204 (the held page shown)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90000)
    print(f"reviewing {items} items of {queue} as {email} at {base}", flush=True)
    if not ahead:
        page.route("**/next/", lambda route: route.abort())
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    page.goto(f"{base}/orgs/northwind-health/work/")
    page.locator(".queue-card", has_text=queue).locator("button.start-reviewing").click()
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
            try:
                page.wait_for_selector("#review-root[data-next-ready]", state="attached")
            except Exception:
                page.screenshot(path=f"{tempfile.gettempdir()}/hitl-bench-pages-failure.png")
                raise
        page.keyboard.press(answers[0])
        page.keyboard.press("Tab")
        page.keyboard.press(answers[1])
        # The code before 5b76fbf prefilled a 233 KB output that the submit refuses.
        page.evaluate(CLEAR_LONG_EXPECTED)
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


# --- 2. page open: a normal and a 300-span trace -------------------------------------------------

LONG_QUEUE = "Long traces"
ORG = "northwind-health"
PAINT = """() => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return [paint ? paint.startTime : null, nav.loadEventEnd || nav.domContentLoadedEventEnd];
}"""


def add_long_queue(items: int) -> None:
    """The queue "Long traces": the demo queue's questions, settings and pool, with
    ``items`` traces of 300 spans and a 233 KB answer each."""
    from hitl import tenancy
    from hitl.audit import Actor
    from projects.models import Membership, Organization
    from review import selectors, services
    from review.models import ReviewQueue
    from tests.review.long_trace import add_long_trace

    org = Organization.objects.get(slug=ORG)
    with tenancy.tenant_scope(org.pk):
        demo = ReviewQueue.objects.get(name="Clinical answers")
        actor = Actor(user=Membership.objects.filter(role="owner").first().user)
        members = Membership.objects.filter(user__email__in=REVIEWERS).order_by("pk")
        queue = services.queue_create(
            actor=actor,
            project=demo.project,
            name=LONG_QUEUE,
            overlap=demo.overlap,
            blind_mode=demo.blind_mode,
            include_explanation=demo.include_explanation,
            include_expected_output=demo.include_expected_output,
            form=[{"config_id": q.config.pk} for q in selectors.queue_form(demo)],
            reviewers=[{"membership_id": m.pk} for m in members],
        )
        for n in range(items):
            trace = add_long_trace(
                organization_id=org.pk, project=demo.project, external_id=f"long-trace-{n}"
            )
            services.queue_item_add(actor=actor, queue=queue, trace_id=trace.pk)


def http_session(base: str, email: str) -> urllib.request.OpenerDirector:
    """A signed-in opener (the sign-in form, its cookies kept)."""
    import urllib.parse

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    html = opener.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    data = urllib.parse.urlencode(
        {"login": email, "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    opener.open(urllib.request.Request(f"{base}/accounts/login/", data=data)).read()
    return opener


def timed_get(opener, url: str, data: bytes | None = None) -> float:
    """Milliseconds from the request to the last byte of the answer (redirects
    followed: a POST that redirects to a page counts both)."""
    start = time.perf_counter()
    with opener.open(urllib.request.Request(url, data=data)) as response:
        response.read()
        assert response.status == 200, (url, response.status)
    return (time.perf_counter() - start) * 1000


def live_lease(email: str, queue_name: str):
    from hitl import tenancy
    from projects.models import Organization
    from review.models import Assignment

    org = Organization.objects.get(slug=ORG)
    with tenancy.tenant_scope(org.pk):
        return (
            Assignment.objects.filter(reviewer__email=email, queue__name=queue_name, state="leased")
            .select_related("queue__project")
            .order_by("leased_at", "id")
            .first()
        )


def release_leases(email: str, queue_name: str) -> None:
    from hitl import tenancy
    from hitl.audit import Actor
    from projects.models import Organization
    from review import services
    from review.models import Assignment

    org = Organization.objects.get(slug=ORG)
    with tenancy.tenant_scope(org.pk):
        for lease in Assignment.objects.filter(
            reviewer__email=email, queue__name=queue_name, state="leased"
        ).select_related("reviewer"):
            services.assignment_release(actor=Actor(user=lease.reviewer), assignment_id=lease.pk)


def page_open(browser, servers: dict[str, tuple[str, str]], repeat: int) -> list[tuple]:
    """For each server (name: base URL, reviewer): the review page of a normal and of a
    300-span item (server time over HTTP; first paint and load in Chromium), one
    span's detail, and "Start reviewing" (claim, redirect, page). Interleaved, so both
    servers see the same load. Rows of (what, server, [ms...])."""
    from django.urls import reverse

    from hitl import tenancy
    from projects.models import Organization
    from review.models import ReviewQueue

    with tenancy.tenant_scope(Organization.objects.get(slug=ORG).pk):
        demo_pk = ReviewQueue.objects.get(name="Clinical answers").pk
    results: dict[tuple[str, str], list[float]] = {}
    sessions, pages, targets = {}, {}, {}
    for name, (base, email) in servers.items():
        sessions[name] = http_session(base, email)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60000)
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", email)
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        pages[name] = page
        for kind, queue_name in (("normal", "Clinical answers"), ("300 spans", LONG_QUEUE)):
            lease = live_lease(email, queue_name)
            kwargs = {
                "org_slug": ORG,
                "project_slug": lease.queue.project.slug,
                "assignment_pk": lease.pk,
            }
            targets[(name, kind)] = base + reverse("review-item", kwargs=kwargs)
            if kind == "300 spans":
                targets[(name, "span")] = base + reverse("review-span", kwargs=kwargs)
    for _ in range(repeat):
        for name in servers:
            opener, page = sessions[name], pages[name]
            for kind in ("normal", "300 spans"):
                url = targets[(name, kind)]
                results.setdefault((f"review page, {kind}: server", name), []).append(
                    timed_get(opener, url)
                )
                page.goto(url, wait_until="load")
                paint, load = page.evaluate(PAINT)
                results.setdefault((f"review page, {kind}: first paint", name), []).append(paint)
                results.setdefault((f"review page, {kind}: load event", name), []).append(load)
            if name == "after":
                results.setdefault(("one span's detail (300 spans): server", name), []).append(
                    timed_get(opener, targets[(name, "span")] + "?span=s143")
                )
    for page in pages.values():
        page.context.close()
    # "Start reviewing": each try claims a new item (the leases are released between).
    for _ in range(min(repeat, 8)):
        for name, (base, email) in servers.items():
            opener = sessions[name]
            release_leases(email, "Clinical answers")
            work = opener.open(f"{base}/orgs/{ORG}/work/").read().decode()
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', work).group(1)
            start = re.search(rf'action="([^"]*/queues/{demo_pk}/start/)"', work)
            results.setdefault(("Start reviewing to the review page: server", name), []).append(
                timed_get(opener, base + start.group(1), f"csrfmiddlewaretoken={token}".encode())
            )
    return [(what, server, times) for (what, server), times in results.items()]


# --- 3. server time of every page ----------------------------------------------------------------


def server_times(repeat: int) -> list[tuple[str, list[float], int]]:
    """Each page once to warm up, then ``repeat`` times: (page, timings in ms, queries)."""
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
        lease = Assignment.objects.filter(
            reviewer=reviewer, state="leased", queue__name="Clinical answers"
        ).first()
        long_lease = Assignment.objects.filter(
            reviewer=reviewer, state="leased", queue__name=LONG_QUEUE
        ).first()
        annotation = (
            Annotation.objects.filter(reviewer=reviewer, queue__name="Clinical answers")
            .order_by("-id")
            .first()
        )
        long_annotation = (
            Annotation.objects.filter(reviewer=reviewer, queue__name=LONG_QUEUE)
            .order_by("-id")
            .first()
        )
        disputed = QueueItem.objects.filter(
            status="needs_adjudication", queue__name="Clinical answers"
        ).first()
        long_disputed = QueueItem.objects.filter(
            status="needs_adjudication", queue__name=LONG_QUEUE
        ).first()
        long_item = long_disputed or QueueItem.objects.filter(queue__name=LONG_QUEUE).first()
        normal_item = disputed or QueueItem.objects.filter(queue__name="Clinical answers").first()
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
    if long_annotation is not None:
        pages.append(
            (
                "history item, 300-span trace",
                reviewer,
                "get",
                reverse(
                    "review-history-item",
                    kwargs={**in_project, "annotation_pk": long_annotation.pk},
                ),
            )
        )
    if long_lease is not None:
        pages.append(
            (
                "focused review, 300-span trace with a 233 KB answer",
                reviewer,
                "get",
                reverse("review-item", kwargs={**in_project, "assignment_pk": long_lease.pk}),
            )
        )
    if disputed is not None:
        pages.append(
            (
                "adjudicate (reviews side by side)",
                owner,
                "get",
                reverse("review-adjudicate", kwargs={**in_project, "item_pk": disputed.pk}),
            )
        )
    if long_disputed is not None:
        pages.append(
            (
                "adjudicate, 300-span trace",
                owner,
                "get",
                reverse("review-adjudicate", kwargs={**in_project, "item_pk": long_disputed.pk}),
            )
        )
    # The lead's item page (no span tree: it links to the trace page) and the trace
    # explorer's page of the item's trace, as the owner.
    for label, item in (("normal", normal_item), ("300-span trace", long_item)):
        if item is None:
            continue
        pages.append(
            (
                f"lead's item page, {label}",
                owner,
                "get",
                reverse(
                    "lead-item",
                    kwargs={**in_project, "queue_pk": item.queue_id, "item_pk": item.pk},
                ),
            )
        )
        with tenancy.tenant_scope(org.pk):
            trace_id = item.trace.external_id
        pages.append(
            (
                f"trace page (explorer), {label}",
                owner,
                "get",
                reverse("traces-detail", kwargs={**in_project, "trace_external_id": trace_id}),
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
        results.append((name, timings, len(queries.captured_queries)))
    return results


def answer_without_browser(per_queue: int) -> None:
    """What the browser runs leave behind, through the services (``--pages-only``): both
    demo reviewers answer ``per_queue`` items of each queue differently (disputed: they
    await a decision), and each holds a live lease in each queue afterwards."""
    from hitl import tenancy
    from hitl.audit import Actor
    from projects.models import Membership, Organization
    from review import selectors, services
    from review.models import ReviewQueue

    org = Organization.objects.get(slug=ORG)
    with tenancy.tenant_scope(org.pk):
        users = [Membership.objects.get(user__email=email).user for email in REVIEWERS]
        for name in ("Clinical answers", LONG_QUEUE):
            queue = ReviewQueue.objects.get(name=name)
            form = selectors.queue_form(queue)
            for _ in range(per_queue):
                for side, user in enumerate(users):
                    values = {}
                    for question in form:
                        config = question.config
                        if config.data_type == "categorical":
                            values[str(config.pk)] = config.options[-side]["label"]
                        elif config.data_type == "boolean":
                            values[str(config.pk)] = side == 0
                        elif config.data_type == "numeric":
                            values[str(config.pk)] = (config.min_value, config.max_value)[side]
                    lease = services.queue_claim_next(actor=Actor(user=user), queue=queue)
                    services.assignment_submit(
                        actor=Actor(user=user), assignment_id=lease.pk, values=values
                    )
            for user in users:
                services.queue_claim_next(actor=Actor(user=user), queue=queue)


def server_times_rounds(repeat: int, rounds: int, before_tree: Path | None) -> list[tuple]:
    """``server_times`` ``rounds`` times, each in a fresh process of this script
    (``--measure-only`` on the same database), and, with ``before_tree``, the same in
    that tree's code between them, so both codes see the same load and neither carries
    this process's heap. Rows of (page, code, timings, queries)."""
    import json

    trees = [("after", ROOT)] + ([("before", before_tree)] if before_tree is not None else [])
    found: dict[tuple[str, str], list] = {}
    for _ in range(rounds):
        for code, tree in trees:
            out = subprocess.run(
                [sys.executable, "bench/review_pages.py", "--measure-only",
                 "--repeat", str(repeat)],
                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            for name, timings, queries in json.loads(out.strip().splitlines()[-1]):
                entry = found.setdefault((name, code), [[], queries])
                entry[0].extend(timings)
    return [(name, code, timings, queries) for (name, code), (timings, queries) in found.items()]


def start_gunicorn(tree: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "hitl.wsgi", "-w", "2",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=tree, env={**os.environ, **env, "PYTHONPATH": str(tree)},
    )  # fmt: skip


def wait_ready(base: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{base} never answered")


def ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} | {percentile(values, 95):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--before", help="a git revision to measure beside the current code")
    parser.add_argument("--repo", default=str(ROOT), help="the git work tree --before is read from")
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="no browser: the reviews are given through the services, then only the server"
        " time of every page is measured (with --before: both codes, interleaved)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--pages-only: interleaved rounds")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:  # the --before code's side of --pages-only, on the same database
        import json

        import django

        django.setup()
        print(json.dumps(server_times(args.repeat)))
        return
    chromium = os.environ.get("HITL_CHROMIUM") or shutil.which("chromium")
    if not chromium and not args.pages_only:
        sys.exit("Debian's chromium is needed (bin/test installs it)")

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-pages."))
    run_dir.chmod(0o755)
    pg_port, redis_port, web_port, old_port = free_port(), free_port(), free_port(), free_port()
    env = environment(pg_port, redis_port)
    os.environ.update(env)
    servers = {"after": (f"http://127.0.0.1:{web_port}", REVIEWERS[0])}
    processes: list[subprocess.Popen] = []
    loads = [os.getloadavg()]
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
        import django

        django.setup()
        add_long_queue(args.items + 4)
        if args.pages_only:
            pages_only(args, run_dir, loads)
            return
        processes.append(start_gunicorn(ROOT, web_port, env))
        if args.before:
            old_tree = export_tree(args.before, args.repo, run_dir / "before")
            processes.append(start_gunicorn(old_tree, old_port, env))
            servers["before"] = (f"http://127.0.0.1:{old_port}", REVIEWERS[1])
        for base, _email in servers.values():
            wait_ready(base)

        from playwright.sync_api import sync_playwright

        # The ORM reads between browser steps run in this thread, beside Playwright's loop.
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        submits: list[tuple[str, list[float], int]] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, headless=True
            )
            for queue, label in (("Clinical answers", "normal"), (LONG_QUEUE, "300 spans")):
                for name, (base, email) in servers.items():
                    times, fast = review_in_chromium(
                        browser, base, email, args.items, ahead=True,
                        answers=("1", "1") if name == "after" else ("2", "1"), queue=queue,
                    )  # fmt: skip
                    submits.append((f"{label}, next item held, {name}", times, fast))
                if not args.before:
                    base, _email = servers["after"]
                    times, fast = review_in_chromium(
                        browser, base, REVIEWERS[1], args.items, ahead=False,
                        answers=("2", "1"), queue=queue,
                    )  # fmt: skip
                    submits.append((f"{label}, fetch-ahead blocked", times, fast))
            loads.append(os.getloadavg())
            opened = page_open(browser, servers, args.repeat)
            loads.append(os.getloadavg())
            browser.close()
        pages = server_times(args.repeat)
        loads.append(os.getloadavg())
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        stack(f"stop_postgres {run_dir}/pg; stop_redis {run_dir}/redis")
        shutil.rmtree(run_dir, ignore_errors=True)

    print("\nload average (1, 5, 15 min) at the start, after the submits, after the page"
          " opens, at the end (2 cores): "
          + "; ".join(" ".join(f"{x:.1f}" for x in load) for load in loads))  # fmt: skip
    print(f"\nsubmit to next item in Chromium, {args.items} items each (ms):")
    print("| queue, path, code | p50 | p95 | max | submits answered 204 |")
    print("| --- | --- | --- | --- | --- |")
    for name, times, fast in submits:
        print(f"| {name} | {ms(times)} | {max(times):.0f} | {fast}/{len(times)} |")
    print(f"\npage open, {args.repeat} times each, interleaved (ms):")
    if args.before:
        print("| what | after p50 | p95 | before p50 | p95 | after / before (p50) |")
        print("| --- | --- | --- | --- | --- | --- |")
    else:
        print("| what | p50 | p95 |")
        print("| --- | --- | --- |")
    by_what: dict[str, dict[str, list[float]]] = {}
    for what, server, times in opened:
        by_what.setdefault(what, {})[server] = [t for t in times if t is not None]
    for what, runs in by_what.items():
        row = f"| {what} | {ms(runs['after'])}"
        if args.before:
            if "before" in runs:
                ratio = statistics.median(runs["after"]) / statistics.median(runs["before"])
                row += f" | {ms(runs['before'])} | {ratio:.2f}"
            else:
                row += " | — | — | —"
        print(row + " |")
    print(f"\nserver time per page, Django test client, {args.repeat} requests each (ms):")
    print("| page | median | p95 | queries |")
    print("| --- | --- | --- | --- |")
    for name, timings, queries in pages:
        print(f"| {name} | {ms1(timings)} | {queries} |")


def ms1(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} | {percentile(values, 95):.1f}"


def export_tree(rev: str, repo: str, dest: Path) -> Path:
    """``git archive`` of ``rev`` unpacked into ``dest``."""
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev], cwd=repo, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def pages_only(args: argparse.Namespace, run_dir: Path, loads: list) -> None:
    """``--pages-only``: the reviews given through the services, then the server time of
    every page, in rounds; with ``--before`` that revision's code measures the same pages
    on the same database between the rounds (this script, copied into its tree, so the
    page list is the same)."""
    answer_without_browser(args.items)
    before_tree = None
    if args.before:
        before_tree = export_tree(args.before, args.repo, run_dir / "before")
        shutil.copy(Path(__file__), before_tree / "bench" / "review_pages.py")
    loads.append(os.getloadavg())
    rows = server_times_rounds(args.repeat, args.rounds, before_tree)
    loads.append(os.getloadavg())
    shown = "; ".join(" ".join(f"{x:.1f}" for x in load) for load in loads)
    print(f"\nload average (1, 5, 15 min) at the start, after the reviews, at the end: {shown}")
    print(
        f"\nserver time per page, Django test client, {args.rounds} rounds of"
        f" {args.repeat} requests (ms):"
    )
    by_page: dict[str, dict[str, tuple[list[float], int]]] = {}
    for name, code, timings, queries in rows:
        by_page.setdefault(name, {})[code] = (timings, queries)
    if args.before:
        print(
            "| page | after median | p95 | queries | before median | p95 | queries"
            " | after / before |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    else:
        print("| page | median | p95 | queries |")
        print("| --- | --- | --- | --- |")
    for name, codes in by_page.items():
        timings, queries = codes["after"]
        row = f"| {name} | {ms1(timings)} | {queries}"
        if args.before and "before" in codes:
            old, old_queries = codes["before"]
            ratio = statistics.median(timings) / statistics.median(old)
            row += f" | {ms1(old)} | {old_queries} | {ratio:.2f}"
        print(row + " |")


if __name__ == "__main__":
    main()
