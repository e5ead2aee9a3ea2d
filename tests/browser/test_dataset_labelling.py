"""A lead sends a dataset item to a blind review queue in Chromium; a reviewer labels
it (seeing its input, not its current expected output); the item then shows the new
expected output, who labelled it in which queue, a new version and its history."""

from __future__ import annotations

import pytest

from datasets.models import DatasetItem, DatasetVersion
from hitl import tenancy
from tests.browser.pages import shot, sign_in
from tests.datasets.helpers import expected_config, import_rows, make_dataset
from tests.factories import make_tenant
from tests.review.helpers import make_queue

pytestmark = pytest.mark.browser


@pytest.fixture
def golden(transactional_db):
    tenant = make_tenant("Clinic")
    config = expected_config(
        tenant,
        name="Correct answer",
        description="Write the answer a careful clinician would give.",
        required=True,
    )
    queue = make_queue(tenant, configs=[config], name="Dose answers", overlap=1)
    dataset = make_dataset(tenant, name="Dosing cases")
    import_rows(
        tenant,
        dataset,
        [
            {
                "id": "dose-1",
                "input": "Max paracetamol for a 20 kg child per dose?",
                "expected_output": "old-answer-1 g",
                "metadata": {"source": "ward audit"},
            }
        ],
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        item = DatasetItem.objects.get(dataset=dataset, key="dose-1")
    return tenant, queue, dataset, item


def test_a_reviewer_labels_a_dataset_item_sent_by_the_lead(page, live_server, browser, golden):
    tenant, _queue, dataset, item = golden
    org, project = tenant.organization.slug, tenant.project.slug
    base = f"{live_server.url}/orgs/{org}/projects/{project}"
    item_url = f"{base}/datasets/{dataset.pk}/items/{item.pk}/"

    # 1. The lead sends the item to the queue from its page.
    sign_in(page, live_server, tenant.owner)
    page.goto(item_url)
    assert "Not sent to a review queue yet." in page.inner_text("#labelling")
    page.select_option("#send-queue", label="Dose answers (blind)")
    page.click("#send-to-queue button[type=submit]")
    assert page.get_by_text("Sent 1 item to “Dose answers”.").is_visible()
    assert "In queue “Dose answers”" in page.inner_text("#label-queues")
    shot(page, "labelling-1-sent")
    # Again in bulk from the dataset page: the item is reported as already there.
    page.goto(f"{base}/datasets/{dataset.pk}/")
    page.check(f"#pick-{item.pk}")
    page.click("#send-selected")
    assert page.get_by_text("Sent 0 items to “Dose answers”; 1 already there.").is_visible()
    shot(page, "labelling-1b-bulk")

    # 2. The reviewer starts the queue from My work: the input, not the current answer.
    browser.clear_cookies()
    sign_in(page, live_server, tenant.reviewer)
    page.goto(f"{live_server.url}/orgs/{org}/work/")
    page.click("text=Start reviewing")
    page.wait_for_selector("#dataset-item-target")
    target = page.inner_text("#dataset-item-target")
    assert "Max paracetamol for a 20 kg child per dose?" in target
    assert "dose-1" in target
    assert "old-answer" not in page.content()
    assert page.locator("#dataset-item-expected-hidden").is_visible()
    answer = page.locator("#question-1 textarea")
    answer.fill("15 mg/kg, so 300 mg")
    shot(page, "labelling-2-review")
    page.click("#submit-button")
    # The only item: back to My work, nothing more waiting.
    page.wait_for_url(lambda url: url.endswith(f"/orgs/{org}/work/"))
    with tenancy.tenant_scope(tenant.organization.pk):
        labelled = DatasetItem.objects.get(pk=item.pk)
        assert labelled.expected_output == "15 mg/kg, so 300 mg"
        newest = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
        assert newest.number == 2 and newest.created_by_id == tenant.reviewer.pk

    # 3. The lead reads the item: the new expected output, who labelled it, where, and a
    # second version in its history.
    browser.clear_cookies()
    sign_in(page, live_server, tenant.owner)
    page.goto(item_url)
    assert page.inner_text("#item-expected") == "15 mg/kg, so 300 mg"
    assert f"labelled by {tenant.reviewer.email}" in page.inner_text("#reviewed-item")
    assert "Dose answers" in page.inner_text("#reviewed-item")
    assert "15 mg/kg, so 300 mg" in page.inner_text("#provenance-reviews")
    versions = page.inner_text("#item-versions")
    assert "1\u20131" in versions and "2 onwards" in versions  # an en dash
    history = page.inner_text("#history")
    assert tenant.reviewer.email in history and "old-answer-1 g" in history
    shot(page, "labelling-3-labelled-item")
