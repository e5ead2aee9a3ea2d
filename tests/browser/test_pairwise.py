"""A pairwise queue reviewed in Chromium from the keyboard alone: a, b and = answer the
current question and move to the next, m marks "much better", d shows the words that
differ, digits pick the best of three, Enter submits and opens the next item."""

from __future__ import annotations

import pytest

from hitl import tenancy
from review.comparison.models import Preference
from review.models import Annotation
from tests.browser.pages import SHOTS, sign_in, tab_to
from tests.factories import make_tenant
from tests.review.comparison_helpers import enqueue, make_comparison, make_comparison_queue

pytestmark = pytest.mark.browser


def test_a_pairwise_queue_reviewed_by_keyboard(page, live_server, transactional_db):
    tenant = make_tenant("Pairs")
    queue = make_comparison_queue(
        tenant,
        criteria=("helpfulness", "safety"),
        allow_strength=True,
        name="Answer A/B",
        blind_mode=True,
    )
    first = make_comparison(tenant, input={"question": "Max dose in cirrhosis?"})
    second = make_comparison(tenant, input={"question": "Warfarin in pregnancy?"})
    three = make_comparison(tenant, ("v1", "v2", "v3"), input={"question": "Pick one"})
    enqueue(tenant, queue, [first, second, three])

    sign_in(page, live_server, tenant.reviewer)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")

    # Item 1: left is more helpful, a tie on safety; the differences shown and hidden.
    page.wait_for_selector("#compare-root")
    assert page.locator(".compare-output").count() == 2
    assert page.locator(".compare-output h2 .muted").count() == 0  # blind: systems unnamed
    page.keyboard.press("d")
    page.wait_for_selector(".compare-output ins")
    assert page.get_attribute("#diff-toggle", "aria-pressed") == "true"
    page.screenshot(path=f"{SHOTS}/pairwise-1.png", full_page=True)
    page.keyboard.press("d")
    assert page.locator(".compare-output ins").count() == 0
    page.keyboard.press("a")
    assert page.locator("#question-1.current").count() == 1
    page.keyboard.press("=")
    url = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: u != url)

    # Item 2: right is much more helpful; left is safer.
    page.wait_for_selector("#compare-root")
    page.keyboard.press("b")
    page.keyboard.press("k")  # back to the first question
    page.keyboard.press("m")
    page.keyboard.press("j")
    page.keyboard.press("a")
    url = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: u != url)

    # Item 3: three outputs, digits pick the best; Enter with a question left open
    # stays on the page with the focus on it.
    page.wait_for_selector("#compare-root")
    assert page.locator(".compare-output").count() == 3
    page.keyboard.press("3")
    url = page.url
    page.keyboard.press("Enter")
    assert page.url == url and page.locator("#question-1.current").count() == 1
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: u.endswith("/work/"))
    assert "Nothing is waiting" in page.inner_text("body")

    with tenancy.tenant_scope(tenant.organization.pk):
        assert Annotation.objects.filter(queue=queue).count() == 3
        prefs = {
            (p.comparison_id, p.criterion): p
            for p in Preference.objects.filter(queue=queue).select_related("winner")
        }
    assert len(prefs) == 6
    one = prefs[(first.pk, "helpfulness")]
    assert one.winner_id == one.shown_order[0] and one.strength == 1
    assert prefs[(first.pk, "safety")].winner_id is None
    two = prefs[(second.pk, "helpfulness")]
    assert two.winner_id == two.shown_order[1] and two.strength == 2
    assert prefs[(second.pk, "safety")].winner_id == two.shown_order[0]
    best = prefs[(three.pk, "helpfulness")]
    assert best.winner_id == best.shown_order[2]
    assert prefs[(three.pk, "safety")].winner_id == best.shown_order[0]
