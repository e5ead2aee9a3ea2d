"""Reviewers label dataset items: a dataset item as a queue item's target, its verdict
written back as the item's expected output (a new version, history under the reviewer,
the reviews as provenance), refused whole when the dataset's schema refuses it, and the
blind rule over the answers and the current expected output."""

from __future__ import annotations

import pytest

from datasets import services
from datasets.models import DatasetItem, DatasetVersion
from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError
from review import services as review_services
from review.models import Annotation, ItemStatus, ItemTarget, QueueItem
from tests.datasets.helpers import expected_config, import_rows, make_dataset
from tests.review.helpers import add_reviewers, make_config, make_queue
from traces.models import Score


def api(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def golden(tenant, *, schema=None, rows=None):
    dataset = make_dataset(tenant, schema=schema or {})
    rows = rows or [
        {"id": "dose-1", "input": {"q": "amoxicillin dose?"}, "expected_output": "20 g"},
        {"id": "dose-2", "input": {"q": "ibuprofen dose?"}, "expected_output": "400 mg"},
    ]
    import_rows(tenant, dataset, rows)
    with tenancy.tenant_scope(tenant.organization.pk):
        items = {i.key: i for i in DatasetItem.objects.filter(dataset=dataset)}
    return dataset, items


def label(tenant, queue, reviewer, config, text):
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = review_services.queue_claim_next(actor=Actor(user=reviewer), queue=queue)
        assert lease is not None
        return review_services.assignment_submit(
            actor=Actor(user=reviewer),
            assignment_id=lease.pk,
            values={str(config.pk): text},
            explanation=f"{reviewer.email}: 20 g is a tenfold overdose",
        )


def test_add_refuses_duplicates_and_other_tenants_items(tenant, other_tenant):
    config = expected_config(tenant)
    queue = make_queue(tenant, configs=[config])
    _, items = golden(tenant)
    _, foreign = golden(other_tenant)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = review_services.queue_item_add(
            actor=owner, queue=queue, dataset_item_id=items["dose-1"].pk
        )
        assert item.target_type == ItemTarget.DATASET_ITEM
        assert item.dataset_item_id == items["dose-1"].pk and item.trace_id is None
        with pytest.raises(Conflict) as duplicate:
            review_services.queue_item_add(
                actor=owner, queue=queue, dataset_item_id=items["dose-1"].pk
            )
        assert duplicate.value.details == {"item_id": item.pk}
        with pytest.raises(DomainError) as other:
            review_services.queue_item_add(
                actor=owner, queue=queue, dataset_item_id=foreign["dose-1"].pk
            )
        assert other.value.details == {"dataset_item_id": ["not found"]}
        # In bulk, the whole request is refused when one id is another tenant's.
        with pytest.raises(DomainError):
            review_services.queue_items_add_dataset_items(
                actor=owner,
                queue=queue,
                dataset_item_ids=[items["dose-2"].pk, foreign["dose-2"].pk],
            )
        assert QueueItem.objects.filter(queue=queue).count() == 1
        result = review_services.queue_items_add_dataset_items(
            actor=owner, queue=queue, dataset_item_ids=[i.pk for i in items.values()]
        )
        assert result == {"requested": 2, "added": 1, "already_queued": 1}


def test_the_api_adds_a_dataset_item_and_refuses_another_tenants(tenant, other_tenant, client_for):
    queue = make_queue(tenant, configs=[expected_config(tenant)])
    _, items = golden(tenant)
    _, foreign = golden(other_tenant)
    client = client_for(tenant.owner)
    url = f"{api(tenant)}/queues/{queue.pk}/items/"
    created = client.post(url, {"dataset_item_id": items["dose-1"].pk}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["target_type"] == "dataset_item"
    assert created.json()["dataset_item_id"] == items["dose-1"].pk
    again = client.post(url, {"dataset_item_id": items["dose-1"].pk}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_queued"
    theirs = client.post(url, {"dataset_item_id": foreign["dose-1"].pk}, format="json")
    assert theirs.status_code == 400
    detail = client.get(f"{url}{created.json()['id']}/").json()
    assert detail["target"]["dataset_item"]["key"] == "dose-1"
    assert detail["target"]["dataset_item"]["input"] == {"q": "amoxicillin dose?"}
    assert detail["target"]["dataset_item"]["expected_output"] == "20 g"


def test_two_agreeing_reviews_write_the_expected_output_in_a_new_version(tenant):
    config = expected_config(tenant)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[first, second], overlap=2)
    dataset, items = golden(tenant)
    target = items["dose-1"]
    with tenancy.tenant_scope(tenant.organization.pk):
        before = dataset.versions.count()
        queue_item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=target.pk
        )
        one = label(tenant, queue, first, config, "2 g every 8 hours")
        # One review of two: nothing written yet.
        assert DatasetItem.objects.get(pk=target.pk).expected_output == "20 g"
        assert one.dataset_item_id == target.pk
        two = label(tenant, queue, second, config, "2 g every 8 hours")
        queue_item.refresh_from_db()
        assert queue_item.status == ItemStatus.COMPLETE
        item = DatasetItem.objects.get(pk=target.pk)
        assert item.expected_output == "2 g every 8 hours"
        assert item.queue_item_id == queue_item.pk
        assert item.annotation_ids == [one.pk, two.pk]
        assert [r["reviewer"] for r in item.reviews] == [first.email, second.email]
        assert item.reviews[0]["answers"] == {"expected answer": "2 g every 8 hours"}
        assert first.email in item.explanation
        versions = list(DatasetVersion.objects.filter(dataset=dataset).order_by("number"))
        assert len(versions) == before + 1
        assert versions[-1].created_by_id == second.pk
        assert "label dose-1" in versions[-1].message
        latest = item.history.order_by("-history_date", "-history_id").first()
        assert latest.history_type == "~" and latest.history_user_id == second.pk
        # The other item is untouched, and no trace score was written for the answers.
        assert DatasetItem.objects.get(pk=items["dose-2"].pk).expected_output == "400 mg"
        assert not Score.objects.filter(metadata__queue_id=queue.pk).exists()


def test_a_disputed_label_is_written_by_the_adjudication(tenant):
    verdict = make_config(
        tenant,
        name="verdict",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": "2 g", "value": 1.0}, {"label": "20 g", "value": 0.0}],
        target="dataset_item",
        writes_expected_output=True,
    )
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant,
        configs=[verdict],
        reviewers=[first, second, tenant.admin],
        seniors=(tenant.admin,),
        overlap=2,
    )
    dataset, items = golden(tenant)
    target = items["dose-1"]
    with tenancy.tenant_scope(tenant.organization.pk):
        queue_item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=target.pk
        )
        label(tenant, queue, first, verdict, "2 g")
        label(tenant, queue, second, verdict, "20 g")
        queue_item.refresh_from_db()
        assert queue_item.status == ItemStatus.NEEDS_ADJUDICATION
        assert DatasetItem.objects.get(pk=target.pk).expected_output == "20 g"
        version_before = dataset.versions.count()
        decision = review_services.item_adjudicate(
            actor=Actor(user=tenant.admin),
            item=queue_item,
            membership=tenant.admin.memberships.get(),
            values={str(verdict.pk): "2 g"},
            explanation="2 g is the adult dose.",
        )
        item = DatasetItem.objects.get(pk=target.pk)
        assert item.expected_output == "2 g"
        assert item.adjudication_id == decision.pk
        assert item.explanation == "2 g is the adult dose."
        assert item.reviews[-1]["adjudication"] is True
        assert dataset.versions.count() == version_before + 1
        latest = item.history.order_by("-history_date", "-history_id").first()
        assert latest.history_user_id == tenant.admin.pk


