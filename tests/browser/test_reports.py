"""The quality report page in Chromium: agreement over time with its band, the
alignment confusion matrix as a heat map, accuracy per reviewer and answers per hour,
each chart with its table; a worst disagreement opens its trace; reviewers are refused.
A lead creates a calibration set, writes gold answers, starts a round, scores it and
reads each reviewer's result, and sets the project's alert thresholds."""

from __future__ import annotations

import os

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review.quality.services import agreement, alignment, calibration
from tests.browser.pages import SHOTS, sign_in
from tests.factories import make_tenant
from tests.review import test_agreement_reports as agreement_tests
from tests.review import test_alignment as alignment_tests
from tests.review import test_calibration as calibration_tests
from tests.review import test_quality_page_rows as rows_tests
from tests.review.helpers import add_reviewers, make_trace

pytestmark = pytest.mark.browser


@pytest.fixture
def quality(transactional_db):
    tenant = make_tenant("Quality")
    owner = Actor(user=tenant.owner)
    # Agreement: three reviewers, reported after each one's answers arrive.
    config, reviewers, queue, items = agreement_tests._setup(tenant)
    for column in range(3):
        agreement_tests._review(tenant, queue, config, reviewers, items, only=column)
        with tenancy.tenant_scope(tenant.organization.pk):
            agreement.agreement_refresh(queue_id=queue.pk, force=True, resamples=200)
    # Alignment: a judge against the reviewers' answers.
    helpful, _items = alignment_tests._setup(tenant)
    mapping = alignment_tests._mapping(tenant, helpful, source_version="v1")
    with tenancy.tenant_scope(tenant.organization.pk):
        alignment.alignment_refresh(mapping_id=mapping.pk)
    # Calibration: one round scored.
    # (the agreement question: same name and levels as the calibration tests')
    correctness = config
    cal, traces = calibration_tests._set(tenant, correctness)
    with tenancy.tenant_scope(tenant.organization.pk):
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[r.pk for r in reviewers[:2]]
        )
    gold = dict(zip([t.pk for t in traces], calibration_tests.GOLD, strict=True))
    sloppy = dict.fromkeys(gold, "right")
    calibration_tests._answer_round(
        tenant, round_, correctness, {reviewers[0]: gold, reviewers[1]: sloppy}
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        calibration.calibration_round_score(actor=owner, round_=round_)
    return tenant, reviewers


def test_the_quality_page_draws_each_chart_with_its_table(page, live_server, quality):
    tenant, reviewers = quality
    url = (
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/reports/quality/"
    )
    sign_in(page, live_server, tenant.owner)
    page.goto(url)
    page.set_viewport_size({"width": 1300, "height": 900})
    # Agreement: one row per question of a queue (the second is the calibration
    # round's queue); its trend over three reports, the first (one reviewer) without a
    # figure, so a line over two with its interval band. The history says why.
    row = page.locator("#agreement-table tr.agreement-row").filter(has_not_text="calibration")
    assert row.count() == 1
    assert row.locator("svg.chart.trend circle.dot").count() == 2
    assert row.locator("svg.chart.trend polygon.band").count() == 1
    assert "History (3)" in row.inner_text()
    # The confusion matrix as a heat map, its counts in cells and in the table.
    alignment_section = page.locator("#alignment")
    cells = alignment_section.locator("svg.chart text.cell-label").all_text_contents()
    assert sorted(int(c) for c in cells) == [1, 1, 2, 4]
    table = alignment_section.locator("table.figures").first.inner_text()
    assert "False positive\t1" in table and "False negative\t1" in table
    # Accuracy per reviewer: a bar per reviewer, the threshold line.
    accuracy = page.locator("#accuracy")
    assert accuracy.locator("svg.chart rect.bar").count() == 2
    assert accuracy.locator("svg.chart line.threshold").count() == 1
    assert reviewers[0].email in accuracy.locator("table").inner_text()
    # Answers per hour: 24 columns, and the table of who answered.
    throughput = page.locator("#throughput")
    assert throughput.locator("svg.chart rect.bar").count() == 24
    assert "answers in the last 24 hours" in throughput.inner_text()
    page.screenshot(path=os.path.join(SHOTS, "quality.png"), full_page=True)
    # Legible at a desktop width and in the narrow column of 200% zoom.
    for width in (1300, 683):
        page.set_viewport_size({"width": width, "height": 900})
        assert_charts_legible(page)
        assert_no_clipped_cells(page)
    page.set_viewport_size({"width": 1300, "height": 900})
    # The history: every report of the question, the line of the page's reports.
    with page.expect_navigation():
        row.get_by_role("link", name="History").click()
    history = page.locator("#history")
    assert history.locator("svg.chart circle.dot").count() == 2
    assert history.locator("svg.chart polygon.band").count() == 1
    assert history.locator("#history-table tbody tr").count() == 3
    assert "—" in history.locator("#history-table tbody tr").last.inner_text()
    assert_charts_legible(page)
    page.go_back()
    # A worst disagreement opens its trace.
    link = alignment_section.locator("table.worst a").first
    external_id = link.inner_text()
    link.click()
    page.wait_for_url(lambda u: f"/traces/t/{external_id}/" in u)


# The WCAG relative luminance and contrast, in the page: a chart's text against white,
# or against the heat-map cell it sits on (the accent at the cell's opacity over white).
LEGIBILITY = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const contrast = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  return [...document.querySelectorAll("svg.chart text")].map(t => {
    const style = getComputedStyle(t);
    const px = parseFloat(style.fontSize) * t.getScreenCTM().a;
    let ground = [255, 255, 255];
    const cell = t.previousElementSibling;
    if (cell && cell.matches("rect.cell")) {
      const fill = rgb(getComputedStyle(cell).fill);
      const a = parseFloat(cell.getAttribute("fill-opacity"));
      ground = fill.map(v => 255 - a * (255 - v));
    }
    return {text: t.textContent, px, ratio: contrast(rgb(style.fill), ground)};
  });
}"""


def assert_charts_legible(page) -> None:
    """Every chart's text is 12 px or more on screen with a contrast of 4.5:1 or more."""
    texts = page.evaluate(LEGIBILITY)
    assert texts
    small = [t for t in texts if t["px"] < 12]
    faint = [t for t in texts if t["ratio"] < 4.5]
    assert not small, small[:5]
    assert not faint, faint[:5]


