"""The lead's pages finished, in Chromium: the trace page takes the review page's span
keys (j/k, the arrows, n, / and ?); the explorer's sort choices read in full at normal
width and at 200% zoom; a rubric question that takes numbers shows no options section,
and the options and the numbers follow the kind of answer as it is changed."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.pages import SHOTS, assert_no_sideways_scroll, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_config, make_queue, make_span, make_trace
from tests.review.long_trace import ERROR_SPANS, SEARCHED_SPAN, add_long_trace, body_marker
from tests.traces.read_builders import make_score

pytestmark = pytest.mark.browser

SHOWN_ROWS = "() => [...document.querySelectorAll('.span-tree li')].filter(li => !li.hidden).length"
ZOOMED_WIDTH = 683  # a 1366 px screen at 200%


def _selected(page) -> str:
    return page.get_attribute(".span-row[aria-selected=true]", "data-span")


def _focused_span(page) -> str | None:
    return page.evaluate("document.activeElement.dataset.span || null")


def _watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    return errors


def test_the_trace_page_moves_between_spans_from_the_keyboard(page, live_server):
    tenant = make_tenant("Tracekeys")
    trace = add_long_trace(organization_id=tenant.organization.pk, project=tenant.project)
    make_queue(tenant, name="Slow answers")
    errors = _watch_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server, tenant.admin)
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "trace_external_id": trace.external_id,
    }
    url = live_server.url + reverse("traces-detail", kwargs=kwargs)
    page.goto(url)
    page.wait_for_selector("#span-tools:not([hidden])")
    assert page.evaluate(SHOWN_ROWS) == 300
    assert _selected(page) == "s000"

    # j / k: the next and previous span, its detail loaded beside the tree.
    page.keyboard.press("j")
    assert _selected(page) == "s001"
    page.wait_for_selector("#span-panel-1:not([hidden])")
    assert body_marker(1) in page.locator("#span-panel-1").inner_text()
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert _selected(page) == "s001"

    # f focuses the row; the arrows move and fold on it.
    page.keyboard.press("f")
    assert _focused_span(page) == "s001"
    page.keyboard.press("ArrowDown")
    assert _focused_span(page) == "s002" and _selected(page) == "s002"
    page.keyboard.press("ArrowUp")
    assert _focused_span(page) == "s001"
    page.keyboard.press("ArrowLeft")  # the step's nine spans fold
    assert page.get_attribute("#span-row-1", "aria-expanded") == "false"
    assert page.evaluate(SHOWN_ROWS) == 291
    page.keyboard.press("j")  # over the rows shown: the next step
    assert _selected(page) == "s011"
    page.keyboard.press("k")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(SHOWN_ROWS) == 300

    # n: the next error span, then the next.
    page.keyboard.press("n")
    assert _selected(page) == f"s{ERROR_SPANS[0]:03d}"
    page.wait_for_selector(f"#span-panel-{ERROR_SPANS[0]}:not([hidden])")
    assert "timed out after 400 ms" in page.locator(f"#span-panel-{ERROR_SPANS[0]}").inner_text()
    page.keyboard.press("n")
    assert _selected(page) == f"s{ERROR_SPANS[1]:03d}"
    page.screenshot(path=f"{SHOTS}/trace-keys-1-error.png")

    # "/" finds a span by name; the keys typed there are the search's, not shortcuts.
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "span-search"
    page.keyboard.type("allergy jkn")
    assert page.input_value("#span-search") == "allergy jkn"
    assert _selected(page) == f"s{ERROR_SPANS[1]:03d}"  # j, k, n did not move
    page.fill("#span-search", "")
    page.keyboard.type("allergy")
    assert page.evaluate(SHOWN_ROWS) == 3  # the match and its two ancestors
    page.keyboard.press("Enter")
    assert _selected(page) == f"s{SEARCHED_SPAN:03d}"
    page.wait_for_selector(f"#span-panel-{SEARCHED_SPAN}:not([hidden])")
    assert body_marker(SEARCHED_SPAN) in page.locator(f"#span-panel-{SEARCHED_SPAN}").inner_text()
    page.keyboard.press("Escape")  # back to the tree, on the span found
    assert _focused_span(page) == f"s{SEARCHED_SPAN:03d}"
    page.screenshot(path=f"{SHOTS}/trace-keys-2-search.png")

    page.fill("#span-search", "")  # the whole tree again
    assert page.evaluate(SHOWN_ROWS) == 300

    # A field of the page's own (the queue picker) keeps its keys too.
    page.focus("#queue-choice")
    page.keyboard.press("j")
    assert _selected(page) == f"s{SEARCHED_SPAN:03d}"

    # ?: the dialog lists the keys; Esc closes it.
    page.locator("h1").click()
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    for words in ("next / previous span", "fold", "the next span with an error", "find a span"):
        expect(dialog).to_contain_text(words)
    page.screenshot(path=f"{SHOTS}/trace-keys-3-dialog.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.keyboard.press("j")  # the keys work again once it is closed
    assert _selected(page) == f"s{SEARCHED_SPAN + 1:03d}"
    assert page.url == url  # every move stayed on the page
    assert not errors, errors


def _truncated_choices(page, selector: str) -> list[str]:
    """The choices of a select that do not fit in it: each option measured in a copy of
    the select sized to it (Chromium's own layout: text, padding and arrow)."""
    return page.evaluate(
        """(selector) => {
          const select = document.querySelector(selector);
          const probe = select.cloneNode(false);
          probe.removeAttribute("id");
          probe.style.cssText =
            "width:auto;max-width:none;min-width:0;position:absolute;visibility:hidden";
          select.parentNode.append(probe);
          const room = select.getBoundingClientRect().width;
          const cut = [...select.options].filter(option => {
            probe.replaceChildren(option.cloneNode(true));
            return probe.getBoundingClientRect().width > room + 0.5;
          }).map(option => option.text);
          probe.remove();
          return cut;
        }""",
        selector,
    )


def test_every_sort_choice_of_the_explorer_reads_in_full(page, live_server):
    tenant = make_tenant("Sortwords", project_name="Discharge summaries assistant")
    trace = make_trace(tenant, name="refund")
    make_span(trace, kind="llm", name="answer")
    make_score(trace, "faithfulness", 0.4)
    make_score(trace, "answer relevance to the question", 0.7)
    sign_in(page, live_server, tenant.owner)
    org, project = tenant.organization.slug, tenant.project.slug
    url = f"{live_server.url}/orgs/{org}/projects/{project}/traces/"
    for width, name in ((1280, "normal"), (ZOOMED_WIDTH, "200-percent")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(url + "?sort=score:answer relevance to the question")
        labels = page.locator("#sort-choice option").all_inner_texts()
        assert "score “faithfulness”, lowest first" in labels
        page.screenshot(path=f"{SHOTS}/explorer-sort-{name}.png", full_page=True)
        assert _truncated_choices(page, "#sort-choice") == [], name
        assert_no_sideways_scroll(page, name)
    # The choice still sorts: a new choice, applied.
    page.select_option("#sort-choice", "-latency_ms")
    page.locator("#apply-filter").click()
    expect(page.locator("#match-count")).to_contain_text("duration, highest first")


def test_the_options_section_follows_the_kind_of_answer(page, live_server):
    tenant = make_tenant("Rubrickinds")
    config = make_config(tenant, name="Helpfulness", data_type="numeric")
    sign_in(page, live_server, tenant.admin)
    org, project = tenant.organization.slug, tenant.project.slug
    page.goto(f"{live_server.url}/orgs/{org}/projects/{project}/rubrics/{config.pk}/")
    options, scale = page.locator("#options"), page.locator("#r-scale")
    expect(options).to_be_hidden()  # a question that takes numbers has no options
    expect(scale).to_be_hidden()
    page.screenshot(path=f"{SHOTS}/rubric-numeric.png", full_page=True)
    page.select_option("#r-type", "categorical")
    expect(options).to_be_visible()
    expect(scale).to_be_visible()
    expect(page.locator("#r-numbers")).to_be_hidden()  # nor numbers for categories
    page.fill("#o0-label", "Helpful")
    page.select_option("#r-type", "boolean")
    expect(options).to_be_hidden()
    page.select_option("#r-type", "categorical")
    expect(page.locator("#o0-label")).to_have_value("Helpful")  # typed, kept
    page.screenshot(path=f"{SHOTS}/rubric-categorical.png", full_page=True)
    # A new question is categorical: its options show.
    page.goto(f"{live_server.url}/orgs/{org}/projects/{project}/rubrics/new/")
    expect(options).to_be_visible()
    page.select_option("#r-type", "numeric")
    expect(options).to_be_hidden()
