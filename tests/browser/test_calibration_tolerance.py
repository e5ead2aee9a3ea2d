"""A lead sets a numeric question's calibration tolerance on the set's page in
Chromium: a negative one is refused with the reason beside the field; a right one is
saved and stated with the gold answers."""

from __future__ import annotations

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review.quality.models import CalibrationSet
from review.quality.services import calibration
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_config, make_trace

pytestmark = pytest.mark.browser


@pytest.fixture
def calibration_set(transactional_db):
    tenant = make_tenant("Tolerance")
    score = make_config(tenant, name="dose score", min_value=0.0, max_value=100.0, step=None)
    trace = make_trace(tenant, external_id="consult-1")
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        row = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name="Dosing", config_ids=[score.pk]
        )
        calibration.gold_answer_set(
            actor=owner, calibration_set=row, trace_id=trace.pk, values={str(score.pk): 73.0}
        )
    return tenant, row, score


def test_the_lead_sets_a_tolerance_on_the_calibration_page(page, live_server, calibration_set):
    tenant, row, score = calibration_set
    sign_in(page, live_server, tenant.admin)
    page.set_viewport_size({"width": 1300, "height": 900})
    page.goto(
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/calibration/{row.pk}/"
    )
    assert "dose score only when equal to gold" in page.inner_text("#tolerance-rule")
    field = page.get_by_label("Tolerance: dose score")

    field.fill("-1")
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator(f"#id_tolerance-{score.pk}-error")
    error.wait_for()
    assert "greater than or equal to 0" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    assert f"id_tolerance-{score.pk}-error" in field.get_attribute("aria-describedby")

    page.get_by_label("Tolerance: dose score").fill("1")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector("text=Saved what passing the set takes.")
    assert "dose score within ± 1 of gold" in page.inner_text("#tolerance-rule")
    assert page.get_by_label("Tolerance: dose score").input_value() == "1"
    assert "(± 1)" in page.inner_text("#gold-table thead")
    shot(page, "calibration-tolerance")
    with tenancy.tenant_scope(tenant.organization.pk):
        assert CalibrationSet.objects.get(pk=row.pk).tolerances == {str(score.pk): 1.0}