def test_a_label_the_schema_refuses_refuses_the_submit_and_keeps_nothing(tenant, client_for):
    config = expected_config(tenant)
    schema = {"expected_output": {"type": "string", "maxLength": 10}}
    queue = make_queue(tenant, configs=[config], overlap=1)
    dataset, items = golden(tenant, schema=schema, rows=[
        {"id": "dose-1", "input": {"q": "amoxicillin dose?"}, "expected_output": "20 g"},
    ])  # fmt: skip
    target = items["dose-1"]
    with tenancy.tenant_scope(tenant.organization.pk):
        queue_item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=target.pk
        )
        lease = review_services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        versions = dataset.versions.count()
        history = DatasetItem.history.filter(id=target.pk).count()
    response = client_for(tenant.reviewer).post(
        f"{api(tenant)}/assignments/{lease.pk}/submit/",
        {"values": {str(config.pk): "2 g every 8 hours with food"}},
        format="json",
    )
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "schema"
    assert "does not fit the schema" in body["message"]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Annotation.objects.filter(item=queue_item).exists()
        queue_item.refresh_from_db()
        assert queue_item.status == ItemStatus.OPEN and queue_item.submissions == 0
        assert DatasetItem.objects.get(pk=target.pk).expected_output == "20 g"
        assert dataset.versions.count() == versions
        assert DatasetItem.history.filter(id=target.pk).count() == history
    # A label that fits goes through on the same lease.
    fits = client_for(tenant.reviewer).post(
        f"{api(tenant)}/assignments/{lease.pk}/submit/",
        {"values": {str(config.pk): "2 g"}},
        format="json",
    )
    assert fits.status_code in (200, 201), fits.content
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetItem.objects.get(pk=target.pk).expected_output == "2 g"


