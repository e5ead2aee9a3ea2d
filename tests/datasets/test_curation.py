"""Promotion with provenance, duplicates, immutable and diffable versions, history."""

from __future__ import annotations

import pytest

from datasets import selectors, services
from datasets.models import DatasetItem, DatasetItemRevision, DatasetVersion
from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError
from review import services as review_services
from tests.datasets.helpers import import_rows, make_dataset, make_reviewed_item
from tests.review.helpers import make_queue, make_trace
from traces.models import Score


def test_a_reviewed_item_promotes_with_its_provenance(tenant):
    item, trace, (first, second) = make_reviewed_item(tenant, disagree=True)
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        promoted = services.dataset_promote(
            actor=Actor(user=tenant.owner),
            dataset=dataset,
            queue_item_id=item.pk,
            overrides={"failure_reason": "tenfold overdose", "tags": ["dosing"]},
        )
        assert promoted.status == "created" and promoted.version.number == 1
        row = promoted.item
        assert row.key == "trace:consult-7"
        assert row.input == {"q": "dose of amoxicillin?"}
        # The adjudication's expected output wins over the reviewers'.
        assert row.expected_output == {"a": "2 g, every 8 hours"}
        assert row.explanation == "Overdose: fails."
        assert row.failure_reason == "tenfold overdose" and row.tags == ["dosing"]
        assert row.failure_modes == ["wrong_dose"]
        assert row.trace_id == trace.pk and row.queue_item_id == item.pk
        assert row.adjudication_id is not None and len(row.annotation_ids) == 2
        reviewers = [r["reviewer"] for r in row.reviews]
        assert reviewers[:2] == [first.email, second.email]
        assert row.reviews[2]["adjudication"] is True
        assert row.reviews[0]["answers"] == {"accuracy": 0.0}
        assert row.reviews[1]["explanation"].endswith("tenfold overdose")
        record = DatasetItemRevision.objects.get(dataset=dataset, key=row.key).content
        assert record["source_trace_id"] == "consult-7"
        assert record["answers"][f"{first.email}/accuracy"] == 0.0
        assert record["answers"][f"adjudication ({tenant.admin.email})/accuracy"] == 0.0
        # History names who promoted it.
        (created,) = DatasetItem.history.filter(id=row.pk)
        assert created.history_user == tenant.owner and created.history_type == "+"


def test_agreeing_reviewers_expected_output_is_carried(tenant):
    item, _trace, _ = make_reviewed_item(tenant, disagree=False)
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        row = services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, queue_item_id=item.pk
        ).item
    assert row.expected_output == {"a": "2 g"} and row.adjudication_id is None
    assert "tenfold overdose" in row.explanation


def test_an_unreviewed_item_is_refused(tenant):
    queue = make_queue(tenant)
    trace = make_trace(tenant)
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        with pytest.raises(DomainError) as refused:
            services.dataset_promote(
                actor=Actor(user=tenant.owner), dataset=dataset, queue_item_id=item.pk
            )
    assert refused.value.code == "not_reviewed"


def test_promoting_the_same_source_twice_reports_the_item_and_updates_only_when_asked(tenant):
    item, _trace, _ = make_reviewed_item(tenant, disagree=False)
    dataset = make_dataset(tenant)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        first = services.dataset_promote(
            actor=owner, dataset=dataset, trace_id="consult-7", accept_output=True
        )
        assert first.item.expected_output == {"a": "20 g"}  # the trace's own, accepted
        again = services.dataset_promote(actor=owner, dataset=dataset, queue_item_id=item.pk)
        assert again.status == "exists" and again.item.pk == first.item.pk
        assert again.version is None and DatasetItem.objects.filter(dataset=dataset).count() == 1
        updated = services.dataset_promote(
            actor=owner, dataset=dataset, queue_item_id=item.pk, update_existing=True
        )
        assert updated.status == "updated" and updated.version.number == 2
        assert updated.item.expected_output == {"a": "2 g"}
        same = services.dataset_promote(
            actor=owner, dataset=dataset, queue_item_id=item.pk, update_existing=True
        )
        assert same.status == "unchanged" and same.version is None
        assert DatasetItem.objects.filter(dataset=dataset).count() == 1
        assert [h.history_type for h in DatasetItem.history.filter(id=first.item.pk)] == [
            "~",
            "+",
        ]


def test_span_and_thread_promotion(tenant):
    from tests.review.helpers import make_span
    from traces.models import Thread

    dataset = make_dataset(tenant)
    trace = make_trace(tenant, external_id="t-1")
    make_span(trace, external_id="tool-1", input={"city": "Oslo"}, output={"t": 3}, kind="tool")
    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id="chat-1")
        for n, (q, a) in enumerate([("hi", "hello"), ("dose?", "2 g")]):
            make_trace(tenant, external_id=f"turn-{n}", thread=thread, input=q, output=a)
        owner = Actor(user=tenant.owner)
        span = services.dataset_promote(
            actor=owner, dataset=dataset, trace_id="t-1", span_id="tool-1", accept_output=True
        ).item
        chat = services.dataset_promote(
            actor=owner, dataset=dataset, thread_id="chat-1", accept_output=True
        ).item
    assert span.key == "span:t-1/tool-1" and span.input == {"city": "Oslo"}
    assert chat.input == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "dose?"},
    ]
    assert chat.expected_output == "2 g"


