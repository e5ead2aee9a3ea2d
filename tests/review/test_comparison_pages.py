"""The comparison pages (Django client): the report page for leads and auditors, and
the review page's submit refusing bad answers with their reason."""

from __future__ import annotations

import pytest

from hitl import tenancy
from review.comparison.models import Preference
from tests.page_clients import project_url, signed_in
from tests.review.comparison_helpers import (
    claim,
    enqueue,
    make_comparison,
    make_comparison_queue,
    submit,
)
from tests.review.helpers import make_queue

pytestmark = pytest.mark.django_db


def test_the_report_page_shows_strengths_position_and_agreement(tenant, other_tenant):
    queue = make_comparison_queue(tenant)
    enqueue(tenant, queue, [make_comparison(tenant), make_comparison(tenant)])
    while (lease := claim(tenant, tenant.reviewer, queue)) is not None:
        submit(tenant, tenant.reviewer, lease, {"helpfulness": {"choice": "a"}})
    url = project_url(tenant, "reports-comparison", queue_pk=queue.pk)
    page = signed_in(tenant.owner).get(url, {"resamples": 50})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Bradley-Terry strength" in text and "candidate" in text and "baseline" in text
    assert "2 of 2 decisive answers" in text  # always the left one: full position bias
    assert "Preference pairs (JSONL)" in text
    assert signed_in(tenant.auditor).get(url).status_code == 200
    assert signed_in(tenant.reviewer).get(url).status_code == 403
    assert signed_in(tenant.owner).get(url, {"resamples": "many"}).status_code == 400
    assert signed_in(other_tenant.owner).get(url).status_code == 404
    plain = make_queue(tenant, configs=[])
    plain_url = project_url(tenant, "reports-comparison", queue_pk=plain.pk)
    assert signed_in(tenant.owner).get(plain_url).status_code == 404


def test_the_review_page_refuses_bad_answers_with_reasons(tenant):
    queue = make_comparison_queue(tenant, criteria=("helpfulness", "safety"))
    enqueue(tenant, queue, [make_comparison(tenant)])
    lease = claim(tenant, tenant.reviewer, queue)
    reviewer = signed_in(tenant.reviewer)
    page_url = project_url(tenant, "review-compare", assignment_pk=lease.pk)
    # The core's review address for this lease sends the reviewer here.
    core = reviewer.get(project_url(tenant, "review-item", assignment_pk=lease.pk))
    assert core.status_code == 302 and core["Location"] == page_url
    assert reviewer.get(page_url).status_code == 200
    assert signed_in(tenant.admin).get(page_url).status_code == 404
    submit_url = project_url(tenant, "review-compare-submit", assignment_pk=lease.pk)
    refused = reviewer.post(submit_url, {"c-0": "z", "c-1": "a"})
    assert refused.status_code == 400
    assert "Select a valid choice" in refused.content.decode()
    refused = reviewer.post(submit_url, {"c-0": "a"})
    assert refused.status_code == 400 and "Pick one." in refused.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Preference.objects.exists()
    done = reviewer.post(submit_url, {"c-0": "b", "c-1": "tie", "s-0": "2"})
    assert done.status_code == 302  # on to the next item (none: My work)
    assert done["Location"].endswith("/work/")
    with tenancy.tenant_scope(tenant.organization.pk):
        helpful = Preference.objects.get(criterion="helpfulness")
        assert helpful.winner_id == helpful.shown_order[1]
        assert helpful.strength == 1  # this queue does not ask how much better


def test_a_split_comparison_shows_on_the_seniors_pages_without_error(tenant):
    from review.models import QueueItem
    from tests.review.helpers import add_reviewers

    first, second = add_reviewers(tenant, 2)
    queue = make_comparison_queue(
        tenant, reviewers=[first, second, tenant.admin], seniors=(tenant.admin,), overlap=2
    )
    enqueue(tenant, queue, [make_comparison(tenant)])
    for user, choice in ((first, "a"), (second, "tie")):
        submit(tenant, user, claim(tenant, user, queue), {"helpfulness": {"choice": choice}})
    with tenancy.tenant_scope(tenant.organization.pk):
        item = QueueItem.objects.get(queue=queue)
    assert item.status == "needs_adjudication"
    senior = signed_in(tenant.admin)
    listing = senior.get(f"/orgs/{tenant.organization.slug}/adjudication/")
    assert listing.status_code == 200
    page = senior.get(project_url(tenant, "review-adjudicate", item_pk=item.pk))
    assert page.status_code in (200, 404), page.status_code


