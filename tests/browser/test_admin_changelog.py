"""The auditor, in Chromium, finds yesterday's changes by one reviewer in the admin's
change log and exports them."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import services
from projects.models import Project, Role
from tests.browser.pages import shot, sign_in
from tests.factories import add_member, make_tenant, make_user

pytestmark = pytest.mark.browser


def test_auditor_finds_and_exports_yesterdays_changes_of_a_reviewer(
    page, live_server, transactional_db
):
    tenant = make_tenant("Ledger")
    historical = Project.history.model
    historical.objects.update(history_date=timezone.now() - dt.timedelta(days=3))
    for user, description, days_ago in [
        (tenant.reviewer, '=HYPERLINK("http://x")', 1),
        (tenant.admin, "the admin's", 1),
        (tenant.reviewer, "today's", 0),
    ]:
        with tenant_scope(tenant.organization.pk):
            services.project_update(
                actor=Actor(user=user), project=tenant.project, description=description
            )
        row = historical.objects.latest("history_date", "history_id")
        historical.objects.filter(history_id=row.history_id).update(
            history_date=timezone.now() - dt.timedelta(days=days_ago)
        )
    auditor = make_user("ledger-auditor@example.com", is_staff=True)
    add_member(tenant.organization, auditor, Role.AUDITOR)

    sign_in(page, live_server, auditor)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Change log").first.click()
    page.wait_for_url(lambda url: "/admin/changelog/" in url)
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    # The person picker finds people as their email is typed (the auditor's organizations).
    person = page.get_by_label("Person")
    person.type(tenant.reviewer.email[:6])
    option = page.locator(f'#changelog-people option[value="{tenant.reviewer.email}"]')
    expect(option).to_have_count(1)
    person.fill(tenant.reviewer.email)
    page.get_by_label("From", exact=True).fill(yesterday)
    page.get_by_label("To", exact=True).fill(yesterday)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#changelog tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(tenant.reviewer.email)
    expect(rows.first).to_contain_text("description:")
    expect(rows.first).to_contain_text("HYPERLINK")
    shot(page, "admin-changelog")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    with open(download.value.path(), encoding="utf-8") as exported_file:
        text = exported_file.read()
    exported = list(csv.DictReader(io.StringIO(text)))
    assert len(exported) == 1 and exported[0]["user"] == tenant.reviewer.email
    assert "HYPERLINK" in exported[0]["changes"] and "today's" not in text
