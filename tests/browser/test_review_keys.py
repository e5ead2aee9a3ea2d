"""Review page keys on text already written, in Chromium: `e` continues an explanation
at its end."""

from __future__ import annotations

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review.services import drafts as draft_services
from tests.browser.pages import assignment_on_page, sign_in, tab_to
from tests.browser.test_mishaps import clinic  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


def test_e_puts_the_caret_at_the_end_of_the_explanation(page, live_server, clinic):  # noqa: F811
    tenant, _other, _accuracy, _queue = clinic
    sign_in(page, live_server, tenant.reviewer)
    assert page.url.endswith(f"/orgs/{tenant.organization.slug}/work/")  # reviewers land here
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assignment = int(assignment_on_page(page))
    # An explanation written before (kept as the draft), shown when the item opens again.
    with tenancy.tenant_scope(tenant.organization.pk):
        draft_services.draft_save(
            actor=Actor(user=tenant.reviewer),
            assignment_id=assignment,
            data={"explanation": "The dose is wrong for cirrhosis."},
        )
    page.reload()
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assert page.input_value("#explanation") == "The dose is wrong for cirrhosis."
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.keyboard.type(" Max 2 g a day.")
    assert page.input_value("#explanation") == ("The dose is wrong for cirrhosis. Max 2 g a day.")
