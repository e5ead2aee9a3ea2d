"""Adjudicating a disputed comparison item: the senior sees the input and the outputs
side by side with the reviewers' preferences (the split criteria marked), and records
the final preference per criterion as the item's decision, with history and the
acting user (``comparison_adjudicate``); the report's pairs and strengths, the export
and the gate's share then read the decision instead of the reviewers' preferences,
while agreement keeps reading the reviewers."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, PermissionDenied
from projects.selectors import membership_of
from review.comparison import report, services
from review.comparison.models import ComparisonOutput
from review.models import Adjudication, ItemStatus, QueueItem
from tests.page_clients import project_url, signed_in
from tests.review.comparison_helpers import disputed_comparison

REPORT = "reports-comparison"


def disputed(tenant):
    queue, item, by_label, reviewers = disputed_comparison(tenant)
    assert item.status == ItemStatus.NEEDS_ADJUDICATION
    return queue, item, by_label, reviewers


def _pairs(queue, criterion):
    result = report.comparison_report(queue, criterion=criterion, resamples=0)
    (row,) = result["criteria"]
    return row


def test_the_decision_is_recorded_and_the_report_and_export_read_it(tenant):
    queue, item, by_label, (first, _second) = disputed(tenant)
    org = tenant.organization
    # Canonical order: "a" is the first output (baseline), "b" the second (candidate).
    decision = {"helpfulness": {"choice": "b"}, "safety": {"choice": "b"}}
    with tenancy.tenant_scope(org.pk):
        before = _pairs(queue, "helpfulness")
        assert (before["pairs"][0]["a_wins"], before["pairs"][0]["b_wins"]) == (1, 1)
        agreement_before = before["agreement"]
        with pytest.raises(PermissionDenied):
            services.comparison_adjudicate(
                actor=Actor(user=first),
                item=item,
                membership=membership_of(first, org.slug),
                answers=decision,
            )
        with pytest.raises(DomainError) as refused:
            services.comparison_adjudicate(
                actor=Actor(user=tenant.admin),
                item=item,
                membership=membership_of(tenant.admin, org.slug),
                answers={"helpfulness": {"choice": "z"}},
            )
        assert set(refused.value.details["answers"]) == {"helpfulness", "safety"}
        assert not Adjudication.objects.exists()

        made = services.comparison_adjudicate(
            actor=Actor(user=tenant.admin),
            item=item,
            membership=membership_of(tenant.admin, org.slug),
            answers=decision,
            explanation="B names the dose limit.",
        )
        made.refresh_from_db()
        assert made.adjudicator_id == tenant.admin.pk
        assert made.values["preferences"]["helpfulness"]["winner"] == by_label["candidate"]
        assert made.values["preferences"]["helpfulness"]["preferred"] == "candidate"
        assert made.disagreement == {
            "preferences": {"helpfulness": {"baseline": 1, "candidate": 1}}
        }
        history = made.history.get()
        assert history.history_user_id == tenant.admin.pk
        assert QueueItem.objects.get(pk=item.pk).status == ItemStatus.ADJUDICATED
        with pytest.raises(Conflict):
            services.comparison_adjudicate(
                actor=Actor(user=tenant.admin),
                item=item,
                membership=membership_of(tenant.admin, org.slug),
                answers=decision,
            )

        # The pairs read the decision (one judgement, candidate over baseline); the
        # reviewers' agreement is what they said.
        after = _pairs(queue, "helpfulness")
        pair = after["pairs"][0]
        assert (pair["system_a"], pair["a_wins"], pair["b_wins"]) == ("baseline", 0, 1)
        assert after["adjudicated"] == 1 and after["preferences"] == 2
        assert after["agreement"] == agreement_before
        records = [json.loads(line) for line in report.preference_pairs_jsonl(queue)]
    helpful = [r for r in records if r["criterion"] == "helpfulness"]
    assert len(helpful) == 1
    assert helpful[0]["chosen_system"] == "candidate" and helpful[0]["adjudicated"] is True
    assert helpful[0]["reviewers"] == [tenant.admin.email]


def test_the_gate_share_reads_the_decision(tenant):
    queue, item, by_label, _reviewers = disputed(tenant)
    org = tenant.organization
    with tenancy.tenant_scope(org.pk):
        # The baseline as the "candidate" under test: one win, one loss before.
        ComparisonOutput.objects.filter(pk=by_label["baseline"]).update(experiment_result_id=71)

        def share():
            return report.candidate_preferred_or_tied(
                project_id=tenant.project.pk,
                queue_id=queue.pk,
                candidate_experiment_result_ids=[71],
                criterion="helpfulness",
            )["preferred_or_tied"]

        assert share() == 1  # 1 for, 1 against: preferred or tied
        services.comparison_adjudicate(
            actor=Actor(user=tenant.admin),
            item=item,
            membership=membership_of(tenant.admin, org.slug),
            answers={"helpfulness": {"choice": "b"}, "safety": {"choice": "b"}},
        )
        assert share() == 0  # the decision preferred the other output


def test_the_adjudication_page_shows_the_outputs_and_records_the_preference(tenant):
    _queue, item, by_label, (first, second) = disputed(tenant)
    url = project_url(tenant, "review-adjudicate", item_pk=item.pk)
    senior = signed_in(tenant.admin)
    shown = senior.get(url)
    assert shown.status_code == 200
    body = shown.content.decode()
    assert "Max dose in cirrhosis?" in body
    assert body.count('class="card compare-output"') == 2
    assert "baseline answer" in body and "candidate answer" in body
    assert first.email in body and second.email in body
    assert 'id="preferences-0"' in body and 'class="badge bad">split' in body
    assert "A (baseline)" in body and "B (candidate)" in body
    # What they agreed on starts the decision (safety: b).
    assert 'name="c-1" value="b" checked' in body
    assert 'name="c-0" value="a" checked' not in body and 'name="c-0" value="b" checked' not in body

    refused = senior.post(url, {"c-1": "b"})
    assert refused.status_code == 422 and "Pick one." in refused.content.decode()
    refused = senior.post(url, {"c-0": "q", "c-1": "b"})
    assert refused.status_code == 422
    for hostile in (
        {"c-0": "a\x00", "c-1": "b"},
        {"c-0": "b" * 5000, "c-1": ["b", "a"]},
        {"c-0": "b", "c-1": "b", "s-0": "9" * 40, "explanation": "x\x00y"},
        {"c-0": "b", "c-1": "b", "explanation": "x" * 20_001},
    ):
        answered = senior.post(url, hostile)
        assert 400 <= answered.status_code < 500, (hostile, answered.status_code)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Adjudication.objects.exists()

    done = senior.post(url, {"c-0": "b", "c-1": "b", "explanation": "B names the limit."})
    assert done.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        made = Adjudication.objects.get(item=item)
    assert made.values["preferences"]["helpfulness"]["winner"] == by_label["candidate"]
    assert made.explanation == "B names the limit."
    again = senior.get(url).content.decode()
    assert 'id="decided"' in again and 'id="compare-form"' not in again
    assert "B (candidate)" in again and "B names the limit." in again
    # A posted decision on a decided item is refused with the reason, nothing added.
    late = senior.post(url, {"c-0": "a", "c-1": "a"})
    assert late.status_code == 422
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Adjudication.objects.count() == 1
    # A reviewer who is not a senior does not adjudicate here.
    assert signed_in(first).get(url).status_code == 404
    # The report says where the decision counts.
    shown = senior.get(project_url(tenant, REPORT, queue_pk=item.queue_id) + "?resamples=0")
    assert shown.status_code == 200
    assert 'id="adjudicated-1">1</span> item the adjudicator' in shown.content.decode()


def test_the_api_decides_a_comparison_with_preferences_only(tenant, client_for):
    queue, item, by_label, (first, _second) = disputed(tenant)
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    url = f"{base}/queues/{queue.pk}/items/{item.pk}/adjudicate/"
    senior = client_for(tenant.admin)
    for body in ({"values": {}}, {"values": {}, "preferences": {"helpfulness": {"choice": "b"}}}):
        refused = senior.post(url, body, format="json")
        assert refused.status_code == 400, refused.content
        assert "preferences" in refused.json()["error"]["details"]
    wrong = senior.post(url, {"preferences": {"helpfulness": {"choice": "z"}}}, format="json")
    assert wrong.status_code == 400
    assert client_for(first).post(
        url,
        {"preferences": {"helpfulness": {"choice": "b"}, "safety": {"choice": "b"}}},
        format="json",
    ).status_code in (403, 404)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Adjudication.objects.exists()
    made = senior.post(
        url,
        {"preferences": {"helpfulness": {"choice": "b"}, "safety": {"choice": "tie"}},
         "explanation": "B names the limit."},
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.content
    decided = made.json()["values"]["preferences"]
    assert decided["helpfulness"]["winner"] == by_label["candidate"]
    assert decided["safety"]["winner"] is None
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QueueItem.objects.get(pk=item.pk).status == ItemStatus.ADJUDICATED

    # Its history reads the preferences by system, in words.
    tenant.owner.is_staff = True
    tenant.owner.save(update_fields=["is_staff"])
    history = signed_in(tenant.owner).get(
        f"/admin/review/adjudication/{made.json()['id']}/history/"
    )
    assert history.status_code == 200
    body = history.content.decode()
    assert "helpfulness: candidate preferred; safety: tie" in body
    assert "helpfulness: baseline 1, candidate 1" in body


def test_a_comparison_item_is_named_by_its_systems_where_people_pick_it(tenant):
    """The board's card, the awaiting-decision list and the decision page's heading name
    a comparison item by the systems it compares, with its input's head: never by its
    internal id alone."""
    queue, item, _by_label, _reviewers = disputed(tenant)
    senior = signed_in(tenant.admin)
    heading = senior.get(project_url(tenant, "review-adjudicate", item_pk=item.pk)).content
    assert "· baseline vs candidate</span></h1>".encode() in heading
    assert f"· item {item.pk}</span></h1>".encode() not in heading
    listed = senior.get(
        reverse("review-adjudication", kwargs={"org_slug": tenant.organization.slug})
    ).content.decode()
    assert ">baseline vs candidate</a>" in listed
    board = (
        signed_in(tenant.owner)
        .get(project_url(tenant, "lead-queue-board", queue_pk=queue.pk))
        .content.decode()
    )
    assert ">baseline vs candidate</a>" in board
    assert "comparison of 2 outputs" in board and "Max dose in cirrhosis?" in board
