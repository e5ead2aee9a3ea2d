"""The way through a queue, as the reviewer's pages show it: where I am in the queue
("2 of 3 for you, 1 left") instead of an internal item number."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.test import Client

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects.models import Event, Membership, Role
from review import services
from tests.factories import add_member, make_tenant, make_user
from tests.review.helpers import add_traces, make_config, make_queue, make_trace


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
    # The page held ahead is shown once the item before it is done: it comes second.
    project = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    ahead = client.get(f"{project}/review/{lease.pk}/").content.decode()
    assert _progress(ahead) == "· 2 of 3 for you, 1 left"
    with tenant_scope(tenant.organization.pk):
        services.assignment_skip(actor=actor, assignment_id=lease.pk, reason="Not my field")
    third = _open_next(client, tenant, queue)
    assert _progress(third) == "· 2 of 3 for you, 1 left"
    # The skip is in My history, with its reason.
    history = client.get(f"/orgs/{tenant.organization.slug}/history/").content.decode()
    skips = re.search(r'<table id="skips".*?</table>', history, re.S)
    assert skips and "Not my field" in skips.group(0) and "Triage" in skips.group(0)


def test_my_history_tells_items_apart_and_shows_the_decision_with_who_decided(tenant):
    config = make_config(tenant, name="Accuracy")
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=[tenant.reviewer, tenant.owner],
        name="Triage",
        overlap=2,
        blind_mode=False,
    )
    trace = make_trace(
        tenant,
        name="clinical question",
        input={"question": "Max acetaminophen dose in cirrhosis?"},
        output={"answer": "2 g"},
    )
    reviewer = Actor(user=tenant.reviewer)
    with tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        lease = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer, assignment_id=lease.pk, values={str(config.pk): 0.5}
        )
        other = Actor(user=tenant.owner)  # disagrees: the item awaits a decision
        services.assignment_submit(
            actor=other,
            assignment_id=services.queue_claim_next(actor=other, queue=queue).pk,
            values={str(config.pk): 1.0},
        )
    client = Client()
    client.force_login(tenant.reviewer)
    before = client.get(f"/orgs/{tenant.organization.slug}/history/").content.decode()
    assert trace.external_id in before
    assert "Max acetaminophen dose in cirrhosis?" in before
    assert "Decision" not in before
    # The senior's list of disputed items tells them apart the same way.
    lead = Client()
    lead.force_login(tenant.admin)
    disputed = lead.get(f"/orgs/{tenant.organization.slug}/adjudication/").content.decode()
    assert trace.external_id in disputed
    assert "Max acetaminophen dose in cirrhosis?" in disputed
    board = lead.get(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/queues/{queue.pk}/board/"
    ).content.decode()
    card = re.search(r'<div class="board-card.*?priority', board, re.S)
    assert card and trace.external_id in card.group(0), board[:3000]
    assert "Max acetaminophen dose in cirrhosis?" in card.group(0)

    with tenant_scope(tenant.organization.pk):
        services.item_adjudicate(
            actor=Actor(user=tenant.admin),
            item=annotation.item,
            membership=Membership.objects.get(user=tenant.admin),
            values={str(config.pk): 0.75},
        )
    after = client.get(f"/orgs/{tenant.organization.slug}/history/").content.decode()
    decision = re.search(r'<div class="decision">.*?</div>', after, re.S)
    assert decision, after
    text = " ".join(re.sub(r"<[^>]+>", " ", decision.group(0)).split())
    assert text.startswith(f"Decision by {tenant.admin.email}")
    assert "Accuracy: 0.75" in text


def test_a_manager_in_no_pool_is_offered_the_pool_forms(tenant):
    queue = make_queue(tenant, name="Triage", reviewers=[])
    client = Client()
    client.force_login(tenant.admin)
    page = client.get(f"/orgs/{tenant.organization.slug}/work/").content.decode()
    assert "PATCH" not in page
    project = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    edit = f"{project}/queues/{queue.pk}/edit/"
    assert f'href="{edit}#pool"' in page


def test_a_mention_links_to_the_page_where_each_person_reads_the_comment(tenant):
    config = make_config(tenant, name="Accuracy")
    newcomer = make_user("newcomer@clinic.example.com")
    add_member(tenant.organization, newcomer, Role.REVIEWER)
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer, newcomer])
    [item] = add_traces(tenant, queue, 1)
    reviewer = Actor(user=tenant.reviewer)
    with tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer, assignment_id=lease.pk, values={str(config.pk): 0.5}
        )
        services.comment_create(
            actor=Actor(user=tenant.admin),
            project=tenant.project,
            item_id=item.pk,
            body=f"@{tenant.reviewer.email} @{newcomer.email} why 0.5?",
        )
        event = Event.objects.get(type="review.comment.mentioned")
    link = urlsplit(event.payload["url"]).path
    assert not link.startswith("/api/")
    assert event.payload["api_url"].endswith(f"/comments/{event.payload['comment']['id']}/")
    project = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"

    def landing(user) -> Client:
        client = Client()
        client.force_login(user)
        return client, client.get(link)

    _client, mine = landing(tenant.reviewer)  # answered it: their answer, comments beside
    assert mine.status_code == 302
    assert mine["Location"] == f"{project}/history/{annotation.pk}/"
    history_page = _client.get(mine["Location"]).content.decode()
    comments = re.search(r'id="item-comments".*?</div>', history_page, re.S)
    assert comments and "why 0.5?" in comments.group(0)
    _client, lead = landing(tenant.admin)
    assert lead["Location"] == f"{project}/queues/{queue.pk}/items/{item.pk}/"
    client, other = landing(newcomer)  # not theirs yet: My work says why
    assert other["Location"] == f"/orgs/{tenant.organization.slug}/work/"
    assert (
        "mentioned you on an item you have not reviewed"
        in client.get(other["Location"]).content.decode()
    )
    _client, outsider = landing(make_tenant("Globex").reviewer)
    assert outsider.status_code == 404
