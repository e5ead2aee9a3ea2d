"""A lead runs the programme in Chromium: invites a reviewer, builds a rubric and a queue
through the forms, fills the queue from a trace filter (the matched count shown first),
watches the board move as the reviewer works, and revokes an API key."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.models import OutboxMessage
from projects import services as project_services
from review import services
from review.models import QueueItem, ReviewQueue, ScoreConfig
from tests.factories import PASSWORD, make_tenant, make_user
from tests.review.helpers import make_span, make_trace

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("HITL_SCREENSHOTS") or tempfile.mkdtemp(prefix="hitl-lead-shots-")
LINK = re.compile(r"/invitations/(?P<token>[^/\s]+)/")
SME = "dr.sme@clinic.example.com"


@pytest.fixture
def clinic(transactional_db):
    tenant = make_tenant("Clinic")
    now = timezone.now()
    for n in range(7):
        failing = n % 2 == 0
        trace = make_trace(
            tenant,
            name=f"{'billing question' if failing else 'dosage question'} {n}",
            status="error" if failing else "ok",
            tags=["billing"] if failing else ["clinical"],
            input={"question": f"Question {n}"},
            output={"answer": f"Answer {n}"},
            start_time=now - timedelta(minutes=n),
            end_time=now - timedelta(minutes=n) + timedelta(seconds=2),
            latency_ms=2000,
        )
        make_span(trace, external_id=f"llm-{n}", kind="llm", name="compose", model="gpt-4o")
    return tenant


def _sign_in(page, live_server, user) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def _shot(page, name: str) -> None:
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def _deliver_invitation_email(tenant) -> str:
    """Runs the invitation's outbox message as the worker does; returns the link's token."""
    with tenancy.tenant_scope(tenant.organization.pk):
        message = OutboxMessage.objects.filter(task="projects.email_invitation").latest("id")
    outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk)
    match = LINK.search(mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group("token")


def test_a_lead_runs_the_programme_in_the_browser(page, live_server, clinic):
    tenant = clinic
    org, project = tenant.organization.slug, tenant.project.slug
    base = f"{live_server.url}/orgs/{org}/projects/{project}"
    _sign_in(page, live_server, tenant.admin)

    # 1. Invite a reviewer; the invitation shows as pending, then accepted.
    page.goto(f"{live_server.url}/orgs/{org}/")
    page.click("#settings-link")
    page.fill("#invite-email", SME)
    page.select_option("#invite-role", "reviewer")
    page.click("#send-invitation")
    assert page.get_by_text(f"Invitation sent to {SME}.").is_visible()
    row = page.locator("#invitations tr", has_text=SME)
    assert row.locator(".badge").inner_text() == "pending"
    _shot(page, "1-invitation-sent")
    token = _deliver_invitation_email(tenant)
    sme = make_user(SME)
    project_services.invitation_accept(user=sme, raw_token=token)
    page.reload()
    assert page.locator("#invitations tr", has_text=SME).locator(".badge").inner_text() == (
        "accepted"
    )
    assert page.locator("#members", has_text=SME).is_visible()

    # 2. A rubric with two levels, each with a definition and an example.
    page.goto(f"{base}/rubrics/")
    page.click("#new-rubric")
    page.fill("#r-name", "Billing answer correct")
    page.select_option("#r-type", "categorical")
    page.fill("#r-options", "Correct = 1\nWrong = 0")
    page.check("#r-required")
    page.fill("#l0-label", "Correct")
    page.fill("#l0-definition", "States the right amount and where it comes from.")
    page.fill("#l0-examples", "Your copay is $20, per plan section 4.")
    page.fill("#l1-label", "Wrong")
    page.fill("#l1-definition", "A wrong amount, or none.")
    page.fill("#l1-examples", "It is probably free.")
    page.click("#save-rubric")
    assert page.get_by_text("Created the rubric “Billing answer correct”.").is_visible()
    _shot(page, "2-rubric")

    # 3. A queue with that question and the new reviewer in its pool.
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(name="Billing answer correct")
    page.goto(f"{base}/queues/")
    page.click("#new-queue")
    page.fill("#q-name", "Billing errors")
    page.fill("#q-overlap", "1")
    page.check(f"#q-{config.pk}")
    page.locator("#pool tr", has_text=SME).locator("input[type=checkbox]").first.check()
    _shot(page, "3-queue-form")
    page.click("#save-queue")
    page.wait_for_url(re.compile(r".*/board/$"))
    assert page.get_by_text("Created the queue “Billing errors”.").is_visible()

    # 4. Filter the traces, see the count across all pages, add them.
    page.goto(f"{base}/traces/")
    page.select_option("#f-status", "error")
    page.fill("#f-tags", "billing")
    page.click("#apply-filter")
    assert page.locator("#trace-table tbody tr").count() == 4
    _shot(page, "4-explorer")
    page.get_by_role("link", name="Add all matching to a queue…").click()
    assert page.locator("#matched-count").inner_text() == "4"
    _shot(page, "5-bulk-add-confirm")
    page.select_option("#bulk-queue", label="Billing errors")
    page.click("#confirm-add")
    page.wait_for_url(re.compile(r".*/board/$"))
    assert page.get_by_text("Added 4 of 4 matching traces").is_visible()
    pending = page.locator("#col-pending .count")
    assert pending.inner_text() == "4"
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = ReviewQueue.objects.get(name="Billing errors")
        queued = QueueItem.objects.filter(queue=queue).count()
    assert queued == 4

    # 5. The reviewer works; the board moves without a reload.
    reviewer = Actor(user=sme, source="web")
    with tenancy.tenant_scope(tenant.organization.pk):
        first = services.queue_claim_next(actor=reviewer, queue=queue)
    page.wait_for_function(
        "document.querySelector('#col-in_progress .count').textContent.trim() === '1'"
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_submit(
            actor=reviewer, assignment_id=first.pk, values={str(config.pk): "Correct"}
        )
        services.queue_claim_next(actor=reviewer, queue=queue)
    page.wait_for_function(
        "document.querySelector('#col-complete .count').textContent.trim() === '1'"
    )
    assert page.locator("#col-pending .count").inner_text() == "2"
    assert page.locator("#assignee-table tr", has_text=SME).locator(".done").inner_text() == "1"
    _shot(page, "6-board-moving")

    # 6. An API key: created, shown once with a copy button, revoked.
    page.goto(f"{live_server.url}/orgs/{org}/settings/api-keys/")
    page.fill("#key-name", "staging ingest")
    page.click("#create-key")
    raw = page.locator("#new-key").inner_text()
    assert raw.startswith("hitl_")
    assert page.locator("#copy-key").is_visible()
    _shot(page, "7-key-shown-once")
    whoami = f"/api/orgs/{org}/projects/{project}/whoami/"
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get(whoami).status_code == 200
    page.goto(f"{live_server.url}/orgs/{org}/settings/api-keys/")
    assert raw not in page.content()
    row = page.locator(f"#key-{raw[:13]}")
    row.get_by_role("button", name="Revoke staging ingest").click()
    assert page.locator(f"#key-{raw[:13]} .badge").inner_text().startswith("revoked")
    assert api.get(whoami).status_code == 401
    _shot(page, "8-key-revoked")
