"""What the browser tests do the same way: sign in, move by keyboard, screenshots."""

from __future__ import annotations

import os
import tempfile

from tests.factories import PASSWORD

SHOTS = os.environ.get("HITL_SCREENSHOTS") or tempfile.mkdtemp(prefix="hitl-shots-")


def sign_in(page, live_server, user) -> None:
    """Signs ``user`` in through the sign-in form, as a person would."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def shot(page, name: str) -> None:
    """A full-page screenshot in ``SHOTS`` (looked at while building; never committed)."""
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Presses Tab until ``selector`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def assignment_on_page(page) -> str:
    """The lease the focused review page shows."""
    return page.get_attribute("#review-root", "data-assignment")


def wait_for_next_item(page, previous: str) -> str:
    """Waits until the review page shows a lease other than ``previous`` with the focus
    on its first question; returns that lease."""
    page.wait_for_function(
        "prev => { const r = document.getElementById('review-root');"
        " return r && r.dataset.assignment && r.dataset.assignment !== prev"
        " && document.activeElement && document.activeElement.matches('[data-question] input'); }",
        arg=previous,
    )
    return assignment_on_page(page)


def next_item_held(page) -> str:
    """Waits until the script holds the next item's page (claimed and fetched ahead)."""
    page.wait_for_selector("#review-root[data-next-ready]", state="attached")
    return page.get_attribute("#review-root", "data-next-ready")


def wider_than_viewport(page) -> list[str]:
    """The elements that reach past the viewport's right edge, or whose content does
    (empty: no sideways scroll), each as tag#id.class and how far right it reaches;
    the widest first."""
    return page.evaluate(
        """() => {
          const width = window.innerWidth;
          if (document.documentElement.scrollWidth <= width) return [];
          const reach = e => Math.max(
            e.getBoundingClientRect().right,
            e.getBoundingClientRect().left + e.scrollWidth);
          return [...document.querySelectorAll("body *")]
            .map(e => [e, reach(e)])
            .filter(([e, right]) => right > width + 0.5)
            .sort((a, b) => b[1] - a[1]).slice(0, 8)
            .map(([e, right]) =>
              `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(right)}px`);
        }"""
    )


def assert_no_sideways_scroll(page, where: str = "") -> None:
    """``document.documentElement.scrollWidth <= innerWidth``, or says what sticks out."""
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"{where or page.url}: {sizes} {wider_than_viewport(page)}"
