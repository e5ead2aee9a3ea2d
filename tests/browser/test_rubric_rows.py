"""A lead writes a three-level question in Chromium: adds an option row and a level row,
moves them up, saves, and reads the reorder in the rubric's versions."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl import tenancy
from review.models import ScoreConfig
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant

pytestmark = pytest.mark.browser


def test_a_lead_adds_and_moves_a_level_and_the_versions_say_so(page, live_server):
    tenant = make_tenant("Clinic")
    org, project = tenant.organization.slug, tenant.project.slug
    sign_in(page, live_server, tenant.admin)
    page.goto(f"{live_server.url}/orgs/{org}/projects/{project}/rubrics/new/")
    page.fill("#r-name", "Answer correct")
    page.select_option("#r-type", "categorical")
    # Two option rows are offered; a third is added.
    page.fill("#o0-label", "Correct")
    page.fill("#o0-value", "2")
    page.fill("#o1-label", "Wrong")
    page.fill("#o1-value", "0")
    page.click("#add-option")
    expect(page.locator("[data-option-row]")).to_have_count(3)
    page.fill("#o2-label", "Partly")
    page.fill("#o2-value", "1")
    page.click("#o2-up")
    expect(page.locator("#o1-label")).to_have_value("Partly")
    for i, (label, definition) in enumerate([("Correct", "Right."), ("Wrong", "Unsafe.")]):
        page.fill(f"#l{i}-label", label)
        page.fill(f"#l{i}-definition", definition)
        page.fill(f"#l{i}-examples", f"{label} example.")
    # Two rows are offered; a third is added, keeping what was typed.
    page.click("#add-level")
    expect(page.locator("[data-level-row]")).to_have_count(3)
    assert page.url.endswith("#level-2")  # the page comes back at the new row
    expect(page.locator("#l1-label")).to_have_value("Wrong")
    page.fill("#l2-label", "Partly")
    page.fill("#l2-definition", "Right but incomplete.")
    page.fill("#l2-examples", "Right dose, no timing.")
    page.click("#l2-up")
    assert page.url.endswith("#level-1")
    expect(page.locator("#l1-label")).to_have_value("Partly")
    expect(page.locator("#l2-label")).to_have_value("Wrong")
    page.click("#save-rubric")
    expect(page.get_by_text("Created the rubric “Answer correct”.")).to_be_visible()
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(name="Answer correct")
    assert [level["label"] for level in config.rubric] == ["Correct", "Partly", "Wrong"]
    assert [option["label"] for option in config.options] == ["Correct", "Partly", "Wrong"]

    # Version 2: "Wrong" moved first; the row buttons work by keyboard too.
    page.focus("#l2-up")
    page.keyboard.press("Enter")
    page.click("#l1-up")
    expect(page.locator("#l0-label")).to_have_value("Wrong")
    page.click("#save-rubric")
    expect(page.locator("#versions")).to_contain_text(
        "Levels reordered: Correct, Partly, Wrong → Wrong, Correct, Partly"
    )
    shot(page, "rubric-rows-reordered")
