"""No page breaks the Content-Security-Policy: every HTML page of the URL conf, walked in
Chromium as an owner (staff and superuser too, for the admin) with demo-like rows, and
the pages whose scripts do most (the review page's keyboard flow, the lead's board),
report no violation.

The pages are discovered, not listed: every route of the URL conf is filled from the
rows of each app's ``tests/<app>/isolation.py`` (the isolation walker's contract), asked
for once with Django's client, and every one that answers 200 with HTML (pages, the
admin, the API docs) is opened in the browser. A page added tomorrow is walked the day
it is added. Violations are caught twice: a ``securitypolicyviolation`` listener
injected before any script of the page runs, and Chromium's console errors that name
the Content Security Policy (which also see what happens while a page unloads). The walk
is one test per part of the routes (every third), so the suite's workers share it.

The same walk measures every page of ours at 200% zoom: a 683 px wide viewport (a 1366 px
screen zoomed twice) never scrolls sideways; a wide table scrolls inside its own
container. The admin and the API docs (Django's and Swagger's own layouts) are left out
of that measure. One walk opens each page once for both.
"""

from __future__ import annotations

import importlib
import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.views import APIView

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import ReviewQueue
from tests.browser.pages import sign_in, wait_for_next_item
from tests.factories import make_tenant
from tests.isolation import IsolationData
from tests.review.helpers import make_config, make_queue, make_span, make_trace
from tests.test_tenant_isolation import APP_TEST_PACKAGES, RouteFiller, iter_routes

pytestmark = pytest.mark.browser

LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"}` +
    ` at ${event.sourceFile || "the page"}:${event.lineNumber}` +
    (event.sample ? ` (${event.sample})` : "")
  );
}, true);
"""


class ViolationLog:
    """What the open page reported, by the page (path) it happened on."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.found: list[str] = []
        self.where = ""
        page.add_init_script(LISTENER)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._note(f"script error: {error}", csp_only=True))

    def _console(self, message) -> None:
        if message.type == "error":
            self._note(f"console: {message.text}", csp_only=True)

    def _note(self, text: str, *, csp_only: bool) -> None:
        if csp_only and "Content Security Policy" not in text:
            return
        self.found.append(f"{self.where}: {text}")

    def at(self, where: str) -> None:
        self.where = where

    def collect(self) -> None:
        """Reads the listener's list of the page now open (and empties it)."""
        reported = self.page.evaluate(
            "() => { const v = window.__cspViolations || []; window.__cspViolations = [];"
            " return v; }"
        )
        self.found.extend(f"{self.where}: {text}" for text in reported)


ZOOMED_WIDTH = 683
NOT_OURS = ("/admin/", "/api/")  # not measured at 200%: Django's and Swagger's layouts
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


def sideways(page) -> str | None:
    """How the open page scrolls sideways (its width and what sticks out), or None."""
    width, viewport = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    if width <= viewport:
        return None
    return f"{width} px: {', '.join(page.evaluate(STICKING_OUT))}"


ADMIN_MODEL_PAGE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/(?P<rest>.*)$")
# The admin page each model shapes most (its fields, widgets and read-only renderings):
# walked for every model. The other admin pages (list, add, delete, history, ...)
# render Django's and simple_history's templates around the same values: walked for
# one model each, which keeps the walk short.
ADMIN_PAGES_OF_EVERY_MODEL = {"<object_id>/change/"}


def populate(tenant) -> IsolationData:
    """Rows of every app in ``tenant`` and the URL kwargs that address them, through
    each app's ``tests/<app>/isolation.py`` (the contract in tests/isolation.py)."""
    merged = IsolationData()
    for package in APP_TEST_PACKAGES:
        module = importlib.import_module(f"tests.{package}.isolation")
        merged.kwargs.update(module.populate(tenant).kwargs)
    return merged


def _renders_html(route) -> bool:
    """An API view answers JSON to a browser only if it also has a JSON renderer; the
    API docs page renders HTML alone. Every other view may be a page."""
    view_class = route.view_class
    if view_class is None or not issubclass(view_class, APIView):
        return True
    formats = {renderer.format for renderer in view_class().get_renderers()}
    return formats == {"html"}


