"""A reviewer reviews in Chromium from the keyboard alone; a blind second reviewer sees
nothing of the first one's answers or of the judge's scores."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Role
from review import services
from review.models import Annotation, Assignment
from tests.browser.pages import (
    SHOTS,
    assignment_on_page,
    next_item_held,
    sign_in,
    tab_to,
    wait_for_next_item,
)
from tests.factories import add_member, make_tenant, make_user
from tests.review.helpers import make_config, make_queue, make_span, make_trace
from traces.models import Score

pytestmark = pytest.mark.browser

ACCURACY = {
    "name": "Clinical accuracy",
    "data_type": "categorical",
    "options": [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}],
    "rubric": [
        {"label": "Correct", "definition": "Right for this patient.", "examples": ["2 g/day."]},
        {"label": "Wrong", "definition": "Unsafe advice.", "examples": ["Warfarin in pregnancy."]},
    ],
    "required": True,
}
GROUNDED = {
    "name": "Grounded",
    "data_type": "boolean",
    "rubric": [
        {
            "label": "Yes",
            "definition": "Every claim is in an excerpt.",
            "examples": ["#2 says so."],
        },
        {"label": "No", "definition": "A claim has no support.", "examples": ["Made up."]},
    ],
    "required": True,
}


def _agent_trace(tenant, n: int):
    start = timezone.now() - timedelta(minutes=n)
    trace = make_trace(
        tenant,
        name=f"clinical question {n}",
        input={"question": f"Question {n}: max acetaminophen dose in cirrhosis?"},
        output={"answer": "2 g per day."},
        start_time=start,
        end_time=start + timedelta(seconds=6),
        latency_ms=6000,
    )
    make_span(
        trace,
        external_id="agent",
        kind="agent",
        name="answer question",
        start_time=start,
        end_time=start + timedelta(seconds=6),
    )
    make_span(
        trace,
        external_id="retrieve",
        parent_external_id="agent",
        kind="retrieval",
        name="formulary search",
        start_time=start,
        end_time=start + timedelta(seconds=1),
        output={
            "documents": [
                {
                    "id": "formulary-12",
                    "score": 0.92,
                    "content": "Cirrhosis: at most 2 g acetaminophen daily.",
                }
            ]
        },
    )
    make_span(
        trace,
        external_id="lookup",
        parent_external_id="agent",
        kind="tool",
        name="dose_calculator",
        status="error",
        error_message="timed out after 400 ms",
        start_time=start + timedelta(seconds=1),
        end_time=start + timedelta(seconds=1.4),
    )
    make_span(
        trace,
        external_id="answer",
        parent_external_id="agent",
        kind="llm",
        name="compose answer",
        model="gpt-4o",
        start_time=start + timedelta(seconds=1.5),
        end_time=start + timedelta(seconds=6),
        input=[
            {"role": "system", "content": "Answer from the formulary only."},
            {"role": "user", "content": "Max acetaminophen dose in cirrhosis?"},
        ],
        output=[{"role": "assistant", "content": "2 g per day."}],
    )
    return trace


@pytest.fixture
def clinic(transactional_db):
    tenant = make_tenant("Clinic")
    second = make_user("second-reviewer@clinic.example.com")
    add_member(tenant.organization, second, Role.REVIEWER)
    accuracy = make_config(tenant, **ACCURACY)
    grounded = make_config(tenant, **GROUNDED)
    return tenant, second, accuracy, grounded


def answered_by(assignment: str, seconds: float = 10.0) -> None:
    """Waits until the lease ``assignment`` is no longer held: its answer is stored."""
    deadline = time.monotonic() + seconds
    while Assignment.objects.get(pk=int(assignment)).state == "leased":
        assert time.monotonic() < deadline, f"lease {assignment}: no answer stored"
        time.sleep(0.05)


def test_a_reviewer_reviews_three_items_from_the_keyboard(page, live_server, clinic):
    tenant, _second, accuracy, grounded = clinic
    queue = make_queue(
        tenant, configs=[accuracy, grounded], name="Clinical answers", overlap=1, blind_mode=True
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        for n in range(4):
            trace = _agent_trace(tenant, n)
            services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)

    sign_in(page, live_server, tenant.reviewer)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    assert page.locator(".queue-card .waiting").inner_text() == "4"
    page.screenshot(path=f"{SHOTS}/1-my-work.png", full_page=True)
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")

    # Item 1: move between spans, read the shortcuts, answer, explain, submit.
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    first = assignment_on_page(page)
    assert page.evaluate("document.activeElement.name") == f"q-{accuracy.pk}"
    page.keyboard.press("j")
    page.keyboard.press("j")
    selected = page.locator(".span-row[aria-selected=true]")
    assert selected.get_attribute("data-span") == "lookup"
    assert page.locator("#span-panel-2").is_visible()
    assert "timed out after 400 ms" in page.locator("#span-panel-2").inner_text()
    page.keyboard.press("j")
    assert "Answer from the formulary only." in page.locator("#span-panel-3").inner_text()
    page.keyboard.press("k")
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.screenshot(path=f"{SHOTS}/2-shortcuts.png")
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts").is_visible()
    page.keyboard.press("2")  # Wrong
    page.keyboard.press("Tab")  # to the next question
    page.keyboard.press("1")  # Yes
    page.keyboard.press("r")  # the rubric of the focused question
    assert page.locator("#question-2 details.rubric").get_attribute("open") is not None
    page.keyboard.press("e")
    page.keyboard.type("Dose is safe, but the tool failed: say so.")  # j, k, s, e typed
    assert page.locator(".span-row[aria-selected=true]").get_attribute("data-span") == "lookup"
    assert page.locator("#skip").get_attribute("open") is None
    page.screenshot(path=f"{SHOTS}/3-review.png", full_page=True)
    page.keyboard.press("Control+Enter")

    # Item 2: skip with a reason.
    second = wait_for_next_item(page, first)
    page.keyboard.press("s")
    assert page.evaluate("document.activeElement.id") == "skip-reason"
    page.keyboard.type("Outside my expertise")
    page.keyboard.press("Enter")

    # Item 3: answer both questions, submit from the keyboard.
    third = wait_for_next_item(page, second)
    page.keyboard.press("1")
    page.keyboard.press("Tab")
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    fourth = wait_for_next_item(page, third)
    # The held item shows at once, while the answer before it may still be on its way.
    with tenancy.tenant_scope(tenant.organization.pk):
        answered_by(third)
    page.screenshot(path=f"{SHOTS}/4-next.png", full_page=True)

    with tenancy.tenant_scope(tenant.organization.pk):
        mine = {a.pk: a for a in Assignment.objects.filter(reviewer=tenant.reviewer)}
        annotations = {
            a.assignment_id: a for a in Annotation.objects.filter(reviewer=tenant.reviewer)
        }
    assert [mine[int(x)].state for x in (first, second, third, fourth)] == [
        "submitted",
        "skipped",
        "submitted",
        "leased",
    ]
    assert mine[int(second)].skip_reason == "Outside my expertise"
    assert set(annotations) == {int(first), int(third)}
    assert annotations[int(first)].values == {str(accuracy.pk): "Wrong", str(grounded.pk): True}
    assert annotations[int(first)].explanation == "Dose is safe, but the tool failed: say so."
    assert annotations[int(third)].values == {str(accuracy.pk): "Correct", str(grounded.pk): False}


def test_a_blind_second_reviewer_sees_nothing_of_the_first_review(page, live_server, clinic):
    tenant, second, accuracy, grounded = clinic
    queue = make_queue(
        tenant,
        configs=[accuracy, grounded],
        reviewers=[tenant.reviewer, second],
        name="Blind pair",
        overlap=2,
        blind_mode=True,
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        trace = _agent_trace(tenant, 1)
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        Score.objects.create(
            project=tenant.project,
            trace=trace,
            name="judge-faithfulness",
            data_type="numeric",
            value=0.123,
            source="llm_judge",
            source_name="judge-gpt",
        )
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        services.assignment_submit(
            actor=Actor(user=tenant.reviewer),
            assignment_id=lease.pk,
            values={str(accuracy.pk): "Wrong", str(grounded.pk): False},
            explanation="first-reviewer-marker: the dose is unsafe",
        )

    sign_in(page, live_server, second)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    text = page.locator("body").inner_text()
    page.screenshot(path=f"{SHOTS}/5-blind.png", full_page=True)
    assert "Blind review" in text
    for leaked in ("first-reviewer-marker", tenant.reviewer.email, "judge-faithfulness", "0.123"):
        assert leaked not in text
        assert leaked not in page.content()
    # A 30-minute lease gives no warning yet.
    assert page.locator("#lease-warning").is_hidden()
    # At 200% zoom on a 13" laptop (1280 px wide: 640 CSS px) nothing scrolls sideways.
    page.set_viewport_size({"width": 640, "height": 800})
    page.screenshot(path=f"{SHOTS}/6-zoom-200.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_lease_timer_warns_before_the_lease_ends(page, live_server, clinic):
    tenant, _second, accuracy, grounded = clinic
    queue = make_queue(
        tenant, configs=[accuracy, grounded], name="Short leases", lease_ttl_seconds=60
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        trace = _agent_trace(tenant, 1)
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
    sign_in(page, live_server, tenant.reviewer)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#lease-warning:not([hidden])")
    assert "goes back to the queue" in page.locator("#lease-warning").inner_text()
    assert "warning" in page.get_attribute("#lease", "class")
    page.screenshot(path=f"{SHOTS}/7-lease-warning.png")


def _leases(tenant) -> list[Assignment]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(Assignment.objects.filter(reviewer=tenant.reviewer).order_by("leased_at", "id"))


@pytest.mark.parametrize("held_request", ["claim", "page"])
def test_submitting_before_the_next_item_is_held_opens_it_once(
    page, live_server, clinic, held_request
):
    """The reviewer submits while the item after this one is still being fetched ahead:
    either the claim (POST .../next/) has not reached the server yet, or it has and the
    claimed item's page is still on its way. The submit goes as an ordinary form, the
    next item opens, and when the late request lands nothing is claimed twice, no
    second lease is left behind, and the following submit uses the item held ahead."""
    tenant, _second, accuracy, grounded = clinic
    queue = make_queue(tenant, configs=[accuracy, grounded], name="Race", overlap=1)
    with tenancy.tenant_scope(tenant.organization.pk):
        for n in range(4):
            trace = _agent_trace(tenant, n)
            services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)

    held, holding = [], [True]

    def hold(route) -> None:
        if holding[0]:
            held.append(route)
        else:
            route.continue_()

    page.route("**/next/" if held_request == "claim" else "**/*buffered=1*", hold)

    sign_in(page, live_server, tenant.reviewer)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    first = assignment_on_page(page)
    for _ in range(100):  # the request ahead is on its way, and held
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page asked for nothing ahead"
    assert page.get_attribute("#review-root", "data-next-ready") is None

    page.keyboard.press("1")
    page.keyboard.press("Tab")
    page.keyboard.press("1")
    with page.expect_response(lambda r: r.url.endswith("/submit/")) as submitted:
        page.keyboard.press("Control+Enter")
    assert submitted.value.status == 302  # an ordinary form post: nothing was held
    second = wait_for_next_item(page, first)

    # The late request lands now; the page it was for is gone.
    holding[0] = False
    for route in held:
        route.continue_()
    page.wait_for_selector("#review-root[data-next-ready]", state="attached")
    ahead = page.get_attribute("#review-root", "data-next-ready")
    assert ahead not in (first, second)
    assert assignment_on_page(page) == second

    leases = _leases(tenant)
    assert len({a.item_id for a in leases}) == len(leases)  # no item claimed twice
    live = [str(a.pk) for a in leases if a.state == "leased"]
    assert live == [second, ahead]  # the one shown and one ahead, nothing left behind

    page.keyboard.press("2")
    page.keyboard.press("Tab")
    page.keyboard.press("2")
    with page.expect_response(lambda r: r.url.endswith("/submit/")) as submitted:
        page.keyboard.press("Control+Enter")
    assert submitted.value.status == 204  # the held page is shown, not fetched again
    assert wait_for_next_item(page, second) == ahead
    next_item_held(page)  # the page's last requests are done before the database is reset
    with tenancy.tenant_scope(tenant.organization.pk):
        answers = {
            str(a.assignment_id): a.values
            for a in Annotation.objects.filter(reviewer=tenant.reviewer)
        }
    assert answers == {
        first: {str(accuracy.pk): "Correct", str(grounded.pk): True},
        second: {str(accuracy.pk): "Wrong", str(grounded.pk): False},
    }
