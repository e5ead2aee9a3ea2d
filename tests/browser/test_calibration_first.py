"""Calibration first, in Chromium: an invitee to a queue that requires a calibration set
signs up and lands on My calibration (not My work), starts the round from there, and,
once every trace is answered (scored with no lead action), goes to My work, where the
queue offers "Start reviewing" and opens an item."""

from __future__ import annotations

import os

import pytest

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import services as project_services
from projects.models import Membership, Role
from review import services
from review.models import Assignment, AssignmentState, QueueItem
from review.quality.models import CalibrationResult
from review.quality.services import calibration
from tests.browser.pages import SHOTS
from tests.factories import PASSWORD, make_tenant
from tests.review import test_calibration as calibration_tests
from tests.review.helpers import add_traces, make_queue

pytestmark = pytest.mark.browser

EMAIL = "dr.okafor@clinic.example.com"


@pytest.fixture
def gated(transactional_db):
    tenant = make_tenant("Gated")
    config = calibration_tests._config(tenant)
    queue = make_queue(tenant, name="Clinical answers", configs=[config], reviewers=[])
    add_traces(tenant, queue, 2)
    cal, traces = calibration_tests._set(tenant, config)
    with tenant_scope(tenant.organization.pk):
        calibration.queue_calibration_set(
            actor=Actor(user=tenant.owner), queue=queue, calibration_set=cal
        )
        _invitation, token = project_services.invitation_create(
            actor=Actor(user=tenant.admin),
            acting_membership=Membership.objects.get(user=tenant.admin),
            email=EMAIL,
            role=Role.REVIEWER,
            queue_ids=[queue.pk],
        )
    return tenant, config, queue, traces, token


def test_an_invitee_lands_on_the_calibration_round_then_reviews(page, live_server, gated):
    tenant, config, queue, traces, token = gated
    org = f"{live_server.url}/orgs/{tenant.organization.slug}"
    page.set_viewport_size({"width": 1300, "height": 900})
    page.goto(f"{live_server.url}/invitations/{token}/")
    page.click("#signup-link")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{org}/calibration/")
    round_card = page.locator("section.calibration-round.to-do")
    assert "0 of 4 traces answered" in round_card.inner_text()
    assert "Passing opens: Clinical answers" in round_card.inner_text()
    page.screenshot(path=os.path.join(SHOTS, "calibration-first.png"), full_page=True)
    start = round_card.get_by_role("button", name="Start the calibration round")
    start.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: "/review/" in u)
    opened = int(page.url.split("/review/")[1].split("/")[0])

    # Every trace answered (as the review page submits them): the round is scored. The
    # page may have leased the next item ahead: those leases are answered too.
    page.wait_for_load_state("networkidle")
    gold = dict(zip([t.pk for t in traces], calibration_tests.GOLD, strict=True))
    with tenant_scope(tenant.organization.pk):
        user = Membership.objects.get(user__email=EMAIL).user
        actor = Actor(user=user)
        lease = Assignment.objects.get(pk=opened)
        round_queue = lease.queue
        while lease is not None:
            item = QueueItem.objects.get(pk=lease.item_id)
            services.assignment_submit(
                actor=actor, assignment_id=lease.pk, values={str(config.pk): gold[item.trace_id]}
            )
            lease = Assignment.objects.filter(
                queue=round_queue, reviewer=user, state=AssignmentState.LEASED
            ).first() or services.queue_claim_next(actor=actor, queue=round_queue)
        assert CalibrationResult.objects.get(reviewer=user).passed

    page.goto(f"{org}/calibration/")
    assert "Passed" in page.locator(".round-result").inner_text()
    page.get_by_role("link", name="Start reviewing on My work").click()
    page.wait_for_url(f"{org}/work/")
    card = page.locator("section.queue-card", has_text="Clinical answers")
    card.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(lambda u: "/review/" in u)
    reviewing = int(page.url.split("/review/")[1].split("/")[0])
    with tenant_scope(tenant.organization.pk):
        # The gated queue's item is open (the page may have leased the next one ahead).
        assert Assignment.objects.get(pk=reviewing).queue_id == queue.pk