def test_bulk_promotion_from_a_trace_filter_records_history_and_one_version(tenant):
    dataset = make_dataset(tenant)
    for n in range(3):
        make_trace(tenant, external_id=f"bad-{n}", status="error", input={"n": n})
    make_trace(tenant, external_id="fine", status="ok")
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        report = services.dataset_promote_from_trace_filter(
            actor=owner, dataset=dataset, params={"status": "error"}
        )
        assert report["created"] == 3 and report["version"] == 1
        again = services.dataset_promote_from_trace_filter(
            actor=owner, dataset=dataset, params={"status": "error"}
        )
        assert again["exists"] == 3 and again["created"] == 0 and again["version"] == 1
        assert len(again["existing_item_ids"]) == 3
        assert DatasetItem.history.filter(dataset=dataset).count() == 3
        assert DatasetVersion.objects.filter(dataset=dataset).count() == 1


def test_bulk_promotion_where_reviewers_failed_and_the_judge_passed(tenant):
    item, trace, _ = make_reviewed_item(tenant, disagree=False)  # reviewers: 0.0
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        human = {"question": "accuracy", "op": "lt", "value": 0.5}
        judge = {"score": "correctness", "op": "gte", "value": 0.5}
        owner = Actor(user=tenant.owner)
        none = services.dataset_promote_from_reviews(
            actor=owner, dataset=dataset, queue_id=item.queue_id, human=human, judge=judge
        )
        assert none["matched"] == 0  # no judge score yet
        Score.objects.create(
            project=tenant.project, trace=trace, name="correctness", data_type="numeric",
            value=0.9, source="llm_judge",
        )  # fmt: skip
        report = services.dataset_promote_from_reviews(
            actor=owner, dataset=dataset, queue_id=item.queue_id, human=human, judge=judge
        )
    assert report["created"] == 1


def test_versions_are_immutable_and_diffable(tenant):
    dataset = make_dataset(tenant)
    rows = [{"id": f"case-{n}", "input": {"q": n}, "expected_output": n} for n in range(4)]
    import_rows(tenant, dataset, rows)
    with tenancy.tenant_scope(tenant.organization.pk):
        v1 = DatasetVersion.objects.get(dataset=dataset, number=1)
        first = list(selectors.version_records_raw(v1))
        owner = Actor(user=tenant.owner)
        item = DatasetItem.objects.get(dataset=dataset, key="case-1")
        services.dataset_item_update(actor=owner, item=item, expected_output=10, tags=["fixed"])
        services.dataset_item_delete(
            actor=owner, item=DatasetItem.objects.get(dataset=dataset, key="case-2")
        )
        services.dataset_item_create(actor=owner, dataset=dataset, key="case-9", input={"q": 9})
        assert list(selectors.version_records_raw(v1)) == first  # v1 did not move
        dataset.refresh_from_db()
        assert dataset.current_version == 4
        counts = [
            (v.number, v.item_count)
            for v in DatasetVersion.objects.filter(dataset=dataset).order_by("number")
        ]
        assert counts == [(1, 4), (2, 4), (3, 3), (4, 4)]
        diff = selectors.version_diff(dataset=dataset, from_number=1, to_number=4)
        assert diff["added"] == ["case-9"] and diff["removed"] == ["case-2"]
        (changed,) = diff["changed"]
        assert changed["id"] == "case-1"
        assert changed["fields"] == {
            "expected_output": {"from": 1, "to": 10},
            "tags": {"from": [], "to": ["fixed"]},
        }
        backwards = selectors.version_diff(dataset=dataset, from_number=4, to_number=1)
        assert backwards["added"] == ["case-2"] and backwards["removed"] == ["case-9"]
        assert backwards["changed"][0]["fields"]["expected_output"] == {"from": 10, "to": 1}
        assert selectors.version_diff(dataset=dataset, from_number=2, to_number=2)["counts"] == {
            "added": 0,
            "removed": 0,
            "changed": 0,
        }
        # Removing and re-adding is a change between the ends (here: by hand, no longer
        # imported), not an add.
        services.dataset_item_create(
            actor=owner, dataset=dataset, key="case-2", input={"q": 2}, expected_output=2
        )
        diff = selectors.version_diff(dataset=dataset, from_number=1, to_number=5)
        assert diff["counts"] == {"added": 1, "removed": 0, "changed": 2}
        assert diff["changed"][1]["fields"] == {"source_type": {"from": "import", "to": "manual"}}


def test_schema_is_enforced_on_promotion_and_edits(tenant):
    schema = {"input": {"type": "object", "required": ["q"]}}
    dataset = make_dataset(tenant, schema=schema)
    trace = make_trace(tenant, input="just text")
    with tenancy.tenant_scope(tenant.organization.pk):
        with pytest.raises(DomainError) as refused:
            services.dataset_promote(
                actor=Actor(user=tenant.owner), dataset=dataset, trace_id=trace.external_id
            )
        assert "input" in str(refused.value.details)
        assert not DatasetItem.objects.filter(dataset=dataset).exists()
    with pytest.raises(DomainError):
        make_dataset(tenant, name="broken", schema={"input": {"type": "nonsense"}})
