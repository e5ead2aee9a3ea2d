"""From the invitation email to a decision, in Chromium: an invited SME accepts, signs
up, and reviews three items from the keyboard alone (one skipped, a comment on a span);
a second reviewer's blind view shows nothing of the first one's answers until they
submit, then shows what the first said; a senior decides the disputed item from the
keyboard. No mouse call anywhere in this test."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.models import OutboxMessage
from projects import services as project_services
from projects.models import Membership, Role
from review import services
from review.models import Adjudication, Annotation, Assignment, Comment, QueueItem
from tests.browser.pages import SHOTS, next_item_held, sign_in, tab_to, wait_for_next_item
from tests.browser.test_review import ACCURACY, GROUNDED
from tests.factories import PASSWORD, add_member, make_tenant, make_user
from tests.review.helpers import make_config, make_queue, make_span, make_trace

pytestmark = pytest.mark.browser

INVITEE = "dr.okafor@clinic.example.com"


def _trace(tenant, n: int):
    start = timezone.now() - timedelta(minutes=10 - n)
    trace = make_trace(
        tenant,
        name=f"clinical question {n}",
        input={"question": f"Question {n}: max acetaminophen dose in cirrhosis?"},
        output={"answer": "2 g per day."},
        start_time=start,
        end_time=start + timedelta(seconds=3),
        latency_ms=3000,
    )
    make_span(
        trace,
        external_id="lookup",
        kind="tool",
        name="dose_calculator",
        status="error",
        error_message="timed out after 400 ms",
        start_time=start,
        end_time=start + timedelta(seconds=0.4),
    )
    make_span(
        trace,
        external_id="answer",
        kind="llm",
        name="compose answer",
        start_time=start + timedelta(seconds=0.5),
        end_time=start + timedelta(seconds=3),
        output=[
            {
                "role": "assistant",
                "content": "## Dose\n\n**At most 2 g** a day. <script>alert(1)</script>\n"
                "![chart](https://tracker.example/pixel.png)",
            }
        ],
    )
    return trace


def _invitation_link(tenant, queue) -> str:
    """Invites the SME to review in ``queue`` and delivers the outbox message as a
    worker would; the link is read from the email, which names the queue."""
    with tenancy.tenant_scope(tenant.organization.pk):
        project_services.invitation_create(
            actor=Actor(user=tenant.admin),
            acting_membership=Membership.objects.get(user=tenant.admin),
            email=INVITEE,
            role=Role.REVIEWER,
            queue_ids=[queue.pk],
        )
        message = OutboxMessage.objects.get(task="projects.email_invitation")
    assert outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk)
    [email] = [m for m in mail.outbox if m.to == [INVITEE]]
    assert f"You will review in:\n- {queue.name}" in email.body
    return re.search(r"https?://\S+/invitations/\S+/", email.body).group(0)


def test_from_invitation_to_a_decision_by_keyboard(browser, page, live_server, transactional_db):
    tenant = make_tenant("Clinic")
    second = make_user("second-reviewer@clinic.example.com")
    add_member(tenant.organization, second, Role.REVIEWER)
    accuracy = make_config(tenant, **ACCURACY)
    grounded = make_config(tenant, **GROUNDED)
    senior = tenant.reviewer
    queue = make_queue(
        tenant,
        configs=[accuracy, grounded],
        reviewers=[second, senior],
        seniors=(senior,),
        name="Clinical answers",
        overlap=2,
        blind_mode=True,
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        for n in range(4):
            services.queue_item_add(
                actor=Actor(user=tenant.owner), queue=queue, trace_id=_trace(tenant, n).pk
            )

    # --- the invitation, from the email, accepted from the keyboard ---------------------
    link = urlsplit(_invitation_link(tenant, queue))
    page.goto(f"{live_server.url}{link.path}")
    assert "Clinical answers" in page.inner_text("#invitation-queues")
    page.screenshot(path=f"{SHOTS}/10-invitation.png")
    tab_to(page, "#signup-link")
    page.keyboard.press("Enter")
    page.wait_for_selector("input[name=password1]")
    assert page.input_value("input[name=email]") == INVITEE
    tab_to(page, "input[name=password1]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.screenshot(path=f"{SHOTS}/11-sign-up.png")
    page.keyboard.press("Enter")
    # In the queue's pool from the invitation alone (nobody acts after sending it), the
    # new reviewer lands on My work.
    page.wait_for_url(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")

    # --- My work, then three items from the keyboard -------------------------------------
    assert page.locator(".queue-card .waiting").inner_text() == "4"
    page.screenshot(path=f"{SHOTS}/12-my-work.png", full_page=True)
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    first = page.get_attribute("#review-root", "data-assignment")
    # Markdown in the answer is rendered, its script and remote image are not.
    page.keyboard.press("j")
    answer_panel = page.locator("#span-panel-1")
    assert answer_panel.locator(".markdown strong").inner_text() == "At most 2 g"
    assert answer_panel.locator("script, img").count() == 0
    assert "[image: chart]" in answer_panel.inner_text()
    # A comment on the failing span: focus the span list, move to it, `c`, write, send.
    page.keyboard.press("f")
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.dataset.span") == "lookup"
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "span-comment-0"
    page.keyboard.type("The calculator timed out; the answer did not use it.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#span-comments-0 .comments li")
    page.keyboard.press("Escape")
    # Back to the form: answer both questions, explain, submit.
    tab_to(page, f"input[name=q-{accuracy.pk}]")
    page.keyboard.press("2")  # Wrong
    page.keyboard.press("Tab")
    page.keyboard.press("1")  # Yes
    page.keyboard.press("e")
    page.keyboard.type("Unsafe without the liver adjustment.")
    page.screenshot(path=f"{SHOTS}/13-first-item.png", full_page=True)
    held = next_item_held(page)
    with page.expect_response(lambda r: r.url.endswith("/submit/")) as submitted:
        page.keyboard.press("Control+Enter")
    assert submitted.value.status == 204  # the held page is shown, not fetched again
    second_item = wait_for_next_item(page, first)
    assert second_item == held
    page.wait_for_selector("#review-status:not([hidden])")
    assert page.locator("#review-status").inner_text() == "Saved. Here is the next item."
    assert not page.locator("#previous-item").is_hidden()

    # Item 2: skip with a reason.
    next_item_held(page)
    page.keyboard.press("s")
    page.keyboard.type("Outside my expertise")
    page.keyboard.press("Enter")
    third = wait_for_next_item(page, second_item)

    # Item 3: answer and submit (once the item after it is held, as a reviewer who reads
    # for a few seconds would find it).
    next_item_held(page)
    page.keyboard.press("1")
    page.keyboard.press("Tab")
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    fourth = wait_for_next_item(page, third)
    page.screenshot(path=f"{SHOTS}/14-fourth-item.png", full_page=True)
    # The previous item is my last answer, with what others said (nobody yet).
    page.keyboard.press("p")
    page.wait_for_selector("input[name=version]", state="attached")
    page.screenshot(path=f"{SHOTS}/15-previous-item.png", full_page=True)

    with tenancy.tenant_scope(tenant.organization.pk):
        invitee = Membership.objects.get(user__email=INVITEE).user
        states = {a.pk: a.state for a in Assignment.objects.filter(reviewer=invitee)}
        answers = {a.assignment_id: a for a in Annotation.objects.filter(reviewer=invitee)}
        span_comment = Comment.objects.get(author=invitee)
    assert [states[int(x)] for x in (first, second_item, third, fourth)] == [
        "submitted",
        "skipped",
        "submitted",
        "leased",
    ]
    assert len(states) == 4  # nothing claimed twice, nothing left behind
    assert answers[int(first)].values == {str(accuracy.pk): "Wrong", str(grounded.pk): True}
    assert answers[int(third)].values == {str(accuracy.pk): "Correct", str(grounded.pk): False}
    assert span_comment.span.external_id == "lookup"
    assert span_comment.item_id == answers[int(first)].item_id

    # --- the second reviewer, blind, then what others said -------------------------------
    browser.clear_cookies()
    sign_in(page, live_server, second)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "button.start-reviewing")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    page.screenshot(path=f"{SHOTS}/16-second-blind.png", full_page=True)
    content = page.content()
    for leaked in (INVITEE, "Unsafe without the liver adjustment.", "calculator timed out"):
        assert leaked not in content
    assert "Blind review" in page.locator("body").inner_text()
    page.keyboard.press("1")  # Correct: disagrees with the invitee
    page.keyboard.press("Tab")
    page.keyboard.press("1")
    page.keyboard.press("e")
    page.keyboard.type("The formulary allows 2 g.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#previous-item:not([hidden])")
    page.keyboard.press("p")
    page.wait_for_selector("#other-reviews")
    others = page.locator("#other-reviews").inner_text()
    assert INVITEE in others and "Unsafe without the liver adjustment." in others
    page.screenshot(path=f"{SHOTS}/17-what-others-said.png", full_page=True)

    # --- the senior decides from the keyboard --------------------------------------------
    with tenancy.tenant_scope(tenant.organization.pk):
        disputed = QueueItem.objects.get(pk=answers[int(first)].item_id)
    assert disputed.status == "needs_adjudication"
    browser.clear_cookies()
    sign_in(page, live_server, senior)
    page.goto(f"{live_server.url}/orgs/{tenant.organization.slug}/work/")
    tab_to(page, "#adjudication-link")
    page.keyboard.press("Enter")
    page.wait_for_selector("#adjudication-list")
    tab_to(page, "#adjudication-list a")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assert page.locator(f"#row-{accuracy.pk}.disagree").is_visible()
    assert page.locator(f"#row-{grounded.pk}.disagree").count() == 0
    assert "Unsafe without the liver adjustment." in page.locator("#reviews").inner_text()
    assert "The formulary allows 2 g." in page.locator("#reviews").inner_text()
    page.screenshot(path=f"{SHOTS}/18-adjudicate.png", full_page=True)
    page.keyboard.press("2")  # Wrong
    page.keyboard.press("Tab")
    page.keyboard.press("1")  # Yes
    page.keyboard.press("e")
    page.keyboard.type("Cirrhosis needs the lower dose stated.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Decision saved")
    page.screenshot(path=f"{SHOTS}/19-decided.png", full_page=True)
    with tenancy.tenant_scope(tenant.organization.pk):
        decision = Adjudication.objects.get(item=disputed)
        disputed.refresh_from_db()
    assert decision.adjudicator == senior
    assert decision.values == {str(accuracy.pk): "Wrong", str(grounded.pk): True}
    assert decision.explanation == "Cirrhosis needs the lower dose stated."
    assert str(accuracy.pk) in decision.disagreement
    assert disputed.status == "adjudicated"