def test_the_lead_sets_up_and_fills_a_comparison_queue_from_traces(tenant, other_tenant):
    from review.comparison.models import ComparisonQueue
    from review.models import QueueItem
    from tests.review.helpers import make_trace

    queue = make_queue(tenant, configs=[])
    url = project_url(tenant, "lead-queue-comparison", queue_pk=queue.pk)
    owner = signed_in(tenant.owner)
    page = owner.get(url)
    assert (
        page.status_code == 200 and "Save the comparison questions first" in page.content.decode()
    )
    assert signed_in(tenant.reviewer).get(url).status_code == 403
    assert signed_in(other_tenant.owner).get(url).status_code == 404
    # Refusals beside their fields, nothing written.
    refused = owner.post(url, {"action": "setup", "criteria": "a\na", "n_way": "best"})
    assert refused.status_code == 422 and "Criteria names repeat." in refused.content.decode()
    refused = owner.post(url, {"action": "setup", "criteria": "x", "n_way": "all"})
    assert refused.status_code == 422 and 'id="cmp-nway-error"' in refused.content.decode()
    early = owner.post(url, {"action": "fill", "source": "traces", "group_by": "variant"})
    assert early.status_code == 422
    assert "no comparison questions" in early.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ComparisonQueue.objects.exists()
    saved = owner.post(
        url,
        {
            "action": "setup",
            "criteria": "helpfulness: Which helps more?\n\nsafety",
            "allow_strength": "on",
            "n_way": "ranking",
        },
    )
    assert saved.status_code == 302 and saved["Location"] == url
    with tenancy.tenant_scope(tenant.organization.pk):
        setup = ComparisonQueue.objects.get(queue=queue)
    assert setup.criteria == [
        {"name": "helpfulness", "question": "Which helps more?"},
        {"name": "safety", "question": ""},
    ]
    assert setup.allow_strength and setup.n_way == "ranking"
    page = owner.get(url).content.decode()
    assert "Comparison report" in page and "helpfulness: Which helps more?" in page
    board = owner.get(project_url(tenant, "lead-queue-board", queue_pk=queue.pk)).content.decode()
    assert url in board and project_url(tenant, "reports-comparison", queue_pk=queue.pk) in board
    # Filling: bad input beside its field; then from the latest traces with the key.
    for body, reason in (
        ({"source": "traces", "group_by": ""}, "Name the metadata key"),
        ({"source": "experiments", "experiment_ids": "1, x"}, "whole numbers"),
        ({"source": "experiments", "experiment_ids": "1"}, "Name 2 to 9 experiments."),
        ({"source": "traces", "group_by": "variant"}, "Fewer than two traces"),
        ({"source": "traces", "group_by": "variant", "priority": "99999999999"}, "less than"),
    ):
        refused = owner.post(url, {"action": "fill", **body})
        assert refused.status_code == 422, (body, refused.status_code)
        assert reason in refused.content.decode(), body
    make_trace(tenant, input="same", output="1", metadata={"variant": "a"})
    make_trace(tenant, input="same", output="2", metadata={"variant": "b"})
    make_trace(tenant, input="alone", output="3", metadata={"variant": "a"})
    filled = owner.post(url, {"action": "fill", "source": "traces", "group_by": "variant"})
    assert filled.status_code == 302, filled.content.decode()[:2000]
    with tenancy.tenant_scope(tenant.organization.pk):
        items = list(QueueItem.objects.filter(queue=queue))
        assert [i.target_type for i in items] == ["comparison"]
        assert items[0].comparison.outputs.count() == 2


def test_a_fill_larger_than_one_batch_queues_every_item_it_makes(tenant, monkeypatch):
    from hitl.audit import Actor
    from review.comparison import services
    from review.models import QueueItem
    from tests.review.helpers import make_trace

    monkeypatch.setattr(services, "MAX_BATCH", 2)  # three items cross two batches
    queue = make_queue(tenant, configs=[])
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.comparison_setup(actor=owner, queue=queue, criteria=[{"name": "overall"}])
    for n in range(3):
        make_trace(tenant, input=f"q{n}", output="1", metadata={"variant": "a"})
        make_trace(tenant, input=f"q{n}", output="2", metadata={"variant": "b"})
    with tenancy.tenant_scope(tenant.organization.pk):
        queued = services.comparison_queue_fill(actor=owner, queue=queue, group_by="variant")
        assert len(queued) == 3
        assert QueueItem.objects.filter(queue=queue, target_type="comparison").count() == 3