def test_a_blind_reviewer_reads_neither_the_others_answers_nor_the_expected_output(
    tenant, client_for
):
    config = expected_config(tenant)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, configs=[config], reviewers=[first, second], overlap=2, blind_mode=True
    )
    dataset, items = golden(tenant, rows=[
        {"id": "dose-1", "input": {"q": "amoxicillin dose?"}, "expected_output": "current-20g",
         "metadata": {"note": "metadata-secret"}},
    ])  # fmt: skip
    target = items["dose-1"]
    with tenancy.tenant_scope(tenant.organization.pk):
        queue_item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=target.pk
        )
    label(tenant, queue, first, config, "answer-of-first")
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = review_services.queue_claim_next(actor=Actor(user=second), queue=queue)
    blind = client_for(second)
    reads = [
        blind.get(f"{api(tenant)}/queues/{queue.pk}/items/{queue_item.pk}/"),
        blind.get(f"{api(tenant)}/annotations/"),
        blind.get(f"{api(tenant)}/datasets/{dataset.pk}/items/"),
        blind.get(f"{api(tenant)}/datasets/{dataset.pk}/items/{target.pk}/"),
    ]
    for response in reads:
        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert "answer-of-first" not in text
        assert "current-20g" not in text
        assert "metadata-secret" not in text
    assert "amoxicillin dose?" in reads[0].content.decode()  # the input is what they label
    history = blind.get(f"{api(tenant)}/datasets/{dataset.pk}/items/{target.pk}/history/")
    assert history.status_code == 403
    # The review page: the input, not the current expected output nor the other answer.
    page = blind.get(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/review/{lease.pk}/"
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "amoxicillin dose?" in html
    assert "current-20g" not in html and "answer-of-first" not in html
    assert "dataset-item-expected-hidden" in html
    # Once the second reviewer answered, the item's new expected output reads as usual.
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.assignment_submit(
            actor=Actor(user=second),
            assignment_id=lease.pk,
            values={str(config.pk): "answer-of-first"},
        )
    after = blind.get(f"{api(tenant)}/datasets/{dataset.pk}/items/{target.pk}/").json()
    assert after["expected_output"] == "answer-of-first"
    # The owner (a manager) always read everything.
    owner = client_for(tenant.owner).get(f"{api(tenant)}/queues/{queue.pk}/items/{queue_item.pk}/")
    assert "answer-of-first" in owner.content.decode()


def test_a_dataset_item_review_is_not_promoted_elsewhere(tenant):
    config = expected_config(tenant)
    queue = make_queue(tenant, configs=[config], overlap=1)
    _, items = golden(tenant)
    other = make_dataset(tenant, name="other set")
    with tenancy.tenant_scope(tenant.organization.pk):
        queue_item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=items["dose-1"].pk
        )
    label(tenant, queue, tenant.reviewer, config, "2 g")
    with tenancy.tenant_scope(tenant.organization.pk):
        with pytest.raises(DomainError) as refused:
            services.dataset_promote(
                actor=Actor(user=tenant.owner), dataset=other, queue_item_id=queue_item.pk
            )
        assert refused.value.code == "labels_dataset_item"
        report = services.dataset_promote_from_reviews(
            actor=Actor(user=tenant.owner), dataset=other, queue_id=queue.pk
        )
        assert not DatasetItem.objects.filter(dataset=other).exists(), report