def page_urls(filler: RouteFiller) -> tuple[list[str], list[str]]:
    """The URL of every route that may answer a page (filled from the rows); and the
    routes nobody can fill."""
    urls, unfillable, admin_kinds = [], [], set()
    for route in iter_routes():
        if not _renders_html(route):
            continue
        match = ADMIN_MODEL_PAGE.match(route.template)
        if match and match["rest"] not in ADMIN_PAGES_OF_EVERY_MODEL:
            if match["rest"] in admin_kinds:
                continue
            admin_kinds.add(match["rest"])
        try:
            urls.append(filler.url(route))
        except LookupError as exc:
            unfillable.append(f"{route.template}: {exc}")
    return urls, unfillable


def _review_items(tenant) -> ReviewQueue:
    """Two traces with a small span tree in a queue the owner reviews."""
    config = make_config(
        tenant,
        name="Correct",
        data_type="categorical",
        options=[{"label": "Yes", "value": 1.0}, {"label": "No", "value": 0.0}],
        required=True,
    )
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.owner], name="CSP walk")
    with tenancy.tenant_scope(tenant.organization.pk):
        for n in range(2):
            start = timezone.now() - timedelta(minutes=n + 1)
            trace = make_trace(
                tenant,
                name=f"walk {n}",
                input={"q": f"question {n}"},
                output={"a": "answer"},
                start_time=start,
                end_time=start + timedelta(seconds=2),
            )
            make_span(
                trace,
                external_id="root",
                kind="agent",
                name="root",
                start_time=start,
                end_time=start + timedelta(seconds=2),
            )
            make_span(
                trace,
                external_id="tool",
                parent_external_id="root",
                kind="tool",
                name="lookup",
                status="error",
                error_message="timed out",
                start_time=start + timedelta(seconds=1),
                end_time=start + timedelta(seconds=1.5),
            )
            services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
    return queue


def html_pages(urls: list[str], user) -> list[str]:
    """The URLs that answer ``user`` a 200 HTML page (asked with Django's client): the
    ones the browser opens. The others (POST-only routes, JSON, files to download,
    addresses a walk fills with no page behind them) would leave Chromium on an error
    page or a download, which interrupts the next navigation."""
    client = Client()
    client.force_login(user)
    pages = []
    for url in urls:
        response = client.get(url)
        kind = response.headers.get("Content-Type", "")
        attachment = response.headers.get("Content-Disposition", "").startswith("attachment")
        if response.status_code == 200 and kind.startswith("text/html") and not attachment:
            pages.append(url)
        if response.streaming:
            response.close()
    return pages


# The walk is cut into parts (every PARTS-th route), one test each, so the workers share it.
PARTS = 3


def _walk_owner(name: str):
    """An organization with rows of every app and a queue of two traces to review; its
    owner is staff and superuser (the admin pages are walked too)."""
    # A long project name, as people give them, to measure the header at 200%.
    tenant = make_tenant(name, project_name="Discharge summaries assistant")
    data = populate(tenant)
    queue = _review_items(tenant)
    owner = tenant.owner
    owner.is_staff = owner.is_superuser = True
    owner.save(update_fields=["is_staff", "is_superuser"])
    return tenant, data, queue


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", range(PARTS), ids=lambda part: f"part {part + 1} of {PARTS}")
def test_no_page_reports_a_content_security_policy_violation(
    page, live_server, transactional_db, part, record_property
):
    tenant, data, _queue = _walk_owner("Walk")
    owner = tenant.owner
    urls, unfillable = page_urls(RouteFiller(tenant, data))
    assert not unfillable, "routes the walker cannot fill:\n" + "\n".join(unfillable)

    log = ViolationLog(page, live_server.url)
    page.set_viewport_size({"width": ZOOMED_WIDTH, "height": 900})
    sign_in(page, live_server, owner)
    response = page.goto(f"{live_server.url}/")
    header = response.headers["content-security-policy"]
    directives = {piece.strip() for piece in header.split(";")}
    assert {"default-src 'self'", "script-src 'self'", "object-src 'none'"} <= directives
    assert {"frame-ancestors 'none'", "base-uri 'self'", "form-action 'self'"} <= directives
    started = time.monotonic()
    share = urls[part::PARTS]
    pages = html_pages(share, owner)
    opened: dict[str, str] = {}  # what the browser got for each page
    wide: dict[str, str] = {}  # the pages of ours that scroll sideways at 200%
    for url in pages:
        log.at(url)
        response = page.goto(f"{live_server.url}{url}", wait_until="load")
        log.collect()
        opened[url] = f"{response.status} {response.headers.get('content-type', '')}"
        if not url.startswith(NOT_OURS) and (how := sideways(page)):
            wide[url] = how
    not_pages = {
        url: outcome for url, outcome in opened.items() if not outcome.startswith("200 text/html")
    }
    measured = [url for url in pages if not url.startswith(NOT_OURS)]
    record_property("walked:CSP walk pages", len(pages))
    record_property("walked:pages measured at 200%", len(measured))
    print(
        f"walked {len(pages)} HTML pages (of {len(share)} routes) in"
        f" {time.monotonic() - started:.1f} s"
    )
    # Over 100 pages in all: each part walks its third.
    assert len(pages) >= 100 // PARTS, f"only {len(pages)} routes answered a page"
    assert not not_pages, "pages the browser did not get as HTML:\n" + "\n".join(
        f"{url}: {outcome}" for url, outcome in not_pages.items()
    )
    assert not log.found, "Content-Security-Policy violations:\n" + "\n".join(log.found)
    # Over 40 pages of ours in all: each part measures its third.
    assert len(measured) >= 40 // PARTS, f"only {len(measured)} pages of ours answered"
    assert not wide, f"pages wider than {ZOOMED_WIDTH} px:\n" + "\n".join(
        f"{url} {how}" for url, how in wide.items()
    )


