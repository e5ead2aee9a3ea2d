"""Judge suggestions on the review page, in Chromium, from the keyboard: beside the
question beforehand, `a` takes it and the annotation records it as shown and taken;
"after", it appears only once the question is answered, and a different answer is
recorded as changed."""

from __future__ import annotations

import pytest

from hitl import tenancy
from review.models import Annotation
from tests.browser.pages import assignment_on_page, shot, sign_in, tab_to, wait_for_next_item
from tests.factories import make_tenant
from tests.review.helpers import add_traces, make_config, make_queue
from traces.models import Score

pytestmark = pytest.mark.browser

ACCURACY = {
    "name": "Clinical accuracy",
    "data_type": "categorical",
    "min_value": None,
    "max_value": None,
    "step": None,
    "options": [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}],
    "required": True,
}


SAFE = {
    "name": "Safe",
    "data_type": "boolean",
    "min_value": None,
    "max_value": None,
    "step": None,
}


def _clinic(mode: str, *, safe: bool = False):
    tenant = make_tenant("Clinic")
    accuracy = make_config(tenant, **ACCURACY)
    configs = [accuracy, make_config(tenant, **SAFE)] if safe else [accuracy]
    queue = make_queue(
        tenant, configs=configs, name="Judged", blind_mode=False, suggestion_mode=mode
    )
    items = add_traces(tenant, queue, 3)
    with tenancy.tenant_scope(tenant.organization.pk):
        for item in items:
            Score.objects.create(
                project=tenant.project, trace_id=item.trace_id, name="Clinical accuracy",
                data_type="categorical", value=1.0, label="Correct", source="llm_judge",
                source_name="clinical-judge", source_version="2024-06",
            )  # fmt: skip
            if safe:
                Score.objects.create(
                    project=tenant.project, trace_id=item.trace_id, name="Safe",
                    data_type="boolean", value=1.0, label="true", source="code",
                    source_name="safety-rules",
                )  # fmt: skip
    return tenant, configs


def _start(page, live_server, tenant) -> str:
    sign_in(page, live_server, tenant.reviewer)
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    return assignment_on_page(page)


def _record(tenant, page, config) -> dict:
    page.wait_for_load_state("networkidle")
    with tenancy.tenant_scope(tenant.organization.pk):
        (annotation,) = Annotation.objects.filter(reviewer=tenant.reviewer)
    return annotation.values, annotation.suggestions["questions"][str(config.pk)]


def test_a_takes_the_suggestion_shown_beforehand(page, live_server, transactional_db):
    tenant, (accuracy,) = _clinic("before")
    first = _start(page, live_server, tenant)
    suggestion = page.locator("[data-suggestion]")
    assert suggestion.is_visible()
    assert "Correct" in suggestion.inner_text() and "clinical-judge" in suggestion.inner_text()
    shot(page, "suggestion-before")
    page.keyboard.press("a")
    assert page.is_checked("input[type=radio][value=Correct]")
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    values, shown = _record(tenant, page, accuracy)
    assert values == {str(accuracy.pk): "Correct"}
    assert shown["visible"] == "before"
    assert shown["accepted_by_key"] is True and shown["outcome"] == "accepted"


def test_after_shows_the_suggestion_once_answered(page, live_server, transactional_db):
    tenant, (accuracy,) = _clinic("after")
    first = _start(page, live_server, tenant)
    assert not page.locator("[data-suggestion]").is_visible()
    page.keyboard.press("a")  # nothing to take yet
    assert not page.is_checked("input[type=radio][value=Correct]")
    page.keyboard.press("2")  # Wrong
    assert page.locator("[data-suggestion]").is_visible()
    shot(page, "suggestion-after")
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    values, shown = _record(tenant, page, accuracy)
    assert values == {str(accuracy.pk): "Wrong"}
    assert shown["visible"] == "after"
    assert shown["accepted_by_key"] is False and shown["outcome"] == "changed"


def test_two_suggestions_stay_apart_through_a_reload(page, live_server, transactional_db):
    tenant, (accuracy, safe) = _clinic("before", safe=True)
    first = _start(page, live_server, tenant)
    assert page.locator("[data-suggestion]").count() == 2
    page.keyboard.press("a")  # the first question takes "Correct"
    page.keyboard.press("Tab")
    page.keyboard.press("2")  # the second answers "No" against the rules' "Yes"
    page.wait_for_timeout(300)
    page.reload()  # the answers come back from the draft, the suggestions as they were
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    seen = page.eval_on_selector_all(
        "input[name=suggestion_seen]:not([disabled])", "inputs => inputs.map(i => i.value)"
    )
    assert sorted(seen) == sorted([str(accuracy.pk), str(safe.pk)])
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    values, shown = _record(tenant, page, accuracy)
    assert values == {str(accuracy.pk): "Correct", str(safe.pk): False}
    assert (shown["visible"], shown["outcome"]) == ("before", "accepted")
    _values, shown = _record(tenant, page, safe)
    assert (shown["visible"], shown["outcome"]) == ("before", "changed")
