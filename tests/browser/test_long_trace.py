"""A 300-span trace with a 233 KB answer on the review page, in Chromium, from the
keyboard: the selected span's detail sits beside the tree in the viewport, loaded when
selected; the tree folds and unfolds, finds a span by name and goes to the next error
span; the answer is still submitted with Ctrl+Enter."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation
from tests.browser.pages import SHOTS, assert_no_sideways_scroll, sign_in
from tests.factories import make_tenant
from tests.review.helpers import make_config, make_queue
from tests.review.long_trace import ERROR_SPANS, SEARCHED_SPAN, add_long_trace, body_marker

pytestmark = pytest.mark.browser

SHOWN_ROWS = "() => [...document.querySelectorAll('.span-tree li')].filter(li => !li.hidden).length"


def _selected(page) -> str:
    return page.get_attribute(".span-row[aria-selected=true]", "data-span")


def _pane_beside_tree_in_view(page) -> None:
    """The selected span's detail is shown, right of the tree, inside the viewport."""
    box = page.evaluate(
        """() => {
          const panel = [...document.querySelectorAll('.span-panel')].find(p => !p.hidden);
          const tree = document.getElementById('span-tree-box').getBoundingClientRect();
          const row = document.querySelector('.span-row[aria-selected=true]')
            .getBoundingClientRect();
          if (!panel) return null;
          const p = panel.getBoundingClientRect();
          return {top: p.top, left: p.left, height: window.innerHeight, treeRight: tree.right,
                  rowTop: row.top, rowBottom: row.bottom};
        }"""
    )
    assert box is not None, "no span detail shown"
    assert box["left"] >= box["treeRight"] - 1, box  # beside the tree, not below it
    assert 0 <= box["top"] < box["height"] - 100, box  # its heading and body are in view
    assert box["rowTop"] >= 0 and box["rowBottom"] <= box["height"] + 1, box  # and the row


def test_a_long_trace_is_reviewed_from_the_keyboard(page, live_server):
    tenant = make_tenant("Longclinic")
    config = make_config(
        tenant,
        name="Accuracy",
        data_type="categorical",
        options=[{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}],
        required=True,
    )
    queue = make_queue(tenant, configs=[config], name="Long runs", overlap=1)
    trace = add_long_trace(organization_id=tenant.organization.pk, project=tenant.project)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: csp_errors.append(f"script error: {error}"))
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server, tenant.reviewer)
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "assignment_pk": lease.pk,
    }
    page.goto(live_server.url + reverse("review-item", kwargs=kwargs))
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assert page.evaluate(SHOWN_ROWS) == 300
    assert page.locator(".span-panel").count() == 1  # only the selected span's body came
    assert page.evaluate("document.activeElement.name") == f"q-{config.pk}"

    # j: the next span's detail is loaded and shown beside the tree, in the viewport.
    page.keyboard.press("j")
    assert _selected(page) == "s001"
    page.wait_for_selector("#span-panel-1:not([hidden])")
    assert body_marker(1) in page.locator("#span-panel-1").inner_text()
    _pane_beside_tree_in_view(page)
    page.screenshot(path=f"{SHOTS}/long-1-selected.png")

    # Fold and unfold from the keyboard: the step's nine spans go and come back.
    page.keyboard.press("f")
    assert page.evaluate("document.activeElement.dataset.span") == "s001"
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("#span-row-1", "aria-expanded") == "false"
    assert page.evaluate(SHOWN_ROWS) == 291
    page.keyboard.press("j")  # moves over the rows shown: the next step
    assert _selected(page) == "s011"
    page.keyboard.press("k")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(SHOWN_ROWS) == 300
    page.keyboard.press("k")  # to the agent span; folding it leaves it alone
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(SHOWN_ROWS) == 1
    page.keyboard.press("ArrowRight")
    assert page.evaluate(SHOWN_ROWS) == 300

    # Find a span by name: "/" then type; Enter selects the match; Esc back to the tree.
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "span-search"
    page.keyboard.type("allergy")
    assert page.evaluate(SHOWN_ROWS) == 3  # the match and its two ancestors
    assert page.locator("#span-search-count").inner_text() == "1 of 300 spans match"
    page.keyboard.press("Enter")
    assert _selected(page) == f"s{SEARCHED_SPAN:03d}"
    page.wait_for_selector(f"#span-panel-{SEARCHED_SPAN}:not([hidden])")
    assert body_marker(SEARCHED_SPAN) in page.locator(f"#span-panel-{SEARCHED_SPAN}").inner_text()
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.dataset.span") == f"s{SEARCHED_SPAN:03d}"
    page.screenshot(path=f"{SHOTS}/long-2-search.png")

    # n: the next error span (the search ends to show it), then around to the first.
    page.keyboard.press("n")
    assert _selected(page) == f"s{ERROR_SPANS[-1]:03d}"
    assert page.evaluate(SHOWN_ROWS) == 300
    panel = page.locator(f"#span-panel-{ERROR_SPANS[-1]}")
    assert "timed out after 400 ms" in panel.inner_text()
    _pane_beside_tree_in_view(page)
    page.keyboard.press("n")
    assert _selected(page) == f"s{ERROR_SPANS[0]:03d}"
    page.wait_for_selector(f"#span-panel-{ERROR_SPANS[0]}:not([hidden])")
    _pane_beside_tree_in_view(page)
    page.screenshot(path=f"{SHOTS}/long-3-error.png")
    assert_no_sideways_scroll(page)

    # The answer, from the keyboard: the first question, its first level, Ctrl+Enter.
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    with tenancy.tenant_scope(tenant.organization.pk):
        answer = Annotation.objects.get(assignment_id=lease.pk)
    assert answer.values == {str(config.pk): "Correct"}
    assert not csp_errors, csp_errors


