"""A conversation reviewed turn by turn in Chromium: the reviewer rates two turns,
comments on one (the page comes back with everything typed still there), submits, and
the lead's page of the review shows the ratings, after a reload too; the page keeps to
its Content-Security-Policy all the while."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, Comment
from tests.browser.pages import shot, sign_in
from tests.factories import make_tenant
from tests.review.thread_helpers import make_conversations
from traces.models import Score

pytestmark = pytest.mark.browser


def test_a_reviewer_rates_turns_comments_on_one_and_the_lead_reads_them(page, live_server):
    tenant = make_tenant("Turns")
    talk = make_conversations(tenant, reviewers=1, include_expected_output=True)
    reviewer = talk.reviewers[0]
    first, second, _third = talk.turns[0]
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=reviewer), queue=talk.queue)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    sign_in(page, live_server, reviewer)
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "assignment_pk": lease.pk,
    }
    page.goto(live_server.url + reverse("review-item", kwargs=kwargs))
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assert page.inner_text("label[for=expected-output]") == "Expected final outcome"

    # The whole conversation's answer from the keyboard, then turn by turn.
    page.keyboard.press("2")  # Unresolved
    page.check("#turn-rating-1 input[value=good]")
    page.check("#turn-rating-2 input[value=bad]")
    page.fill("#turn-note-2", "Five grams is ten times the adult dose.")
    page.click("#turn-2 .turn-comment summary")
    page.fill("#turn-comment-2", f"@{tenant.owner.email} should this go to the safety set?")
    shot(page, "thread-review-before-comment")
    page.press("#turn-comment-2", "Control+Enter")  # sends that comment, not the review
    page.wait_for_selector("#turn-comments-2")
    page.wait_for_selector("#review-root[data-ready]", state="attached")

    # Back on the item: the comment under its turn, everything typed still there.
    assert "should this go to the safety set?" in page.inner_text("#turn-comments-2")
    assert page.is_checked("#turn-rating-1 input[value=good]")
    assert page.is_checked("#turn-rating-2 input[value=bad]")
    assert page.input_value("#turn-note-2") == "Five grams is ten times the adult dose."
    assert page.is_checked("#question-1 input[value=Unresolved]")
    assert page.input_value("#turn-comment-2") == ""
    shot(page, "thread-review-after-comment")

    page.click("#submit-button")
    page.wait_for_url(lambda url: f"/review/{lease.pk}/" not in url)
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation = Annotation.objects.get()
        assert annotation.turns == {
            first.external_id: {"turn": 1, "rating": "good"},
            second.external_id: {
                "turn": 2, "rating": "bad", "note": "Five grams is ten times the adult dose.",
            },
        }  # fmt: skip
        assert Score.objects.filter(name="turn_rating").count() == 2
        (comment,) = Comment.objects.all()
        assert comment.trace_id == second.pk and comment.mentions == [tenant.owner.pk]

    # The lead reads the review turn by turn, and again after a reload.
    page.context.clear_cookies()
    sign_in(page, live_server, tenant.owner)
    lead_url = reverse(
        "lead-annotation",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "annotation_pk": annotation.pk,
        },
    )
    page.goto(live_server.url + lead_url)
    for _ in range(2):
        rows = page.locator("#turn-ratings tbody tr")
        assert rows.count() == 2
        assert "Turn 1" in rows.nth(0).inner_text() and "good" in rows.nth(0).inner_text()
        assert "bad" in rows.nth(1).inner_text()
        assert "ten times the adult dose" in rows.nth(1).inner_text()
        page.reload()
    shot(page, "thread-review-lead")
    assert violations == []
