from io import StringIO

from django.core.management import call_command
from django.test import Client

from hitl.tenancy import tenant_scope
from projects.management.commands.seed_demo import DEMO_PASSWORD
from projects.models import Membership, Organization


def test_seed_demo_prints_working_logins_and_is_idempotent(db):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=StringIO())
    printed = out.getvalue()
    organization = Organization.objects.get(slug="northwind-health")
    with tenant_scope(organization.pk):
        roles = dict(Membership.objects.values_list("user__email", "role"))
    assert roles == {
        "admin@demo.hitl.local": "owner",
        "reviewer1@demo.hitl.local": "reviewer",
        "reviewer2@demo.hitl.local": "reviewer",
        "auditor@demo.hitl.local": "auditor",
    }
    for email in roles:
        assert email in printed
        assert Client().login(username=email, password=DEMO_PASSWORD)
    key = printed.split("API key (shown once): ")[1].split()[0]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    whoami = client.get("/api/orgs/northwind-health/projects/clinical-assistant/whoami/")
    assert whoami.status_code == 200
    assert "sample traces ingested: 24" in printed
    listed = client.get("/api/orgs/northwind-health/projects/clinical-assistant/traces/")
    assert listed.status_code == 200 and len(listed.json()["results"]) == 24
    errors = client.get(
        "/api/orgs/northwind-health/projects/clinical-assistant/traces/?has_error=true"
    )
    assert {t["trace_id"] for t in errors.json()["results"]} == {
        "demo-run-003",
        "demo-run-010",
        "demo-run-017",
    }


def test_seed_demo_routes_the_thumbed_down_conversations_to_their_queue(db):
    """The demo's thread rule takes each session with a thumbs-down in any of its turns
    (runs 1, 6, 11, 16 and 21: sessions 0, 2, 3, 5 and 7) into the conversations queue,
    once: seeding again routes nothing more."""
    from review.models import QueueItem, ReviewQueue, RoutingRule

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "5 conversations routed by the thread rule" in out.getvalue()
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert "0 conversations routed" in again.getvalue()
    organization = Organization.objects.get(slug="northwind-health")
    with tenant_scope(organization.pk):
        queue = ReviewQueue.objects.get(name="Whole conversations")
        threads = set(
            QueueItem.objects.filter(queue=queue).values_list("thread__external_id", flat=True)
        )
        rule = RoutingRule.objects.get(queue=queue)
    assert threads == {f"demo-session-{n}" for n in (0, 2, 3, 5, 7)}
    assert rule.target == "thread" and rule.thread_conditions == {"thumbs_down": True}
