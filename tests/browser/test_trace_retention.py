"""An owner sets the project's trace retention in Chromium, from the trace explorer,
with the keyboard; a viewer reads it without a form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl.tenancy import tenant_scope
from tests.browser.pages import shot, sign_in, tab_to
from tests.factories import make_tenant
from traces.models import TraceRetention

pytestmark = pytest.mark.browser


def test_owner_sets_retention_from_the_explorer(page, live_server, transactional_db, settings):
    settings.HITL_TRACE_RETENTION_DAYS = 0
    tenant = make_tenant("Keep")
    org, project = tenant.organization, tenant.project
    sign_in(page, live_server, tenant.owner)
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/")
    tab_to(page, "#retention-link")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.endswith("/traces/retention/"))
    expect(page.locator("#retention-in-force")).to_contain_text("Traces are kept")

    # The radio and the days field found by their labels; Enter submits.
    page.get_by_label("This project's own retention").check()
    page.get_by_label("Days to keep traces (0 keeps everything)").fill("30")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("now kept for 30 days")
    expect(page.locator("#retention-in-force")).to_contain_text("30 days")
    shot(page, "trace-retention")
    with tenant_scope(org.pk):
        assert TraceRetention.objects.get(project=project).days == 30

    # A wrong value is explained beside the field, and nothing changes.
    page.get_by_label("Days to keep traces (0 keeps everything)").fill("-3")
    page.locator("#retention-save").click()
    expect(page.locator("#retention-error")).to_be_visible()
    expect(page.locator("#retention-days")).to_have_attribute("aria-invalid", "true")
    with tenant_scope(org.pk):
        assert TraceRetention.objects.get(project=project).days == 30

    # A viewer reads the same page without the form.
    page.context.clear_cookies()
    sign_in(page, live_server, tenant.viewer)
    page.goto(f"{live_server.url}/orgs/{org.slug}/projects/{project.slug}/traces/retention/")
    expect(page.locator("#retention-in-force")).to_contain_text("30 days")
    expect(page.locator("#retention-form")).to_have_count(0)
