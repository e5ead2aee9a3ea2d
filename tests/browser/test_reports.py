"""The quality report page in Chromium: agreement over time with its band, the
alignment confusion matrix as a heat map, accuracy per reviewer and answers per hour,
each chart with its table; a worst disagreement opens its trace; reviewers are refused."""

from __future__ import annotations

import os
import tempfile

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review.services import agreement, alignment, calibration
from tests.factories import make_tenant
from tests.review import test_agreement_reports as agreement_tests
from tests.review import test_alignment as alignment_tests
from tests.review import test_calibration as calibration_tests

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("HITL_SCREENSHOTS") or tempfile.mkdtemp(prefix="hitl-report-shots-")


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


def _sign_in(page, live_server, user) -> None:
    from tests.factories import PASSWORD

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def test_the_quality_page_draws_each_chart_with_its_table(page, live_server, quality):
    tenant, reviewers = quality
    url = (
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/reports/quality/"
    )
    _sign_in(page, live_server, tenant.owner)
    page.goto(url)
    page.set_viewport_size({"width": 1300, "height": 900})
    # Agreement over time: three reports, the first (one reviewer) without a figure,
    # so a line over two with its interval band; the table says why.
    # (the second series is the calibration round's queue)
    agreement_section = page.locator("#agreement .chart-pair").first
    assert agreement_section.locator("svg.chart circle.dot").count() == 2
    assert agreement_section.locator("svg.chart polygon.band").count() == 1
    assert agreement_section.locator("table.figures tbody tr").count() == 3
    assert "—" in agreement_section.locator("table.figures tbody tr").last.inner_text()
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
    # A worst disagreement opens its trace.
    link = alignment_section.locator("table.worst a").first
    external_id = link.inner_text()
    link.click()
    page.wait_for_url(lambda u: f"/traces/t/{external_id}/" in u)


def test_reviewers_may_not_open_the_quality_page(page, live_server, quality):
    tenant, reviewers = quality
    _sign_in(page, live_server, reviewers[0])
    response = page.goto(
        f"{live_server.url}/orgs/{tenant.organization.slug}/projects/"
        f"{tenant.project.slug}/reports/quality/"
    )
    assert response.status == 403
