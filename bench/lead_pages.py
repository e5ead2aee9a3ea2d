"""The lead's pages: the server time of every page on the demo data.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, loads the demo data
(``seed_demo``: the demo traces, two rubric questions, the blind queue "Clinical
answers"), adds what the pages show beyond it (one submitted and one edited review, a
routing rule, a saved view, an invitation), then requests every lead page ``--repeat``
times as the demo owner with Django's test client in this process (every middleware,
the view, its queries and the template; no network) and prints median, p95 and the
query count of each; then times two form posts the same way: 20 of the demo queue's
open items reprioritised together from the board's selection (one history row each)
and a routing rule edited.

    .venv/bin/python bench/lead_pages.py               # 30 repeats
    .venv/bin/python bench/lead_pages.py --repeat 10

Budget: every page's server time under 300 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.trace_reads import percentile, throwaway_stack  # noqa: E402

PAGE_BUDGET_MS = 300
# How many of the demo queue's open items the timed board selection changes.
BULK_ITEMS = 20


def measure(client, url: str, repeat: int) -> dict:
    from django.db import connection

    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(url)
        timings.append((time.perf_counter() - began) * 1000)
    return {
        "p50": statistics.median(timings),
        "p95": percentile(timings, 95),
        "queries": len(queries),
    }


def measure_post(client, url: str, bodies: list[dict], repeat: int) -> dict:
    """A form post (answered with a redirect, not followed), the bodies taken in turn
    so that every post changes something (and writes its history rows)."""
    from django.db import connection

    for body in bodies:
        response = client.post(url, body)
        assert response.status_code == 302, (url, response.status_code, response.content[:300])
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.post(url, bodies[0])
    timings = []
    for n in range(repeat):
        began = time.perf_counter()
        client.post(url, bodies[(n + 1) % len(bodies)])
        timings.append((time.perf_counter() - began) * 1000)
    return {
        "p50": statistics.median(timings),
        "p95": percentile(timings, 95),
        "queries": len(queries),
    }


def prepare() -> tuple[object, list[tuple[str, str]], list[tuple[str, str, list[dict]]]]:
    """The demo data plus what the pages show; returns the owner, the pages to time and
    the form posts to time."""
    from io import StringIO

    from django.core.management import call_command

    from hitl import tenancy
    from hitl.audit import Actor
    from projects import services as project_services
    from projects.models import Membership, Organization, Project, Role
    from review import selectors, services
    from review.models import QueueItem, ReviewQueue, RoutingRule, ScoreConfig
    from traces import services as trace_services
    from traces.models import SavedView, Trace

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=StringIO())
    organization = Organization.objects.get(slug="northwind-health")
    with tenancy.tenant_scope(organization.pk):
        owner = Membership.objects.filter(role=Role.OWNER).select_related("user").first().user
        reviewer = Membership.objects.filter(role=Role.REVIEWER).select_related("user")[0].user
        project = Project.objects.get(slug="clinical-assistant")
        queue = ReviewQueue.objects.get(project=project, name="Clinical answers")
        configs = {c.name: c for c in ScoreConfig.objects.filter(project=project)}
        actor = Actor(user=owner, source="command")
        form = selectors.queue_form(queue)
        values = {}
        for question in form:
            config = question.config
            if config.data_type == "categorical":
                values[str(config.pk)] = config.options[0]["label"]
            elif config.data_type == "boolean":
                values[str(config.pk)] = True
            elif config.data_type == "numeric":
                values[str(config.pk)] = config.min_value
            else:
                values[str(config.pk)] = "fine"
        review = Actor(user=reviewer, source="command")
        assignment = services.queue_claim_next(actor=review, queue=queue)
        annotation = services.assignment_submit(
            actor=review, assignment_id=assignment.pk, values=values, explanation="Looks right."
        )
        services.annotation_update(
            actor=review,
            annotation_id=annotation.pk,
            expected_version=annotation.version,
            explanation="Looks right; checked the formulary.",
        )
        if not RoutingRule.objects.filter(queue=queue).exists():
            services.routing_rule_create(
                actor=actor,
                project=project,
                queue_id=queue.pk,
                name="Errors",
                signal="error",
                filter_params={"status": "error"},
                sampling_rate=0.5,
            )
        if not SavedView.objects.filter(project=project).exists():
            trace_services.saved_view_create(
                actor=actor, project=project, name="Errors", filter_params={"status": "error"}
            )
        project_services.invitation_create(
            actor=actor,
            acting_membership=Membership.objects.get(user=owner),
            email=f"bench-{time.time_ns()}@example.com",
            role=Role.REVIEWER,
        )
        rule = RoutingRule.objects.filter(queue=queue).order_by("id").first()
        open_items = list(
            QueueItem.objects.filter(queue=queue, status="open")
            .order_by("id")
            .values_list("pk", flat=True)[:BULK_ITEMS]
        )
        trace = Trace.objects.filter(project=project).order_by("-created_at").first()
        item = QueueItem.objects.filter(queue=queue).first()
        config = next(iter(configs.values()))
        counts = (Trace.objects.filter(project=project).count(), queue.items.count())
    org, slug = organization.slug, project.slug
    base = f"/orgs/{org}/projects/{slug}"
    pages = [
        ("explorer", f"{base}/traces/"),
        ("explorer, filtered", f"{base}/traces/?status=error&q=dose"),
        ("explorer, saved view", f"{base}/traces/?status=error&view=1"),
        ("trace detail", f"{base}/traces/t/{trace.external_id}/"),
        ("add to a queue (count)", f"{base}/traces/add-to-queue/?{urlencode({'filter': ''})}"),
        ("rubrics", f"{base}/rubrics/"),
        ("rubric with versions", f"{base}/rubrics/{config.pk}/"),
        ("queues", f"{base}/queues/"),
        ("queue settings + history", f"{base}/queues/{queue.pk}/edit/"),
        ("board", f"{base}/queues/{queue.pk}/board/"),
        ("board, htmx refresh", f"{base}/queues/{queue.pk}/board/live/"),
        ("routing rules", f"{base}/queues/{queue.pk}/rules/"),
        (
            "routing preview",
            f"{base}/queues/{queue.pk}/rules/preview/?filter=status%3Derror&sampling_percent=50",
        ),
        (
            "routing preview, saved rule",
            f"{base}/queues/{queue.pk}/rules/preview/?filter=status%3Derror"
            f"&sampling_percent=50&rule={rule.pk}",
        ),
        ("routing rule edit + history", f"{base}/queues/{queue.pk}/rules/{rule.pk}/edit/"),
        ("item + history", f"{base}/queues/{queue.pk}/items/{item.pk}/"),
        ("annotation + history", f"{base}/annotations/{annotation.pk}/"),
        ("settings: members", f"/orgs/{org}/settings/"),
        ("settings: API keys", f"/orgs/{org}/settings/api-keys/"),
    ]
    print(f"demo data: {counts[0]} traces, {counts[1]} items in the demo queue")
    posts = [
        (
            f"board: {len(open_items)} selected, reprioritised",
            f"{base}/queues/{queue.pk}/items/update/",
            [{"item_id": open_items, "priority": str(p)} for p in (1, 2)],
        ),
        (
            "routing rule edited",
            f"{base}/queues/{queue.pk}/rules/{rule.pk}/edit/",
            [
                {
                    "name": rule.name,
                    "signal": rule.signal,
                    "filter": "status=error",
                    "sampling_percent": str(p),
                    "item_priority": "0",
                    "enabled": "on",
                }
                for p in (50, 40)
            ],
        ),
    ]
    return owner, pages, posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with throwaway_stack("hitl-bench-lead."):
        from django.test import Client

        owner, pages, posts = prepare()
        client = Client()
        client.force_login(owner)
        print(f"\nserver time, {args.repeat} requests each, as the demo owner")
        print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
        worst = 0.0
        for label, url in pages:
            result = measure(client, url, args.repeat)
            worst = max(worst, result["p95"])
            flag = "" if result["p95"] < PAGE_BUDGET_MS else "  over budget"
            print(
                f"{label:28} {result['p50']:8.1f} {result['p95']:8.1f} "
                f"{result['queries']:8d}{flag}",
                flush=True,
            )
        print(f"worst p95: {worst:.1f} ms (budget < {PAGE_BUDGET_MS} ms)")
        print(f"\nform posts, {args.repeat} each (server time to the redirect)")
        for label, url, bodies in posts:
            result = measure_post(client, url, bodies, args.repeat)
            flag = "" if result["p95"] < PAGE_BUDGET_MS else "  over budget"
            print(
                f"{label:28} {result['p50']:8.1f} {result['p95']:8.1f} "
                f"{result['queries']:8d}{flag}",
                flush=True,
            )


if __name__ == "__main__":
    main()
