"""Calibration first: an invitee whose invitation names a queue that requires passing a
calibration set gets a round of that set of their own on accepting, lands on it (My
calibration) after signing up, answers it, is scored as soon as every trace is answered
(no lead action), and from then lands on My work where the queue says "Start reviewing"
and a claim is admitted. An invitee to a queue without that requirement lands on My
work; a set without gold answers starts no round."""

from __future__ import annotations

from django.test import Client

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import services as project_services
from projects.models import Membership, Role
from review import services
from review.models import Assignment, QueueItem
from review.quality.models import CalibrationResult, CalibrationRound, CalibrationSet
from review.quality.services import calibration
from tests.factories import PASSWORD
from tests.review import test_calibration as calibration_tests
from tests.review.helpers import add_traces, make_queue


def _my_work(tenant) -> str:
    return f"/orgs/{tenant.organization.slug}/work/"


def _my_calibration(tenant) -> str:
    return f"/orgs/{tenant.organization.slug}/calibration/"


def _invite(tenant, email: str, queue) -> str:
    with tenant_scope(tenant.organization.pk):
        _invitation, token = project_services.invitation_create(
            actor=Actor(user=tenant.admin),
            acting_membership=Membership.objects.get(user=tenant.admin),
            email=email,
            role=Role.REVIEWER,
            queue_ids=[queue.pk],
        )
    return token


def _sign_up(token: str, email: str) -> tuple[Client, str]:
    """Follows the invitation link and signs up; the client and where it landed."""
    browser = Client()
    browser.get(f"/invitations/{token}/")
    signed_up = browser.post(
        "/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    assert signed_up.status_code == 302, signed_up.content.decode()[:2000]
    return browser, signed_up["Location"]


def _gated_queue(tenant, *, gold: bool = True):
    config = calibration_tests._config(tenant)
    queue = make_queue(tenant, name="Clinical answers", configs=[config], reviewers=[])
    add_traces(tenant, queue, 2)
    owner = Actor(user=tenant.owner)
    if gold:
        cal, traces = calibration_tests._set(tenant, config)
    else:
        with tenant_scope(tenant.organization.pk):
            cal = calibration.calibration_set_create(
                actor=owner, project=tenant.project, name="empty", config_ids=[config.pk]
            )
        traces = []
    with tenant_scope(tenant.organization.pk):
        calibration.queue_calibration_set(actor=owner, queue=queue, calibration_set=cal)
    return config, queue, cal, traces


def test_an_invitee_to_a_gated_queue_takes_the_calibration_round_first(
    tenant, django_capture_on_commit_callbacks
):
    config, queue, cal, traces = _gated_queue(tenant)
    email = "dr.lee@clinic.example.com"
    browser, landed = _sign_up(_invite(tenant, email, queue), email)
    assert landed == _my_calibration(tenant)
    page = browser.get(landed).content.decode()
    assert "onboarding" in page and "round 1" in page
    assert "0 of 4 traces answered" in page and "Passing opens: Clinical answers" in page
    assert "Start the calibration round" in page
    with tenant_scope(tenant.organization.pk):
        user = Membership.objects.get(user__email=email).user
        round_ = CalibrationRound.objects.get(calibration_set=cal)
        assert list(round_.queue.reviewers.values_list("membership__user", flat=True)) == [user.pk]
    # The start form opens the round's first trace.
    start = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/queues/"
    opened = browser.post(f"{start}{round_.queue_id}/start/")
    assert opened.status_code == 302 and "/review/" in opened["Location"], opened
    # Until passed, the gated queue refuses a claim and the landing stays the round.
    my_work = browser.get(_my_work(tenant)).content.decode()
    assert "Clinical answers" in my_work

    # Every trace answered (three of four right: 0.75, the bar): scored at once.
    gold = dict(zip([t.pk for t in traces], calibration_tests.GOLD, strict=True))
    answers = dict(gold) | {traces[1].pk: "right"}
    actor = Actor(user=user)
    with tenant_scope(tenant.organization.pk):
        # The trace the start form opened, then the rest, as the review page claims them.
        opened_id = int(opened["Location"].split("/review/")[1].split("/")[0])
        lease = Assignment.objects.get(pk=opened_id)
        while lease is not None:
            item = QueueItem.objects.get(pk=lease.item_id)
            with django_capture_on_commit_callbacks(execute=True):
                services.assignment_submit(
                    actor=actor,
                    assignment_id=lease.pk,
                    values={str(config.pk): answers[item.trace_id]},
                )
            lease = services.queue_claim_next(actor=actor, queue=round_.queue)
        result = CalibrationResult.objects.get(round=round_, reviewer=user)
    assert result.passed and result.accuracy == 0.75
    page = browser.get(_my_calibration(tenant)).content.decode()
    assert "Passed" in page and "Start reviewing on My work" in page
    assert "Start the calibration round" not in page

    # Signing in again: My work, where the gated queue offers "Start reviewing".
    again = Client()
    signed_in = again.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert signed_in["Location"] == _my_work(tenant)
    work = again.get(_my_work(tenant)).content.decode()
    assert "Clinical answers" in work and "Start reviewing" in work
    started = again.post(f"{start}{queue.pk}/start/")
    assert "/review/" in started["Location"]


def test_an_invitee_to_an_ungated_queue_lands_on_my_work(tenant):
    queue = make_queue(tenant, name="Open answers", reviewers=[])
    add_traces(tenant, queue, 1)
    email = "nurse.kim@clinic.example.com"
    browser, landed = _sign_up(_invite(tenant, email, queue), email)
    assert landed == _my_work(tenant)
    assert "Start reviewing" in browser.get(landed).content.decode()
    with tenant_scope(tenant.organization.pk):
        assert not CalibrationRound.objects.exists()


def test_a_set_without_gold_answers_starts_no_round(tenant):
    _config, queue, _cal, _traces = _gated_queue(tenant, gold=False)
    email = "dr.park@clinic.example.com"
    _browser, landed = _sign_up(_invite(tenant, email, queue), email)
    assert landed == _my_work(tenant)
    with tenant_scope(tenant.organization.pk):
        assert CalibrationSet.objects.get().rounds.count() == 0
