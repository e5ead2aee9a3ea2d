"""A lead takes an item back from the reviewer holding it (board back to the queue, one
card or a selection, and the queue item API's take-back), and changes a whole board
column ("all N in this column") after seeing its count."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, PermissionDenied
from review import services
from review.models import Assignment, QueueItem
from review.services.claims import TAKEN_BACK, item_take_back
from review.services.items import queue_items_update_each
from tests.concurrency import at_once
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue


def _api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _api_base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _claim(tenant, user, queue):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.queue_claim_next(actor=Actor(user=user), queue=queue)


def _item(tenant, pk) -> QueueItem:
    with tenancy.tenant_scope(tenant.organization.pk):
        return QueueItem.objects.get(pk=pk)


def _assert_counters(tenant, item_pk, overlap, *, live, submitted):
    item = _item(tenant, item_pk)
    assert (item.live_leases, item.submissions) == (live, submitted)
    assert item.live_leases + item.submissions + item.open_slots == overlap
    with tenancy.tenant_scope(tenant.organization.pk):
        leases = Assignment.objects.filter(item_id=item_pk)
        assert leases.filter(state="leased").count() == live
        assert leases.filter(state="submitted").count() == submitted


def test_back_to_the_queue_on_the_board_takes_the_item_back_from_its_holder(tenant):
    config = make_config(tenant)
    other = add_reviewers(tenant, 1)[0]
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer, other], overlap=1)
    item = add_traces(tenant, queue, 1)[0]
    lease = _claim(tenant, tenant.reviewer, queue)
    assert lease.item_id == item.pk
    # Nothing left for the other reviewer while the lease is live.
    assert _claim(tenant, other, queue) is None

    lead = signed_in(tenant.admin)
    response = lead.post(
        project_url(tenant, "lead-items-update", queue_pk=queue.pk),
        {"item_id": item.pk, "assignee": "anyone"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Took 1 item back" in response.content.decode()
    _assert_counters(tenant, item.pk, 1, live=0, submitted=0)
    with tenancy.tenant_scope(tenant.organization.pk):
        ended = Assignment.objects.get(pk=lease.pk)
        record = QueueItem.history.filter(id=item.pk).order_by("-history_id").first()
    assert ended.state == "released"
    assert ended.skip_reason == TAKEN_BACK.format(who=tenant.admin.email)
    # History: a row under the lead, naming whose lease ended.
    assert record.history_user_id == tenant.admin.pk
    assert tenant.reviewer.email in record.history_change_reason
    # The lead's item page shows it in the item's history.
    item_page = lead.get(project_url(tenant, "lead-item", queue_pk=queue.pk, item_pk=item.pk))
    assert f"Took back the lease of {tenant.reviewer.email}" in item_page.content.decode()
    assert item_page.context["history"][0]["reason"] == record.history_change_reason

    # The other reviewer can claim it at once.
    again = _claim(tenant, other, queue)
    assert again is not None and again.item_id == item.pk
    _assert_counters(tenant, item.pk, 1, live=1, submitted=0)

    # The old holder's submit is refused with the reason, through the API (409) ...
    refused = _api(tenant.reviewer).post(
        f"{_api_base(tenant)}/assignments/{lease.pk}/submit/",
        {"values": {str(config.pk): 0.5}},
        format="json",
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "lease_taken_back"
    assert tenant.admin.email in refused.json()["error"]["message"]
    # ... and their open page says who took it back (no 500), on submit too.
    page = signed_in(tenant.reviewer)
    submitted = page.post(
        reverse(
            "review-submit",
            kwargs={
                "org_slug": tenant.organization.slug,
                "project_slug": tenant.project.slug,
                "assignment_pk": lease.pk,
            },
        ),
        {f"q-{config.pk}": "0.5"},
        follow=True,
    )
    assert submitted.status_code == 200
    body = submitted.content.decode()
    assert "This item was taken back" in body
    assert f"Taken back by {tenant.admin.email}" in body
    _assert_counters(tenant, item.pk, 1, live=1, submitted=0)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Assignment.objects.filter(pk=lease.pk, state="submitted").exists()


def test_a_selection_back_to_the_queue_takes_back_every_holder_and_keeps_the_rest(tenant):
    config = make_config(tenant)
    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    held_by_both, held_by_one, waiting = add_traces(tenant, queue, 3)
    first, second = reviewers
    assert _claim(tenant, first, queue).item_id == held_by_both.pk
    assert _claim(tenant, second, queue).item_id == held_by_both.pk
    assert _claim(tenant, first, queue).item_id == held_by_one.pk
    with tenancy.tenant_scope(tenant.organization.pk):
        result = queue_items_update_each(
            actor=Actor(user=tenant.owner),
            queue=queue,
            item_ids=[held_by_both.pk, held_by_one.pk, waiting.pk],
            assignees=[],
        )
    assert result["changed"] == [held_by_both.pk, held_by_one.pk]
    assert result["unchanged"] == [waiting.pk]
    assert result["taken_back"] == [held_by_both.pk, held_by_one.pk]
    _assert_counters(tenant, held_by_both.pk, 2, live=0, submitted=0)
    _assert_counters(tenant, held_by_one.pk, 2, live=0, submitted=0)
    _assert_counters(tenant, waiting.pk, 2, live=0, submitted=0)
    with tenancy.tenant_scope(tenant.organization.pk):
        reasons = set(Assignment.objects.filter(queue=queue).values_list("state", "skip_reason"))
    assert reasons == {("released", TAKEN_BACK.format(who=tenant.owner.email))}


def test_only_managers_take_back(tenant):
    queue = make_queue(tenant, overlap=1)
    item = add_traces(tenant, queue, 1)[0]
    _claim(tenant, tenant.reviewer, queue)
    with tenancy.tenant_scope(tenant.organization.pk):
        for user in (tenant.reviewer, tenant.auditor):
            with pytest.raises(PermissionDenied):
                item_take_back(actor=Actor(user=user), item=item)
            with pytest.raises(PermissionDenied):
                queue_items_update_each(
                    actor=Actor(user=user), queue=queue, item_ids=[item.pk], assignees=[]
                )
    _assert_counters(tenant, item.pk, 1, live=1, submitted=0)
    url = f"{_api_base(tenant)}/queues/{queue.pk}/items/{item.pk}/take-back/"
    assert _api(tenant.reviewer).post(url, {}, format="json").status_code == 403
    _assert_counters(tenant, item.pk, 1, live=1, submitted=0)


def test_the_api_takes_back_one_reviewers_lease_or_every_one(tenant):
    config = make_config(tenant)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[first, second], overlap=2)
    item = add_traces(tenant, queue, 1)[0]
    _claim(tenant, first, queue)
    _claim(tenant, second, queue)
    url = f"{_api_base(tenant)}/queues/{queue.pk}/items/{item.pk}/take-back/"
    api = _api(tenant.admin)
    one = api.post(url, {"reviewer_id": second.pk}, format="json")
    assert one.status_code == 200
    assert [(a["reviewer"], a["state"]) for a in one.json()] == [(second.pk, "released")]
    _assert_counters(tenant, item.pk, 2, live=1, submitted=0)
    rest = api.post(url, {}, format="json")
    assert rest.status_code == 200
    assert [a["reviewer"] for a in rest.json()] == [first.pk]
    _assert_counters(tenant, item.pk, 2, live=0, submitted=0)
    nobody = api.post(url, {}, format="json")
    assert nobody.status_code == 409
    assert nobody.json()["error"]["code"] == "no_live_lease"
    # The item's history names the lead.
    history = api.get(f"{_api_base(tenant)}/queues/{queue.pk}/items/{item.pk}/history/")
    assert history.status_code == 200
    assert tenant.admin.email in str(history.json()[0])


def test_another_tenants_item_cannot_be_taken_back(tenant, other_tenant):
    theirs = make_queue(other_tenant, overlap=1)
    item = add_traces(other_tenant, theirs, 1)[0]
    _claim(other_tenant, other_tenant.reviewer, theirs)
    ours = make_queue(tenant)
    for queue_pk in (theirs.pk, ours.pk):
        url = f"{_api_base(tenant)}/queues/{queue_pk}/items/{item.pk}/take-back/"
        assert _api(tenant.admin).post(url, {}, format="json").status_code == 404
    _assert_counters(other_tenant, item.pk, 1, live=1, submitted=0)


@pytest.mark.django_db(transaction=True)
def test_take_back_and_the_holders_submit_at_once_leave_consistent_counters(tenant):
    config = make_config(tenant)
    others = add_reviewers(tenant, 1)
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer, *others], overlap=1)
    items = add_traces(tenant, queue, 4)
    outcomes = set()
    for item in items:
        lease = _claim(tenant, tenant.reviewer, queue)
        assert lease.item_id == item.pk

        def take_back(item=item):
            with tenancy.tenant_scope(tenant.organization.pk):
                try:
                    return ("taken", len(item_take_back(actor=Actor(user=tenant.admin), item=item)))
                except Conflict as exc:
                    return ("take refused", exc.code)

        def submit(lease=lease):
            with tenancy.tenant_scope(tenant.organization.pk):
                try:
                    services.assignment_submit(
                        actor=Actor(user=tenant.reviewer),
                        assignment_id=lease.pk,
                        values={str(config.pk): 0.5},
                    )
                    return ("submitted", None)
                except Conflict as exc:
                    return ("submit refused", exc.code)

        took, sent = at_once(take_back, submit)
        outcomes.add((took, sent))
        # Exactly one of them won; the loser was told why.
        assert (took, sent) in {
            (("taken", 1), ("submit refused", "lease_taken_back")),
            (("take refused", "no_live_lease"), ("submitted", None)),
        }
        if sent[0] == "submitted":
            _assert_counters(tenant, item.pk, 1, live=0, submitted=1)
        else:
            _assert_counters(tenant, item.pk, 1, live=0, submitted=0)
            # Claimable again, by someone else.
            assert _claim(tenant, others[0], queue).item_id == item.pk
            _assert_counters(tenant, item.pk, 1, live=1, submitted=0)
    assert outcomes


@pytest.mark.django_db(transaction=True)
def test_the_board_taking_back_while_reviewers_claim_keeps_counters(tenant):
    config = make_config(tenant)
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    items = add_traces(tenant, queue, 3)
    _claim(tenant, reviewers[0], queue)

    def back_to_the_queue():
        with tenancy.tenant_scope(tenant.organization.pk):
            return queue_items_update_each(
                actor=Actor(user=tenant.owner),
                queue=queue,
                item_ids=[i.pk for i in items],
                assignees=[],
            )

    def claim(user):
        return lambda: _claim(tenant, user, queue)

    at_once(back_to_the_queue, claim(reviewers[1]), claim(reviewers[2]))
    for item in items:
        fresh = _item(tenant, item.pk)
        assert fresh.live_leases + fresh.submissions + fresh.open_slots == 2
        with tenancy.tenant_scope(tenant.organization.pk):
            live = Assignment.objects.filter(item_id=item.pk, state="leased").count()
        assert fresh.live_leases == live


def test_all_in_a_column_shows_the_count_then_changes_what_the_column_holds(tenant):
    config = make_config(tenant)
    other = add_reviewers(tenant, 1)[0]
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer, other], overlap=1)
    items = add_traces(tenant, queue, 25)
    held = _claim(tenant, other, queue)  # in progress: not in the pending column
    lead = signed_in(tenant.admin)
    update = project_url(tenant, "lead-items-update", queue_pk=queue.pk)
    board = lead.get(project_url(tenant, "lead-queue-board", queue_pk=queue.pk)).content.decode()
    # More pending items than the board shows: the column offers all of them.
    assert 'id="whole-pending"' in board
    assert "Select all 24 in pending" in board

    confirm = lead.post(update, {"column": "pending", "priority": "5", "item_id": items[0].pk})
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert 'id="column-count">24<' in page
    assert "priority 5" in page
    # Nothing changed yet.
    assert _item(tenant, items[-1].pk).priority == 0
    # Meanwhile a reviewer claims one: it leaves the column before the lead confirms.
    claimed = _claim(tenant, tenant.reviewer, queue)
    done = lead.post(
        update, {"column": "pending", "priority": "5", "assignee": "keep", "confirm": "1"}
    )
    assert done.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        priorities = dict(QueueItem.objects.filter(queue=queue).values_list("pk", "priority"))
    assert priorities.pop(held.item_id) == 0
    assert priorities.pop(claimed.item_id) == 0
    assert set(priorities.values()) == {5}
    assert len(priorities) == 23


def test_a_column_change_refuses_a_closed_column_and_no_change(tenant):
    queue = make_queue(tenant)
    add_traces(tenant, queue, 1)
    lead = signed_in(tenant.admin)
    update = project_url(tenant, "lead-items-update", queue_pk=queue.pk)
    closed = lead.post(update, {"column": "complete", "priority": "5"})
    assert closed.status_code == 422
    assert "open columns" in closed.content.decode()
    nothing = lead.post(update, {"column": "pending", "assignee": "keep"})
    assert nothing.status_code == 422
    with (
        tenancy.tenant_scope(tenant.organization.pk),
        pytest.raises(DomainError, match="not both"),
    ):
        queue_items_update_each(
            actor=Actor(user=tenant.owner), queue=queue, column="complete", priority=1
        )
