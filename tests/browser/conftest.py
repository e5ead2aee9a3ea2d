"""Headless Chromium (Debian's package) driven by Playwright against a live server."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.sessions import wait_for_other_sessions

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium_path() -> str:
    path = os.environ.get("HITL_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed; bin/test installs Debian's chromium package")
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
    # make between browser steps are still synchronous and safe. Set only while a
    # browser runs, so nothing else (the deploy check) inherits it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    profile = tempfile.mkdtemp(prefix="hitl-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=_chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, live_server, transactional_db):
    # Set up after the database fixture, so torn down before it: the page (its timers:
    # a draft save, a lease renewal) is closed before the tables are flushed, or a
    # request still running would deadlock the flush and leave rows to the next test.
    browser.clear_cookies()
    page = browser.new_page()
    page.set_default_timeout(15000)
    yield page
    page.close()
    wait_for_other_sessions()  # its last request, still in the live server