def test_a_span_clicked_on_my_history_item_loads_beside_the_tree(page, live_server):
    """My history's item page on a 300-span trace: only the selected span's body came
    with the page; a span clicked in the tree is loaded and shown in the pane."""
    tenant = make_tenant("Longhistory")
    config = make_config(tenant, name="Accuracy", required=True)
    queue = make_queue(tenant, configs=[config], name="Long runs", overlap=1)
    trace = add_long_trace(organization_id=tenant.organization.pk, project=tenant.project)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        services.assignment_submit(
            actor=Actor(user=tenant.reviewer), assignment_id=lease.pk, values={str(config.pk): 1.0}
        )
        annotation = Annotation.objects.get(assignment_id=lease.pk)
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server, tenant.reviewer)
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "annotation_pk": annotation.pk,
    }
    page.goto(live_server.url + reverse("review-history-item", kwargs=kwargs))
    page.wait_for_selector("#review-root[data-ready]", state="attached")
    assert page.evaluate(SHOWN_ROWS) == 300
    assert page.locator(".span-panel").count() == 1
    page.locator(".span-row[data-span=s143]").click()
    assert _selected(page) == "s143"
    page.wait_for_selector("#span-panel-143:not([hidden])")
    panel = page.locator("#span-panel-143")
    assert body_marker(143) in panel.inner_text()
    assert "timed out after 400 ms" in panel.inner_text()
    assert page.locator(".span-panel:not([hidden])").count() == 1
    _pane_beside_tree_in_view(page)
    page.screenshot(path=f"{SHOTS}/long-4-history.png")
    assert not errors, errors


def test_the_trace_page_loads_a_span_of_a_long_trace_when_it_is_selected(page, live_server):
    tenant = make_tenant("Longtraces")
    trace = add_long_trace(organization_id=tenant.organization.pk, project=tenant.project)
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server, tenant.admin)
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "trace_external_id": trace.external_id,
    }
    page.goto(live_server.url + reverse("traces-detail", kwargs=kwargs))
    page.wait_for_selector("#span-tools:not([hidden])")  # span_tree.js took the tree
    assert page.evaluate(SHOWN_ROWS) == 300
    assert page.locator(".span-panel").count() == 1  # only the selected span's body came
    assert _selected(page) == "s000"
    page.locator(".span-row[data-span=s143]").click()
    assert _selected(page) == "s143"
    page.wait_for_selector("#span-panel-143:not([hidden])")
    panel = page.locator("#span-panel-143")
    assert body_marker(143) in panel.inner_text()
    assert "timed out after 400 ms" in panel.inner_text()
    assert page.locator(".span-panel:not([hidden])").count() == 1
    assert page.url.endswith(reverse("traces-detail", kwargs=kwargs))  # no page load
    _pane_beside_tree_in_view(page)
    # The tree's tools are the review page's: find by name, next error (its keys too:
    # tests/browser/test_trace_page_keys.py walks them).
    page.locator("#span-search").fill("allergy")
    assert page.evaluate(SHOWN_ROWS) == 3
    page.locator("#span-search").fill("")
    assert page.evaluate(SHOWN_ROWS) == 300
    page.locator("#next-error").click()
    assert _selected(page) in {f"s{n:03d}" for n in ERROR_SPANS}
    page.screenshot(path=f"{SHOTS}/long-5-trace-page.png")
    assert not errors, errors
