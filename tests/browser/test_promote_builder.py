"""A lead promotes the traces a filter matches into a dataset, building the filter with
the explorer's condition rows in Chromium: the explorer's link shows as a row, a
second row is added, the count and the chips follow, and the promotion records the
filter in words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from datasets.models import DatasetItem
from hitl import tenancy
from tests.browser.pages import shot, sign_in
from tests.datasets.helpers import make_dataset
from tests.factories import make_tenant
from tests.review.helpers import make_trace
from tests.traces.read_builders import make_score

pytestmark = pytest.mark.browser


def test_a_lead_promotes_what_the_rows_match(page, live_server, transactional_db):
    tenant = make_tenant("Shop")
    now = timezone.now()
    for n in range(4):
        trace = make_trace(
            tenant,
            external_id=f"order-{n}",
            status="error" if n % 2 == 0 else "ok",
            start_time=now - timedelta(minutes=n),
        )
        make_score(trace, "faithfulness", 0.2 if n < 2 else 0.9)
    dataset = make_dataset(tenant, name="Refund cases")
    base = f"{live_server.url}/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    sign_in(page, live_server, tenant.admin)
    page.goto(f"{base}/datasets/promote/matching/?filter=status%3Derror")
    first = page.locator("#conditions .condition").first
    expect(first.locator(".cond-field")).to_have_value("status")
    expect(page.locator("#matched-count")).to_have_text("2")

    page.click("#add-condition")
    last = page.locator("#conditions .condition").last
    last.locator(".cond-field").select_option("score")
    last.locator("select.cond-key").select_option("faithfulness")
    last.locator("select.cond-op").select_option("lt")
    last.locator(".cond-value").fill("0.5")
    page.click("#count-matches")
    expect(page.locator("#matched-count")).to_have_text("1")
    expect(page.locator("#promote-chips")).to_contain_text("faithfulness < 0.5")
    expect(page.locator("#promote-filter")).to_have_text("faithfulness < 0.5 and status is error")
    shot(page, "promote-builder-1-counted")

    page.select_option("#promote-dataset", label="Refund cases")
    page.click("#promote-submit")
    expect(page.get_by_text("Promoted 1 matching traces into “Refund cases”")).to_be_visible()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert list(DatasetItem.objects.filter(dataset=dataset).values_list("key", flat=True)) == [
            "trace:order-0"
        ]
        message = dataset.versions.get().message
    assert message == "promote traces matching faithfulness < 0.5 and status is error"
