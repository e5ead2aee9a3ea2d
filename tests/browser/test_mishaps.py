"""What reviewers do wrong, in Chromium, from the keyboard: the session ends mid-item,
all cookies go, Ctrl+Enter twice, Back then Forward, two tabs on one item, the lease
runs out. Each ends with the answers stored exactly once, with the reviewer's text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Role
from review import services
from review.models import Annotation, Assignment
from tests.browser.pages import (
    assignment_on_page,
    next_item_held,
    shot,
    sign_in,
    tab_to,
    wait_for_next_item,
)
from tests.factories import PASSWORD, add_member, make_tenant, make_user
from tests.review.helpers import make_config, make_queue, make_trace

pytestmark = pytest.mark.browser

ACCURACY = {
    "name": "Clinical accuracy",
    "data_type": "categorical",
    "options": [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}],
    "required": True,
}


@pytest.fixture
def clinic(transactional_db):
    tenant = make_tenant("Clinic")
    other = make_user("other-reviewer@clinic.example.com")
    add_member(tenant.organization, other, Role.REVIEWER)
    accuracy = make_config(tenant, **ACCURACY)
    queue = make_queue(
        tenant, configs=[accuracy], reviewers=[tenant.reviewer, other], name="Mishaps", overlap=1
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        for n in range(4):
            trace = make_trace(tenant, name=f"question {n}", input={"q": n}, output={"a": n})
            services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
    return tenant, other, accuracy, queue


def _start(page, live_server, tenant) -> str:
    sign_in(page, live_server, tenant.reviewer)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    return assignment_on_page(page)


def _answer(page, key: str, explanation: str) -> None:
    """Picks a level of the first question and writes the explanation, by keyboard."""
    page.keyboard.press(key)
    page.keyboard.press("e")
    page.keyboard.type(explanation)


def _annotations(tenant, page) -> list[Annotation]:
    """The reviewer's stored answers, once the page's requests are done: the fast path
    shows the held next item while its submit is still on its way."""
    page.wait_for_load_state("networkidle")
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(Annotation.objects.filter(reviewer=tenant.reviewer).order_by("pk"))


def _sign_in_here(page, user) -> None:
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def test_the_session_ends_mid_item_and_sign_in_returns_to_it_with_the_answers(
    page, live_server, clinic
):
    tenant, _other, accuracy, _queue = clinic
    first = _start(page, live_server, tenant)
    next_item_held(page)
    item_path = page.evaluate("location.pathname")
    # The session goes (the CSRF cookie stays), then the reviewer writes and submits.
    page.context.clear_cookies(name="sessionid")
    _answer(page, "2", "Written after the session ended.")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: "/accounts/login" in url)
    assert "submit" not in page.url and page.url.endswith("?next=" + item_path)
    assert "Your session ended" in page.locator(".messages").inner_text()
    shot(page, "mishap-1-session-ended")
    _sign_in_here(page, tenant.reviewer)
    assert page.evaluate("location.pathname") == item_path
    page.wait_for_selector("#review-status:not([hidden])")
    assert "restored" in page.locator("#review-status").inner_text()
    assert page.input_value("#explanation") == "Written after the session ended."
    assert page.is_checked(f"input[name=q-{accuracy.pk}][value=Wrong]")
    shot(page, "mishap-1-restored")
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    (annotation,) = _annotations(tenant, page)
    assert annotation.assignment_id == int(first)
    assert annotation.explanation == "Written after the session ended."
    assert annotation.values == {str(accuracy.pk): "Wrong"}


def test_all_cookies_gone_shows_a_sign_in_page_and_the_answers_come_back(page, live_server, clinic):
    tenant, _other, accuracy, _queue = clinic
    first = _start(page, live_server, tenant)
    next_item_held(page)
    page.context.clear_cookies()
    _answer(page, "1", "Cookies went while I wrote this.")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#csrf-failure")
    text = page.locator("body").inner_text()
    assert "CSRF" not in text and "kept in this browser" in text
    shot(page, "mishap-2-cookies-gone")
    page.click("#csrf-sign-in")
    _sign_in_here(page, tenant.reviewer)
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assert assignment_on_page(page) == first
    assert page.input_value("#explanation") == "Cookies went while I wrote this."
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    (annotation,) = _annotations(tenant, page)
    assert annotation.explanation == "Cookies went while I wrote this."
    assert annotation.values == {str(accuracy.pk): "Correct"}


@pytest.mark.parametrize("held", [True, False], ids=["next-held", "plain-post"])
def test_ctrl_enter_twice_submits_once_and_never_into_the_next_item(
    page, live_server, clinic, held
):
    tenant, _other, _accuracy, _queue = clinic
    if not held:
        page.route("**/next/", lambda route: route.abort())
    first = _start(page, live_server, tenant)
    if held:
        next_item_held(page)
    _answer(page, "2", "Only once.")
    page.keyboard.press("Escape")
    page.keyboard.down("Control")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.up("Control")
    second = wait_for_next_item(page, first)
    page.wait_for_timeout(300)  # a second submit, if one went, would have landed by now
    assert assignment_on_page(page) == second
    assert "/submit/" not in page.url and page.url.endswith(f"/review/{second}/")
    assert "do not match" not in page.locator("body").inner_text()
    page.reload()
    assert assignment_on_page(page) == second  # a reload shows the same item, no 405
    shot(page, f"mishap-3-double-submit-{'held' if held else 'plain'}")
    (annotation,) = _annotations(tenant, page)
    assert annotation.assignment_id == int(first)
    assert annotation.explanation == "Only once."
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Assignment.objects.get(pk=second).state == "leased"


def test_ctrl_enter_on_the_next_item_while_the_answer_before_is_on_its_way_is_sent_after_it(
    page, live_server, clinic
):
    tenant, _other, accuracy, _queue = clinic
    held: list = []

    def hold_the_first(route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)  # answered below, once the next item's Ctrl+Enter is pressed

    page.route("**/submit/", hold_the_first)
    first = _start(page, live_server, tenant)
    next_item_held(page)
    _answer(page, "1", "The first, held on its way.")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    second = wait_for_next_item(page, first)  # shown from the page held ahead
    for _ in range(100):  # the route's handler runs while the test waits on the page
        if held:
            break
        page.wait_for_timeout(20)
    assert len(held) == 1
    _answer(page, "2", "The second, pressed before the first was stored.")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_timeout(300)  # a submit that went now would be the second request
    assert len(held) == 1 and assignment_on_page(page) == second
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Annotation.objects.filter(reviewer=tenant.reviewer).exists()
    held[0].continue_()
    third = wait_for_next_item(page, second)
    assert third not in (first, second)
    first_answer, second_answer = _annotations(tenant, page)
    assert first_answer.assignment_id == int(first)
    assert first_answer.explanation == "The first, held on its way."
    assert first_answer.values == {str(accuracy.pk): "Correct"}
    assert second_answer.assignment_id == int(second)
    assert second_answer.explanation == "The second, pressed before the first was stored."
    assert second_answer.values == {str(accuracy.pk): "Wrong"}
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Assignment.objects.get(pk=third).state == "leased"


def test_back_then_forward_shows_the_right_item_each_time(page, live_server, clinic):
    tenant, _other, _accuracy, _queue = clinic
    first = _start(page, live_server, tenant)
    next_item_held(page)
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    second = wait_for_next_item(page, first)
    page.wait_for_selector("#review-status:not([hidden])")  # the server confirmed it
    for attempt in range(3):
        page.go_back()
        page.wait_for_selector("#lease-ended")
        assert page.url.endswith(f"/review/{first}/")
        assert "Already submitted" in page.locator("h1").inner_text()
        if attempt == 0:
            shot(page, "mishap-5-back")
        page.go_forward()
        page.wait_for_selector("#review-root[data-ready]", state="attached")
        assert page.url.endswith(f"/review/{second}/")
        assert assignment_on_page(page) == second
        assert "Already submitted" not in page.locator("body").inner_text()
    assert len(_annotations(tenant, page)) == 1


def test_two_tabs_on_one_item_show_both_answers_and_let_the_reviewer_choose(
    page, live_server, clinic
):
    tenant, _other, accuracy, _queue = clinic
    first = _start(page, live_server, tenant)
    item_url = page.url
    second_tab = page.context.new_page()
    second_tab.goto(item_url)
    second_tab.wait_for_selector("#review-root[data-ready]", state="attached")
    page.bring_to_front()
    _answer(page, "1", "From the first tab.")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    second_tab.bring_to_front()
    second_tab.click(f"input[name=q-{accuracy.pk}][value=Wrong]")
    second_tab.fill("#explanation", "From the second tab: the dose is wrong.")
    second_tab.keyboard.press("Escape")
    second_tab.keyboard.press("Control+Enter")
    second_tab.wait_for_selector("#conflict")
    table = second_tab.locator("#conflict table").inner_text()
    assert "From the first tab." in table and "From the second tab: the dose is wrong." in table
    shot(second_tab, "mishap-4-two-tabs")
    (annotation,) = _annotations(tenant, page)
    assert annotation.explanation == "From the first tab."  # nothing discarded or overwritten
    tab_to(second_tab, "#replace-stored")
    second_tab.keyboard.press("Enter")
    second_tab.wait_for_selector("#review-root[data-ready]", state="attached")
    (annotation,) = _annotations(tenant, page)
    assert annotation.explanation == "From the second tab: the dose is wrong."
    assert annotation.values == {str(accuracy.pk): "Wrong"} and annotation.version == 2
    second_tab.close()


def _lapse(tenant, assignment_id: int) -> None:
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=assignment_id).update(
            expires_at=timezone.now() - timedelta(seconds=5)
        )
        services.leases_expire()


def _lapse_on_page(page) -> None:
    """The page's clock reaches the lease's end (as it would after the lease time)."""
    page.evaluate(
        "document.getElementById('lease').dataset.expiresAt ="
        " new Date(Date.now() - 5000).toISOString()"
    )


def test_a_lapsed_lease_nobody_took_is_renewed_by_working_on(page, live_server, clinic):
    tenant, _other, _accuracy, _queue = clinic
    page.route("**/next/", lambda route: route.abort())
    first = _start(page, live_server, tenant)
    _lapse(tenant, int(first))
    _lapse_on_page(page)
    page.wait_for_selector("#lease.expired")
    assert "ran out" in page.locator("#lease-warning").inner_text()
    assert page.locator("#lease").inner_text() == "Lease expired"
    shot(page, "mishap-6-lapsed")
    _answer(page, "2", "Still here.")
    page.wait_for_function("() => !document.getElementById('lease').classList.contains('expired')")
    assert page.locator("#lease-warning").is_hidden()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Assignment.objects.get(pk=first).state == "leased"
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    (annotation,) = _annotations(tenant, page)
    assert annotation.explanation == "Still here."


def test_a_lapsed_lease_someone_took_keeps_the_notes_to_copy(page, live_server, clinic):
    tenant, other, _accuracy, queue = clinic
    page.route("**/next/", lambda route: route.abort())
    first = _start(page, live_server, tenant)
    _answer(page, "2", "Notes worth keeping.")
    page.wait_for_timeout(1000)  # the draft reaches the server
    _lapse(tenant, int(first))
    with tenancy.tenant_scope(tenant.organization.pk):
        taken = services.queue_claim_next(actor=Actor(user=other), queue=queue)
        assert taken.item_id == Assignment.objects.get(pk=first).item_id
    _lapse_on_page(page)
    page.keyboard.type(" More.")
    page.wait_for_selector("#lease-warning[data-kind=taken]")
    assert (
        "Taken by another reviewer: copy your notes" in page.locator("#lease-warning").inner_text()
    )
    assert page.input_value("#explanation") == "Notes worth keeping. More."
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#taken")
    assert "Notes worth keeping. More." in page.input_value("#draft-notes")
    shot(page, "mishap-7-taken")
    assert _annotations(tenant, page) == []