def test_the_scripted_pages_report_no_violation(page, live_server, transactional_db):
    """The API docs, the error pages, and the pages whose scripts do most: the review
    page's keyboard flow and the lead's live board."""
    tenant = make_tenant("Scripted")
    queue = _review_items(tenant)
    log = ViolationLog(page, live_server.url)
    sign_in(page, live_server, tenant.owner)
    # The API docs run under it (Swagger UI draws the operations).
    log.at("/api/docs/")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    log.collect()
    # The error pages share the policy.
    log.at("/a-page-that-does-not-exist/")
    response = page.goto(f"{live_server.url}/a-page-that-does-not-exist/")
    assert response.status == 404
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log.collect()

    # The review page from the keyboard: spans, shortcuts, an answer, submit, next item.
    org, project = tenant.organization.slug, tenant.project.slug
    log.at("review flow")
    page.goto(f"{live_server.url}/orgs/{org}/work/")
    page.click("button.start-reviewing")
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    first = page.get_attribute("#review-root", "data-assignment")
    for key in ("j", "k", "?", "Escape", "1"):
        page.keyboard.press(key)
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    log.collect()

    # The lead's board: its live part refreshes by itself and keeps a selection.
    log.at("lead board")
    page.goto(f"{live_server.url}/orgs/{org}/projects/{project}/queues/{queue.pk}/board/")
    with page.expect_response(lambda r: "/board/live/" in r.url, timeout=10000):
        pass
    log.collect()
    assert not log.found, "Content-Security-Policy violations:\n" + "\n".join(log.found)


def test_the_browsable_api_keeps_its_layout_under_the_policy(page, live_server, transactional_db):
    """DRF's browsable API sets a few ``style`` attributes (the Filters button's float):
    allowed on its answers alone, as attributes alone; scripts stay as strict."""
    tenant = make_tenant("Api")
    make_trace(tenant, name="listed")
    log = ViolationLog(page, live_server.url)
    sign_in(page, live_server, tenant.owner)
    org, project = tenant.organization.slug, tenant.project.slug
    log.at("browsable API")
    response = page.goto(f"{live_server.url}/api/orgs/{org}/projects/{project}/traces/")
    assert response.headers["content-type"].startswith("text/html")
    directives = {part.strip() for part in response.headers["content-security-policy"].split(";")}
    assert "style-src-attr 'unsafe-inline'" in directives
    assert {"script-src 'self'", "style-src 'self'"} <= directives
    filters = page.locator("button[data-target='#filtersModal']")
    assert filters.evaluate("b => getComputedStyle(b).float") == "right"
    log.collect()
    assert not log.found, "Content-Security-Policy violations:\n" + "\n".join(log.found)

    # Pages keep the strict policy.
    page_response = page.goto(f"{live_server.url}/orgs/{org}/projects/{project}/traces/")
    assert "style-src-attr" not in page_response.headers["content-security-policy"]
