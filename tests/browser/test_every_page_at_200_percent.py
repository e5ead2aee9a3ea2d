"""Every page at 200% zoom: a 683 px wide viewport (a 1366 px screen zoomed twice)
never scrolls sideways; a wide table scrolls inside its own container.

The pages are those of the Content-Security-Policy walk (tests/browser/test_csp.py):
every route of the URL conf filled from the apps' isolation rows, kept when it answers
the owner a 200 HTML page, so a page added tomorrow is measured the day it is added.
The admin and the API docs (Django's and Swagger's own layouts) are left out.
"""

from __future__ import annotations

import pytest

from tests.browser.pages import sign_in
from tests.browser.test_csp import _review_items, html_pages, page_urls, populate
from tests.factories import make_tenant
from tests.test_tenant_isolation import RouteFiller

pytestmark = pytest.mark.browser

ZOOMED_WIDTH = 683
NOT_OURS = ("/admin/", "/api/")
# What sticks out past the viewport, leaving out what lies inside a container that
# scrolls or clips sideways (a wide table in its own scroller is fine): tag#id.class
# and how far right each reaches, the widest first.
STICKING_OUT = """() => {
  const width = window.innerWidth;
  const scrolls = e => ["auto", "scroll", "hidden"].includes(getComputedStyle(e).overflowX);
  // An absolutely placed element escapes a scroller that is not positioned.
  const contained = e => {
    let box = e.offsetParent;
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const placed = getComputedStyle(e).position === "absolute";
      if (scrolls(p) && (!placed || box === p || p.contains(box))) return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter(e => !contained(e))
    .map(e => [e, e.getBoundingClientRect().right])
    .filter(([e, right]) => right > width + 0.5)
    .sort((a, b) => b[1] - a[1]).slice(0, 5)
    .map(([e, right]) =>
      `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(right)}px`);
}"""


@pytest.mark.timeout(600)
def test_no_page_scrolls_sideways_at_200_percent(page, live_server, transactional_db):
    tenant = make_tenant("Zoomed", project_name="Discharge summaries assistant")
    data = populate(tenant)
    _review_items(tenant)
    urls, _unfillable = page_urls(RouteFiller(tenant, data))  # the CSP walk asserts these
    pages = [url for url in html_pages(urls, tenant.owner) if not url.startswith(NOT_OURS)]
    assert len(pages) >= 40, f"only {len(pages)} pages answered"

    page.set_viewport_size({"width": ZOOMED_WIDTH, "height": 900})
    sign_in(page, live_server, tenant.owner)
    wide = {}
    for url in pages:
        page.goto(f"{live_server.url}{url}", wait_until="load")
        sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if sizes[0] > sizes[1]:
            wide[url] = f"{sizes[0]} px: {', '.join(page.evaluate(STICKING_OUT))}"
    assert not wide, "pages wider than 683 px:\n" + "\n".join(f"{u} {w}" for u, w in wide.items())
