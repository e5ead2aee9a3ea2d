"""A lead runs the programme in Chromium: invites a reviewer, builds a rubric and a queue
through the forms, fills the queue from a trace filter (the matched count shown first),
watches the board move as the reviewer works, and revokes an API key."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.models import OutboxMessage
from projects import services as project_services
from review import services
from review.models import QueueItem, ReviewQueue, ScoreConfig
from tests.browser.pages import next_item_held, shot, sign_in
from tests.factories import make_tenant, make_user
from tests.review.helpers import make_span, make_trace

pytestmark = pytest.mark.browser

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
    sign_in(page, live_server, tenant.admin)

    # 1. Invite a reviewer; the invitation shows as pending, then accepted.
    page.goto(f"{live_server.url}/orgs/{org}/")
    page.click("#settings-link")
    page.fill("#invite-email", SME)
    page.select_option("#invite-role", "reviewer")
    page.click("#send-invitation")
    assert page.get_by_text(f"Invitation sent to {SME}.").is_visible()
    row = page.locator("#invitations tr", has_text=SME)
    assert row.locator(".badge").inner_text() == "pending"
    shot(page, "1-invitation-sent")
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
    page.fill("#o0-label", "Correct")
    page.fill("#o0-value", "1")
    page.fill("#o1-label", "Wrong")
    page.fill("#o1-value", "0")
    page.check("#r-required")
    page.fill("#l0-label", "Correct")
    page.fill("#l0-definition", "States the right amount and where it comes from.")
    page.fill("#l0-examples", "Your copay is $20, per plan section 4.")
    page.fill("#l1-label", "Wrong")
    page.fill("#l1-definition", "A wrong amount, or none.")
    page.fill("#l1-examples", "It is probably free.")
    page.click("#save-rubric")
    assert page.get_by_text("Created the rubric “Billing answer correct”.").is_visible()
    shot(page, "2-rubric")

    # 3. A queue with that question and the new reviewer in its pool.
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(name="Billing answer correct")
    page.goto(f"{base}/queues/")
    page.click("#new-queue")
    page.fill("#q-name", "Billing errors")
    page.fill("#q-overlap", "1")
    page.check(f"#q-{config.pk}")
    page.locator("#pool tr", has_text=SME).locator("input[type=checkbox]").first.check()
    shot(page, "3-queue-form")
    page.click("#save-queue")
    page.wait_for_url(re.compile(r".*/board/$"))
    assert page.get_by_text("Created the queue “Billing errors”.").is_visible()

    # 4. Filter the traces, see the count across all pages, add them.
    page.goto(f"{base}/traces/")
    page.locator("#new-condition .cond-field").select_option("status")
    page.locator("#new-condition select.cond-value").select_option("error")
    page.click("#add-condition")
    page.locator("#conditions .condition .cond-field").last.select_option("tags")
    page.locator("#conditions .condition .cond-value").last.fill("billing")
    page.click("#apply-filter")
    assert page.locator("#trace-table tbody tr").count() == 4
    shot(page, "4-explorer")
    page.get_by_role("link", name="Add all matching to a queue…").click()
    assert page.locator("#matched-count").inner_text() == "4"
    shot(page, "5-bulk-add-confirm")
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
        "() => document.querySelector('#col-in_progress .count').textContent.trim() === '1'"
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_submit(
            actor=reviewer, assignment_id=first.pk, values={str(config.pk): "Correct"}
        )
        services.queue_claim_next(actor=reviewer, queue=queue)
    page.wait_for_function(
        "() => document.querySelector('#col-complete .count').textContent.trim() === '1'"
    )
    assert page.locator("#col-pending .count").inner_text() == "2"
    assert page.locator("#assignee-table tr", has_text=SME).locator(".done").inner_text() == "1"
    shot(page, "6-board-moving")

    # 6. An API key: created, shown once with a copy button, revoked.
    page.goto(f"{live_server.url}/orgs/{org}/settings/api-keys/")
    page.fill("#key-name", "staging ingest")
    page.click("#create-key")
    raw = page.locator("#new-key").inner_text()
    assert raw.startswith("hitl_")
    assert page.locator("#copy-key").is_visible()
    shot(page, "7-key-shown-once")
    whoami = f"/api/orgs/{org}/projects/{project}/whoami/"
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get(whoami).status_code == 200
    page.goto(f"{live_server.url}/orgs/{org}/settings/api-keys/")
    assert raw not in page.content()
    row = page.locator(f"#key-{raw[:13]}")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke staging ingest").click()
    assert page.locator(f"#key-{raw[:13]} .badge").inner_text().startswith("revoked")
    assert api.get(whoami).status_code == 401
    shot(page, "8-key-revoked")


def test_a_lead_edits_a_rule_and_changes_board_items_together(page, live_server, clinic):
    """A routing rule edited through its form, the preview following each change (the
    rule's own draw); then two board items reassigned together, the selection made from
    the keyboard and kept through the board's live refreshes while a reviewer works."""
    from review.pages import lead_selectors
    from tests.review.helpers import add_traces, make_queue

    tenant = clinic
    org, project = tenant.organization.slug, tenant.project.slug
    base = f"{live_server.url}/orgs/{org}/projects/{project}"
    queue = make_queue(tenant, reviewers=[tenant.reviewer, tenant.admin], overlap=1, name="Billing")
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Billing errors",
            signal="error",
            filter_params={"status": "error"},
        )
        half = lead_selectors.routing_preview(
            project=tenant.project, filter_params={"status": "error"}, sampling_rate=0.5, rule=rule
        )["taken"]
    sign_in(page, live_server, tenant.admin)

    # 1. The rule's form, its preview following the form.
    page.goto(f"{base}/queues/{queue.pk}/rules/")
    page.click(f"#edit-rule-{rule.pk}")
    summary = page.locator("#preview-summary")
    expect(summary).to_have_text("4 of the 7 newest traces match; at 100 % the rule would take 4.")
    status = page.locator("#conditions .condition select.cond-value").first
    expect(status).to_have_value("error")
    status.select_option("ok")
    expect(summary).to_contain_text("3 of the 7 newest traces match")
    status.select_option("error")
    page.fill("#rule-sampling-percent", "50")
    expect(summary).to_have_text(
        f"4 of the 7 newest traces match; at 50 % the rule would take {half}."
    )
    shot(page, "9-rule-edit-preview")
    # A bad rate is refused beside its field; the form keeps what was typed.
    page.fill("#rule-sampling-percent", "0")
    page.click("#save-rule")
    expect(page.locator("#rule-sampling-percent-error")).to_have_text("Above 0 and at most 100 %.")
    expect(page.locator("#rule-sampling-percent")).to_have_attribute("aria-invalid", "true")
    assert page.locator("#conditions .condition select.cond-value").first.input_value() == "error"
    page.fill("#rule-sampling-percent", "50")
    page.fill("#rule-item-priority", "4")
    page.click("#save-rule")
    expect(page.get_by_text("Saved the rule “Billing errors”.")).to_be_visible()
    expect(page.locator("#history li").first).to_contain_text("sampling rate: 1.0 → 0.5")
    shot(page, "10-rule-edited-history")
    with tenancy.tenant_scope(tenant.organization.pk):
        rule.refresh_from_db()
    assert (rule.sampling_rate, rule.item_priority, rule.enabled) == (0.5, 4, True)

    # 2. The board: select all shown in a column, clear, then tick three from the keyboard.
    first, second, third = add_traces(tenant, queue, 3)
    page.goto(f"{base}/queues/{queue.pk}/board/")
    selection = page.locator("#board-selection")
    page.check("#all-pending")
    expect(selection).to_have_text("3 items selected.")
    page.click("#bulk-clear")
    expect(selection).to_contain_text("Nothing selected.")
    for item in (first, second, third):
        page.focus(f"#sel-{item.pk}")
        page.keyboard.press("Space")
    expect(selection).to_have_text("3 items selected.")
    # The reviewer finishes the first meanwhile: it leaves the open columns on the next
    # refresh, the others stay ticked, and it stays selected (not shown).
    reviewer = Actor(user=tenant.reviewer, source="web")
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=reviewer, queue=queue)
        assert lease.item_id == first.pk
        config_id = queue.form_fields.get().config_id
        services.assignment_submit(
            actor=reviewer, assignment_id=lease.pk, values={str(config_id): 0.5}
        )
    expect(page.locator(f"#sel-{first.pk}")).to_have_count(0)
    expect(selection).to_have_text("3 items selected (1 not shown on the board now).")
    with page.expect_response(lambda response: "/board/live/" in response.url):
        pass
    expect(page.locator(f"#sel-{second.pk}")).to_be_checked()
    expect(page.locator(f"#sel-{third.pk}")).to_be_checked()
    shot(page, "11-board-selection")
    page.select_option("#bulk-assignee", label=tenant.reviewer.email)
    page.click("#bulk-apply")
    messages = page.locator(".messages li")
    expect(messages.filter(has_text="Changed 2 items.")).to_have_count(1)
    expect(
        messages.filter(has_text=re.compile(r"Could not change 1 item: .*already complete"))
    ).to_have_count(1)
    shot(page, "12-board-changed")
    with tenancy.tenant_scope(tenant.organization.pk):
        assignees = dict(QueueItem.objects.filter(queue=queue).values_list("pk", "assignees"))
    assert assignees == {
        first.pk: [],
        second.pk: [tenant.reviewer.pk],
        third.pk: [tenant.reviewer.pk],
    }

    # 3. All of a column, not only the cards shown: more items than the column shows,
    # "select all shown", then the offer of the whole column, the count to confirm.
    add_traces(tenant, queue, 22)
    page.goto(f"{base}/queues/{queue.pk}/board/")
    page.check("#all-pending")
    expect(selection).to_have_text("20 items selected.")
    whole = page.locator("#whole-pending")
    expect(whole).to_have_text("Select all 24 in pending")
    whole.click()
    expect(selection).to_contain_text("All 24 items in pending are selected, not only those shown.")
    expect(whole).to_have_attribute("aria-pressed", "true")
    shot(page, "13-board-whole-column")
    page.fill("#bulk-priority", "9")
    page.select_option("#bulk-assignee", "keep")
    page.click("#bulk-apply")
    expect(page.locator("#column-count")).to_have_text("24")
    expect(page.locator("#column-change")).to_have_text("priority 9")
    shot(page, "14-column-confirm")
    page.click("#confirm-column")
    expect(messages.filter(has_text="Changed 24 items.")).to_have_count(1)
    with tenancy.tenant_scope(tenant.organization.pk):
        priorities = set(
            QueueItem.objects.filter(queue=queue)
            .exclude(pk=first.pk)
            .values_list("priority", flat=True)
        )
    assert priorities == {9}

    # 4. The reviewer holds an item on their open page; the lead sends it back to the
    # queue from its card: the lease ends, and the reviewer's submit says who took it.
    with tenancy.tenant_scope(tenant.organization.pk):
        held = services.queue_claim_next(actor=reviewer, queue=queue)
    browser = page.context
    browser.clear_cookies()
    reviewer_page = browser.new_page()
    sign_in(reviewer_page, live_server, tenant.reviewer)
    reviewer_page.goto(f"{base}/review/{held.pk}/")
    expect(reviewer_page.locator("#submit-button")).to_be_visible()
    next_item_held(reviewer_page)  # its fetch ahead answered: no request left in flight
    # One browser plays both people: the reviewer's cookies are put back afterwards, as
    # if the lead had worked from another machine.
    reviewer_cookies = browser.cookies()
    browser.clear_cookies()
    sign_in(page, live_server, tenant.admin)
    page.goto(f"{base}/queues/{queue.pk}/board/")
    card = page.locator(f"#col-in_progress form:has(#a-{held.item_id})")
    card.locator(f"#a-{held.item_id}").select_option("anyone")
    card.locator("button[type=submit]").click()
    expect(messages.filter(has_text="Took 1 item back from the reviewers")).to_have_count(1)
    expect(page.locator(f"#col-pending #sel-{held.item_id}")).to_have_count(1)
    shot(page, "15-board-taken-back")
    browser.clear_cookies()
    browser.add_cookies(reviewer_cookies)
    reviewer_page.locator("[data-question] input").first.check()
    reviewer_page.click("#submit-button")
    expect(reviewer_page.locator("#taken-back")).to_have_text("This item was taken back")
    expect(reviewer_page.locator("#lease-ended")).to_contain_text(
        f"Taken back by {tenant.admin.email}"
    )
    shot(reviewer_page, "16-reviewer-taken-back")
    reviewer_page.close()
    with tenancy.tenant_scope(tenant.organization.pk):
        item = QueueItem.objects.get(pk=held.item_id)
    assert (item.live_leases, item.submissions, item.open_slots) == (0, 0, 1)
