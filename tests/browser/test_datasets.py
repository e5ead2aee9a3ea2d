"""A lead curates a dataset in Chromium: promotes a reviewed item and reads its
provenance, imports a file with a bad row (the line reported), diffs the two versions,
exports one (the row turns from "writing" to a download while htmx polls) and
downloads it, and compares two experiments."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from playwright.sync_api import expect

from datasets import services
from datasets.models import Dataset
from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.models import OutboxMessage
from tests.browser.pages import shot, sign_in
from tests.datasets.helpers import make_reviewed_item
from tests.factories import make_tenant

pytestmark = pytest.mark.browser


@pytest.fixture
def clinic(transactional_db):
    tenant = make_tenant("Clinic")
    item, _trace, reviewers = make_reviewed_item(tenant, disagree=True)
    return tenant, item, reviewers


def test_a_lead_curates_a_dataset_in_the_browser(page, live_server, clinic, settings, tmp_path):
    settings.HITL_EXPORT_DIR = str(tmp_path / "exports")
    tenant, item, (first, second) = clinic
    org, project = tenant.organization.slug, tenant.project.slug
    base = f"{live_server.url}/orgs/{org}/projects/{project}"
    sign_in(page, live_server, tenant.owner)

    # 1. A dataset, from the project bar.
    page.goto(f"{base}/traces/")
    page.click("nav.project-nav >> text=Datasets")
    page.fill("#dataset-name", "Dosing cases")
    page.fill("#dataset-description", "Answers about doses the experts corrected.")
    page.click("#dataset-create button[type=submit]")
    assert page.get_by_text("Created the dataset “Dosing cases”.").is_visible()

    # 2. Promote the reviewed item; its page shows where it came from and what the
    # reviewers said.
    page.click("nav.dataset-tabs >> text=Promote…")
    page.click(f"#promote-item-{item.pk}")
    assert "clinical answers" in page.inner_text("#promote-source")
    page.select_option("#promote-dataset", label="Dosing cases")
    page.fill("#promote-reason", "tenfold overdose")
    page.click("#promote-submit")
    assert page.inner_text("#item-key") == "trace:consult-7"
    provenance = page.inner_text("#provenance")
    assert "tenfold overdose" in provenance and "wrong_dose" in provenance
    assert page.locator("#source-trace").get_attribute("href").endswith("/traces/t/consult-7/")
    reviews = page.inner_text("#provenance-reviews")
    assert first.email in reviews and second.email in reviews
    assert "Overdose: fails." in reviews  # the decision's explanation
    assert "every 8 hours" in page.inner_text("#item-expected")
    shot(page, "1-promoted-item")

    # Promoting it again reports the item instead of duplicating it.
    page.go_back()
    page.click("#promote-submit")
    assert page.locator("#already-there").is_visible()
    assert page.inner_text("#existing-item") == "trace:consult-7"

    # 3. Import a file with a bad second line: the good rows land, the line is named.
    upload = tmp_path / "cases.jsonl"
    upload.write_bytes(
        b'{"id": "dose-1", "input": "Paracetamol, 20 kg child?", "expected_output": "300 mg"}\n'
        b'{"id": "dose-2", "input": "broken\n'
        b'{"id": "dose-3", "input": "Max ibuprofen per day?", "expected_output": "1200 mg"}\n'
    )
    page.click("nav.project-nav >> text=Datasets")
    page.click("#dataset-table >> text=Dosing cases")
    page.click("nav.dataset-tabs >> text=Import")
    page.set_input_files("#import-file", str(upload))
    page.click("#import-submit")
    summary = page.inner_text("#import-summary")
    assert "3 rows read" in summary and "2 added" in summary and "1 rejected" in summary
    bad_row = page.locator("#import-errors tbody tr")
    assert bad_row.count() == 1 and bad_row.locator("td").first.inner_text() == "2"
    shot(page, "2-import-report")

    # 4. The import made version 2: the diff of 1 and 2 lists the two new items.
    page.click("nav.dataset-tabs >> text=Versions")
    page.select_option("#diff-from", "1")
    page.select_option("#diff-to", "2")
    page.click("#show-diff")
    counts = page.inner_text("#diff-counts")
    assert "2 added" in counts and "0 removed" in counts and "0 changed" in counts
    assert page.inner_text("#diff-added").split() == ["dose-1", "dose-3"]
    shot(page, "3-diff")

    # 5. Export version 2 as JSONL: the row polls until the worker is done.
    page.click("nav.dataset-tabs >> text=Export")
    page.select_option("#export-version", "2")
    page.select_option("#export-format", "jsonl")
    page.click("#export-submit")
    row = page.locator("#export-table tbody tr").first
    assert "writing" in row.inner_text()
    with tenancy.tenant_scope(tenant.organization.pk):
        message = OutboxMessage.objects.filter(task=services.EXPORT_TASK).latest("id")
    outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk)
    download_link = page.locator("#export-table a.download").first
    download_link.wait_for(state="visible", timeout=10000)  # htmx swapped the row
    shot(page, "4-export-done")
    with page.expect_download() as info:
        download_link.click()
    path = Path(info.value.path())
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["id"] for r in records] == ["dose-1", "dose-3", "trace:consult-7"]
    assert records[2]["failure_reason"] == "tenfold overdose"

    # 6. Two experiments on version 2, compared.
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        dataset = Dataset.objects.get(name="Dosing cases")
        for name, scores in (("prompt v1", (1.0, 1.0, 0.0)), ("prompt v2", (0.0, 1.0, 1.0))):
            experiment = services.experiment_create(actor=owner, dataset=dataset, name=name)
            services.experiment_results_post(
                actor=owner,
                experiment=experiment,
                results=[
                    {"id": key, "output": f"{name} answer", "scores": {"correct": score}}
                    for key, score in zip(
                        ["dose-1", "dose-3", "trace:consult-7"], scores, strict=True
                    )
                ],
            )
            services.experiment_finish(actor=owner, experiment=experiment)
    page.click("nav.project-nav >> text=Experiments")
    page.click("#experiment-table >> text=prompt v2")
    page.select_option("#compare-baseline", label=page.locator(
        "#compare-baseline option", has_text="prompt v1"
    ).inner_text())  # fmt: skip
    page.click("#compare-submit")
    counts = page.inner_text("#compare-counts")
    assert "1 regressed" in counts and "1 improved" in counts and "1 unchanged" in counts
    assert page.inner_text("#delta-table").count("correct") == 1
    # Item by item: the changed ones, the two outputs side by side, the words that differ marked.
    items = page.locator("#compare-items > li")
    expect(items).to_have_count(2)
    regressed = page.locator("#compare-items > li.regressed")
    expect(regressed.locator(".key")).to_have_text("dose-1")
    expect(regressed.locator(".metric-change.worse")).to_contain_text("correct 1.000 → 0.000")
    expect(regressed.locator(".compare-side").first.locator("del")).to_have_text("v1")
    expect(regressed.locator(".compare-side").last.locator("ins")).to_have_text("v2")
    shot(page, "5-compare")
    page.click("#show-regressed")
    expect(items).to_have_count(1)
    expect(page.locator("#compare-items .key")).to_have_text("dose-1")
    shot(page, "5-compare-regressions")