def assert_no_clipped_cells(page) -> None:
    """No table cell's content is wider than the cell (a header cut to "Accu")."""
    clipped = page.evaluate(
        """() => [...document.querySelectorAll("table th, table td")]
            .filter(c => c.scrollWidth > c.clientWidth + 0.5 && c.offsetParent)
            .map(c => c.textContent.trim().slice(0, 40))"""
    )
    assert not clipped, clipped


@pytest.fixture
def many_reports(transactional_db):
    """Two questions of a queue with four hours of a report a minute each."""
    tenant = make_tenant("Many")
    queue, helpful, _safe, _reviewers = rows_tests._world(tenant)
    return tenant, queue, helpful


def test_the_quality_page_stays_short_with_many_reports(page, live_server, many_reports):
    tenant, queue, helpful = many_reports
    sign_in(page, live_server, tenant.owner)
    page.set_viewport_size({"width": 1300, "height": 900})
    page.goto(
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/reports/quality/"
    )
    rows = page.locator("#agreement-table tr.agreement-row")
    assert rows.count() == 2
    # 480 reports: two rows, the section no taller than a screen, the page bounded.
    assert page.locator("#agreement").bounding_box()["height"] < 700
    assert page.evaluate("document.documentElement.scrollHeight") < 3000
    # Each row's trend renders: a line through the newest reports, drawn at its size.
    for i in range(2):
        trend = rows.nth(i).locator("svg.chart.trend")
        assert trend.is_visible()
        assert trend.locator("circle.dot").count() == rows_tests.TREND_POINTS
        assert trend.locator("polyline.line").count() == 1
        box = trend.bounding_box()
        assert box["width"] >= 200 and box["height"] >= 40
    # The small sample says so in its row; no header or cell is cut.
    safe = rows.filter(has_text="safe")
    assert "Only 3 items answered by two or more reviewers" in safe.inner_text()
    headers = page.locator("#agreement-table thead th").all_inner_texts()
    assert "95% interval" in headers and "Items (2+ answers)" in headers
    assert_no_clipped_cells(page)
    assert_charts_legible(page)
    page.screenshot(path=os.path.join(SHOTS, "quality-many-reports.png"), full_page=True)
    # The history a page at a time: 240 reports, 50 a page.
    rows.filter(has_text="helpful").get_by_role("link", name="History").click()
    page.wait_for_url(lambda u: f"/agreement/{queue.pk}/{helpful.pk}/" in u)
    assert page.locator("#history-table tbody tr").count() == 50
    assert "page 1 of 5" in page.locator(".pager").inner_text()
    page.get_by_role("link", name="Older →").click()
    page.wait_for_url(lambda u: u.endswith("?page=2"))
    assert "page 2 of 5" in page.locator(".pager").inner_text()
    assert_no_clipped_cells(page)
    page.screenshot(path=os.path.join(SHOTS, "quality-history.png"), full_page=True)


