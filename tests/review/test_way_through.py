"""The way through a queue, as the reviewer's pages show it: where I am in the queue
("2 of 3 for you, 1 left") instead of an internal item number."""

from __future__ import annotations

import re

from django.test import Client

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from review import services
from tests.review.helpers import add_traces, make_queue


def _open_next(client: Client, tenant, queue) -> str:
    start = client.post(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/queues/{queue.pk}/start/"
    )
    assert start.status_code == 302, start.content.decode()[:500]
    page = client.get(start["Location"])
    assert page.status_code == 200
    return page.content.decode()


def _progress(html: str) -> str:
    found = re.search(r'id="progress"[^>]*>([^<]*)<', html)
    assert found, html[:2000]
    return " ".join(found.group(1).split())


def test_the_review_page_says_where_i_am_in_the_queue(tenant):
    queue = make_queue(tenant, name="Triage", overlap=1)
    add_traces(tenant, queue, 3)
    client = Client()
    client.force_login(tenant.reviewer)
    first = _open_next(client, tenant, queue)
    assert _progress(first) == "· 1 of 3 for you, 2 left"
    assert "· item " not in first

    actor = Actor(user=tenant.reviewer)
    with tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=actor, queue=queue)
    # The item held ahead counts as left for me; skipping it counts as done.
    second = _open_next(client, tenant, queue)
    assert _progress(second) == "· 1 of 3 for you, 2 left"
    with tenant_scope(tenant.organization.pk):
        services.assignment_skip(actor=actor, assignment_id=lease.pk, reason="Not my field")
    third = _open_next(client, tenant, queue)
    assert _progress(third) == "· 2 of 3 for you, 1 left"
