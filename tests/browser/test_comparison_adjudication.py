"""A senior decides a disputed comparison in Chromium from the keyboard: the outputs side
by side with their systems, the reviewers' preferences with the split criterion marked,
what they agreed on already chosen; "b" answers the split criterion, Enter decides, and
the item then shows its decision in words."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl import tenancy
from review.models import Adjudication
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.comparison_helpers import disputed_comparison

pytestmark = pytest.mark.browser


def test_a_senior_decides_a_split_comparison_by_keyboard(page, live_server, transactional_db):
    tenant = make_tenant("Pairs")
    _queue, item, by_label, _reviewers = disputed_comparison(tenant)
    sign_in(page, live_server, tenant.admin)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/adjudication/")
    # The item is named by the systems it compares.
    page.get_by_role("link", name="baseline vs candidate").click()

    page.wait_for_selector("#compare-root")
    expect(page.locator(".compare-output")).to_have_count(2)
    expect(page.locator(".compare-output").first).to_contain_text("baseline")
    expect(page.locator("#preferences-0")).to_contain_text("split")
    expect(page.locator("#preferences-1")).to_contain_text("B (candidate)")
    expect(page.locator("#question-1 input[value=b]")).to_be_checked()
    shot(page, "comparison-adjudication-1-disputed")

    page.keyboard.press("b")  # helpfulness: the second output
    expect(page.locator("#question-0 input[value=b]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Decision saved.")).to_be_visible()
    with tenancy.tenant_scope(tenant.organization.pk):
        decision = Adjudication.objects.get(item=item)
    assert decision.adjudicator_id == tenant.admin.pk
    assert decision.values["preferences"]["helpfulness"]["winner"] == by_label["candidate"]

    page.goto(
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/adjudicate/{item.pk}/"
    )
    expect(page.locator("#decided-0")).to_have_text("helpfulness: B (candidate)")
    shot(page, "comparison-adjudication-2-decided")
