"""A queue's claim order (breadth first, complete items first) and what one claim and
one submit cost in queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import PermissionDenied
from projects.models import Membership
from review import services
from review.models import ClaimOrder, ReviewQueue
from review.quality.models import CalibrationResult
from review.quality.services import calibration
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue, make_trace


def _claim(tenant, user, queue):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.queue_claim_next(actor=Actor(user=user), queue=queue)


def _submit(tenant, user, lease, config):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.assignment_submit(
            actor=Actor(user=user), assignment_id=lease.pk, values={str(config.pk): 0.5}
        )


@pytest.mark.parametrize("order", [ClaimOrder.BREADTH_FIRST, ClaimOrder.COMPLETE_FIRST])
def test_complete_first_offers_the_item_another_reviewer_already_reviewed(tenant, order):
    config = make_config(tenant)
    a, b = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[a, b], overlap=2, claim_order=order)
    first, second, third = add_traces(tenant, queue, 3)
    leases = [_claim(tenant, a, queue) for _ in range(3)]
    assert [lease.item_id for lease in leases] == [first.pk, second.pk, third.pk]
    _submit(tenant, a, leases[2], config)  # the newest item now holds a review
    offered = _claim(tenant, b, queue).item_id
    if order == ClaimOrder.COMPLETE_FIRST:
        assert offered == third.pk
    else:
        assert offered == first.pk  # oldest first, as before


def test_complete_first_prefers_the_item_nearest_completion_within_a_priority(tenant):
    config = make_config(tenant)
    a, b, c = add_reviewers(tenant, 3)
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=[a, b, c],
        overlap=3,
        claim_order=ClaimOrder.COMPLETE_FIRST,
    )
    first, second, urgent = add_traces(tenant, queue, 3)
    _submit(tenant, a, _claim(tenant, a, queue), config)  # first: 1 review
    for user in (a, b):  # second: 2 reviews (a's next is second, then b's first is first)
        lease = _claim(tenant, user, queue)
        _submit(tenant, user, lease, config)
    with tenancy.tenant_scope(tenant.organization.pk):
        counts = dict(queue.items.values_list("id", "submissions"))
    assert counts == {first.pk: 2, second.pk: 1, urgent.pk: 0}
    assert _claim(tenant, c, queue).item_id == first.pk  # 2 reviews before 1 before 0
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_items_update(
            actor=Actor(user=tenant.owner), queue=queue, item_ids=[urgent.pk], priority=5
        )
    assert _claim(tenant, c, queue).item_id == urgent.pk  # priority still comes first


def test_claim_order_through_the_api_and_its_history(tenant, client_for):
    config = make_config(tenant)
    url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/queues/"
    owner = client_for(tenant.owner)
    created = owner.post(
        url, {"name": "q", "form": [{"config_id": config.pk}]}, format="json"
    ).json()
    assert created["claim_order"] == "breadth_first"
    changed = owner.patch(
        f"{url}{created['id']}/", {"claim_order": "complete_first"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["claim_order"] == "complete_first"
    refused = owner.patch(f"{url}{created['id']}/", {"claim_order": "random"}, format="json")
    assert refused.status_code == 400 and "claim_order" in refused.json()["error"]["details"]
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = ReviewQueue.objects.get(pk=created["id"])
        assert queue.claim_order == ClaimOrder.COMPLETE_FIRST
        latest, before = queue.history.order_by("-history_id")[:2]
        assert [c.field for c in latest.diff_against(before).changes] == ["claim_order"]


def test_claim_order_on_the_queue_settings_page(tenant):
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer])
    with tenancy.tenant_scope(tenant.organization.pk):
        member = Membership.objects.get(user=tenant.reviewer)
    client = signed_in(tenant.admin)
    url = project_url(tenant, "lead-queue-edit", queue_pk=queue.pk)
    page = client.get(url).content.decode()
    assert 'name="claim_order"' in page and "Complete items first" in page
    post = {
        "name": queue.name,
        "assignment_strategy": "pull",
        "claim_order": "complete_first",
        "overlap": "2",
        f"q-{config.pk}": "on",
        f"m-{member.pk}": "on",
    }
    assert client.post(url, post).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        queue.refresh_from_db()
        assert queue.claim_order == ClaimOrder.COMPLETE_FIRST
    assert '<option value="complete_first" selected>' in client.get(url).content.decode()
    history_url = project_url(tenant, "lead-queue-history", queue_pk=queue.pk)
    history = client.get(history_url).context["history"]
    fields = [line["field"] for entry in history for line in entry["lines"]]
    assert any("claim" in field.lower() or "next" in field.lower() for field in fields), fields
    refused = client.post(url, dict(post, claim_order="random"))
    assert refused.status_code == 422 and "Choose one of the orders." in refused.content.decode()


# One claim is one statement on its own prepared cursor (which Django does not log):
# no query through Django, the claim gates included. One submit that does not close
# its item, and one that does (nobody subscribed to its events), counted here inside
# the test's transaction (a savepoint and its release instead of BEGIN and COMMIT).
# Before this was pinned: a claim 1 query + the statement, a submit 14, a closing 22.
# Since judge suggestions, one query more: the judges' latest scores of the item, read
# once for the record of what the reviewer was shown (review.services.suggestions).
# Since the submit locks its item and then its lease in one statement (issue 21,
# review.services.claims._LOCK_ASSIGNMENT_SQL), one fewer: 13 and 17, the first
# submit's outbox message (the agreement request) included.
SUBMIT_QUERIES = 13
CLOSING_SUBMIT_QUERIES = 17


def _require_a_passed_calibration(tenant, queue, config, reviewers) -> None:
    owner = Actor(user=tenant.owner)
    trace = make_trace(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        cal = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name="onboarding", config_ids=[config.pk]
        )
        calibration.gold_answer_set(
            actor=owner, calibration_set=cal, trace_id=trace.pk, values={str(config.pk): 0.5}
        )
        calibration.queue_calibration_set(actor=owner, queue=queue, calibration_set=cal)
        with pytest.raises(PermissionDenied) as refused:
            services.queue_claim_next(actor=Actor(user=reviewers[0]), queue=queue)
        assert refused.value.code == "calibration_required"
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[u.pk for u in reviewers]
        )
        for user in reviewers:  # scoring a round is tested with calibration
            CalibrationResult.objects.create(
                round=round_, calibration_set=cal, reviewer=user, passed=True
            )


@pytest.mark.parametrize("gated", [False, True])
def test_one_claim_and_one_submit_cost_a_fixed_number_of_queries(tenant, gated):
    config = make_config(tenant)
    a, b = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[a, b], overlap=2)
    add_traces(tenant, queue, 2)
    if gated:  # a queue requiring a calibration set its reviewers passed
        _require_a_passed_calibration(tenant, queue, config, [a, b])
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = ReviewQueue.objects.get(pk=queue.pk)
        for user, closing in ((a, False), (b, True)):
            with CaptureQueriesContext(connection) as claim:
                lease = services.queue_claim_next(actor=Actor(user=user), queue=queue)
            assert lease is not None
            assert len(claim) == 0, [q["sql"] for q in claim.captured_queries]
            with CaptureQueriesContext(connection) as submit:
                services.assignment_submit(
                    actor=Actor(user=user), assignment_id=lease.pk, values={str(config.pk): 0.5}
                )
            limit = CLOSING_SUBMIT_QUERIES if closing else SUBMIT_QUERIES
            assert len(submit) <= limit, "\n".join(q["sql"][:120] for q in submit.captured_queries)


def _prepared_claim_runs() -> int:
    """How many times this connection ran a prepared claim statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ["%INSERT INTO review_assignment%"],
        )
        return cursor.fetchone()[0]


def test_the_claim_statement_is_prepared_once_per_connection(tenant):
    """PostgreSQL parses the claim once per connection, not on every claim (psycopg
    ignores ``prepare=True`` unless the connection allows prepared statements:
    hitl.settings)."""
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, reviewers=reviewers, overlap=3)
    add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        before = _prepared_claim_runs()
        for user in reviewers:
            assert services.queue_claim_next(actor=Actor(user=user), queue=queue) is not None
        assert _prepared_claim_runs() - before == 3