def test_reviewers_may_not_open_the_quality_page(page, live_server, quality):
    tenant, reviewers = quality
    sign_in(page, live_server, reviewers[0])
    response = page.goto(
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/reports/quality/"
    )
    assert response.status == 403


@pytest.fixture
def calibration_world(transactional_db):
    tenant = make_tenant("Calibrate")
    config = calibration_tests._config(tenant)
    traces = [make_trace(tenant, external_id=f"gold-{i}") for i in range(4)]
    reviewers = add_reviewers(tenant, 2)
    return tenant, config, traces, reviewers


def test_a_lead_runs_a_calibration_round_in_the_browser(page, live_server, calibration_world):
    tenant, config, traces, (good, sloppy) = calibration_world
    sign_in(page, live_server, tenant.owner)
    page.set_viewport_size({"width": 1300, "height": 900})
    page.goto(
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/reports/quality/"
    )
    # From the project navigation to the calibration sets.
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Calibration").click()
    page.wait_for_url(lambda u: u.endswith("/calibration/"))
    page.get_by_label("Name", exact=True).fill("Onboarding")
    page.get_by_label("Accuracy to pass (0 to 1)").fill("0.75")
    page.get_by_label("correctness").check()
    page.get_by_role("button", name="Create set").click()
    page.wait_for_url(lambda u: "/calibration/" in u and u.rstrip("/").split("/")[-1].isdigit())
    assert "Onboarding" in page.locator("h1").inner_text()

    # A trace the project does not have is refused with the reason beside the form.
    page.get_by_label("Trace id (as in the explorer)").fill("nope")
    page.get_by_role("button", name="Save gold answers").click()
    assert "no trace “nope” in this project" in page.locator("#form-errors").inner_text()
    # The gold answers, one trace at a time, from the keyboard.
    for trace, label in zip(traces, calibration_tests.GOLD, strict=True):
        page.get_by_label("Gold answer: correctness").select_option(label)
        page.get_by_label("Trace id (as in the explorer)").fill(trace.external_id)
        page.get_by_label("Trace id (as in the explorer)").press("Enter")
        page.wait_for_selector(f"#gold-table >> text={trace.external_id}")
    assert page.locator("#gold-table tbody tr").count() == 4

    # A round for both reviewers.
    round_form = page.locator("#round-form")
    round_form.get_by_label(good.email).check()
    round_form.get_by_label(sloppy.email).check()
    page.get_by_role("button", name="Start round").click()
    page.wait_for_url(lambda u: "/calibration/rounds/" in u)
    assert "not scored" in page.locator(".badge.warn").first.inner_text()
    results = page.locator("#results-table")
    assert "0 / 4" in results.locator("tr", has_text=good.email).inner_text()

    # The reviewers answer (through the same services as their review pages).
    with tenancy.tenant_scope(tenant.organization.pk):
        from review.quality.models import CalibrationRound

        round_ = CalibrationRound.objects.get(calibration_set__name="Onboarding")
    gold = dict(zip([t.pk for t in traces], calibration_tests.GOLD, strict=True))
    calibration_tests._answer_round(
        tenant, round_, config, {good: gold, sloppy: dict.fromkeys(gold, "right")}
    )
    page.get_by_role("button", name="Score the round").click()
    page.wait_for_selector("text=Scored round 1.")
    good_row = results.locator("tr", has_text=good.email).inner_text()
    sloppy_row = results.locator("tr", has_text=sloppy.email).inner_text()
    assert "1.00" in good_row and "passed" in good_row and "not passed" not in good_row
    assert "0.50" in sloppy_row and "not passed" in sloppy_row
    assert "Accuracy 0.50 is under 0.75" in sloppy_row
    levels = page.locator("#questions table.levels").first.inner_text()
    assert "right (1)" in levels
    assert "1 of 2" in page.locator("#rounds-table").inner_text()
    page.screenshot(path=os.path.join(SHOTS, "calibration-round.png"), full_page=True)

    # The project's alert thresholds, refused then saved.
    page.get_by_role("navigation", name="Quality pages").get_by_role(
        "link", name="Alert thresholds"
    ).click()
    page.get_by_label("Window (reports)").fill("0")
    page.get_by_role("button", name="Save").click()
    assert "from 1 to 50" in page.locator("#form-errors").inner_text()
    page.locator("#q-agreement").fill("0.6")
    page.get_by_label("Window (reports)").fill("5")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=Saved the quality alert thresholds.")
    assert "Set for this project" in page.locator("#settings-source").inner_text()