def test_pages_send_items_to_a_queue_and_show_who_labelled_them(tenant, other_tenant, client_for):
    config = expected_config(tenant)
    queue = make_queue(tenant, configs=[config], overlap=1, name="label the doses")
    foreign_queue = make_queue(other_tenant, configs=[expected_config(other_tenant)])
    dataset, items = golden(tenant)
    pages = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/datasets/{dataset.pk}"
    owner = client_for(tenant.owner)
    item_page = f"{pages}/items/{items['dose-1'].pk}/"
    assert "send-to-queue" in owner.get(item_page).content.decode()
    # One item from its page.
    sent = owner.post(
        f"{pages}/send-to-queue/",
        {"queue_id": queue.pk, "item_id": items["dose-1"].pk, "next": item_page},
        format="multipart",
    )
    assert sent.status_code == 302 and sent["Location"] == item_page
    # Every item from the dataset page: the one already queued is reported, not doubled.
    owner.post(f"{pages}/send-to-queue/", {"queue_id": queue.pk, "all": "1"}, format="multipart")
    with tenancy.tenant_scope(tenant.organization.pk):
        queued = set(
            QueueItem.objects.filter(queue=queue).values_list("dataset_item_id", flat=True)
        )
    assert queued == {items["dose-1"].pk, items["dose-2"].pk}
    messages = owner.get(f"{pages}/").content.decode()
    assert "Sent 1 item to “label the doses”; 1 already there." in messages
    # Another tenant's queue is not a choice; a reviewer may not send.
    owner.post(
        f"{pages}/send-to-queue/",
        {"queue_id": foreign_queue.pk, "all": "1"},
        format="multipart",
    )
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert not QueueItem.objects.filter(queue=foreign_queue).exists()
    refused = client_for(tenant.reviewer).post(
        f"{pages}/send-to-queue/", {"queue_id": queue.pk, "all": "1"}, format="multipart"
    )
    assert refused.status_code == 403
    # Labelled: the item page says by whom, in which queue, with the new version and history.
    label(tenant, queue, tenant.reviewer, config, "2 g every 8 hours")
    html = owner.get(item_page).content.decode()
    assert "2 g every 8 hours" in html
    assert f"labelled by {tenant.reviewer.email}" in html
    assert "In queue “label the doses”" in html
    assert 'id="history"' in html and tenant.reviewer.email in html


def test_an_edit_after_completion_rewrites_the_label(tenant):
    config = expected_config(tenant)
    queue = make_queue(tenant, configs=[config], overlap=1)
    dataset, items = golden(tenant)
    target = items["dose-1"]
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=target.pk
        )
    annotation = label(tenant, queue, tenant.reviewer, config, "2 g")
    with tenancy.tenant_scope(tenant.organization.pk):
        versions = dataset.versions.count()
        review_services.annotation_update(
            actor=Actor(user=tenant.reviewer),
            annotation_id=annotation.pk,
            expected_version=annotation.version,
            values={str(config.pk): "2 g every 8 hours"},
        )
        assert DatasetItem.objects.get(pk=target.pk).expected_output == "2 g every 8 hours"
        assert dataset.versions.count() == versions + 1
        # An edit of the explanation only changes the reviews snapshot, not the answer.
        review_services.annotation_update(
            actor=Actor(user=tenant.reviewer),
            annotation_id=annotation.pk,
            expected_version=annotation.version + 1,
            explanation="checked the formulary",
        )
        item = DatasetItem.objects.get(pk=target.pk)
        assert item.expected_output == "2 g every 8 hours"
        assert item.reviews[0]["explanation"] == "checked the formulary"


def test_a_blind_reviewer_reads_no_label_through_diffs_or_exports(
    tenant, client_for, settings, tmp_path
):
    settings.HITL_EXPORT_DIR = str(tmp_path)
    config = expected_config(tenant)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[first, second], overlap=2)
    dataset, items = golden(tenant)
    target = items["dose-1"]
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, dataset_item_id=target.pk
        )
        services.dataset_item_update(
            actor=Actor(user=tenant.owner), item=target, expected_output="edited-answer"
        )
        export = services.dataset_export_start(
            actor=Actor(user=tenant.owner), dataset=dataset, version=None, file_format="jsonl"
        )
        services.dataset_export_run(export_id=export.pk)
    blind = client_for(second)
    diff = blind.get(f"{api(tenant)}/datasets/{dataset.pk}/diff/?from=1&to=2")
    assert diff.status_code == 200, diff.content
    assert "edited-answer" not in diff.content.decode()
    assert diff.json()["changed"][0]["hidden"] is True
    download = f"{api(tenant)}/datasets/{dataset.pk}/exports/{export.pk}/download/"
    assert blind.get(download).status_code == 403
    # Someone outside the pool (the auditor) reads both.
    auditor = client_for(tenant.auditor)
    seen = auditor.get(f"{api(tenant)}/datasets/{dataset.pk}/diff/?from=1&to=2")
    assert "edited-answer" in seen.content.decode()
    assert auditor.get(download).status_code == 200
