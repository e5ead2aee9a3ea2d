"""The quality page's agreement section stays one row per question however many reports
a worker stored (one a minute for hours): the latest figure, a trend line of the newest
reports, a small-sample warning, and the question's whole history on a page of its own,
a page of reports at a time. The page answers within its budget on a few hundred
reports; the history of another project's question is not found."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from django.utils import timezone

from hitl.tenancy import tenant_scope
from review.quality.agreement.report import MIN_STABLE_ITEMS
from review.quality.models import AgreementReport
from review.quality.pages.report import HISTORY_PAGE_SIZE
from review.quality.selectors.report import TREND_POINTS
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, make_config, make_queue

REPORTS = 240  # four hours of a report a minute, per question
BUDGET_MS = 300


def _reports(tenant, queue, config, count: int, *, items: int) -> None:
    """What the agreement worker stores, a report a minute (each one row, never
    updated), the newest now."""
    now = timezone.now()
    with tenant_scope(tenant.organization.pk):
        AgreementReport.objects.bulk_create(
            AgreementReport(
                organization=tenant.organization,
                project=tenant.project,
                queue=queue,
                config=config,
                config_version=1,
                computed_at=now - timedelta(minutes=count - i),
                answers_covered=2 * items,
                n_items=items,
                n_answers=2 * items,
                level="nominal",
                value=0.5 + (i % 10) / 40,
                ci_low=0.4,
                ci_high=0.9,
                figures={"n_pairable_items": items},
            )
            for i in range(count)
        )


def _world(tenant):
    reviewers = add_reviewers(tenant, 2)
    helpful = make_config(tenant, name="helpful")
    safe = make_config(tenant, name="safe")
    queue = make_queue(tenant, configs=[helpful, safe], reviewers=reviewers, overlap=2)
    _reports(tenant, queue, helpful, REPORTS, items=MIN_STABLE_ITEMS + 5)
    _reports(tenant, queue, safe, REPORTS, items=3)
    return queue, helpful, safe, reviewers


def test_one_row_per_question_with_its_trend_and_warning(tenant):
    queue, helpful, _safe, _reviewers = _world(tenant)
    owner = signed_in(tenant.owner)
    url = project_url(tenant, "reports-quality")
    owner.get(url)  # warm
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = owner.get(url)
        timings.append((time.perf_counter() - started) * 1000)
    assert response.status_code == 200
    assert sorted(timings)[1] < BUDGET_MS, timings
    page = response.content.decode()
    section = page[page.index('id="agreement"') : page.index('id="alignment"')]
    rows = re.findall(r'<tr class="agreement-row">.*?</tr>', section, re.S)
    assert len(rows) == 2
    [safe_row] = [r for r in rows if "safe</span>" in r]
    [helpful_row] = [r for r in rows if "helpful</span>" in r]
    # Each trend draws the newest reports, not every one.
    assert helpful_row.count('class="dot"') == TREND_POINTS
    assert f"History ({REPORTS})" in helpful_row
    # Three items: the warning, not a bare figure with a degenerate interval.
    assert "Only 3 items answered by two or more reviewers" in safe_row
    assert "too few items" in safe_row and "0.400 \u2013 0.900" not in safe_row
    assert "0.400 \u2013 0.900" in helpful_row and "small-sample" not in helpful_row
    history_url = project_url(
        tenant, "reports-quality-agreement-history", queue_pk=queue.pk, config_pk=helpful.pk
    )
    assert f'href="{history_url}"' in helpful_row


def test_history_is_paginated_and_reads_its_page_through_a_form(tenant):
    queue, helpful, _safe, _reviewers = _world(tenant)
    owner = signed_in(tenant.owner)
    url = project_url(
        tenant, "reports-quality-agreement-history", queue_pk=queue.pk, config_pk=helpful.pk
    )
    first = owner.get(url).content.decode()
    assert first.count("<td><time") == HISTORY_PAGE_SIZE
    pages = -(-REPORTS // HISTORY_PAGE_SIZE)
    assert f"page 1 of {pages}" in first and "?page=2" in first
    last = owner.get(url, {"page": pages}).content.decode()
    assert f"page {pages} of {pages}" in last and "?page=" in last
    # Anything that is not a page number reads as the first page, never an error.
    for bad in ("0", "x", "99999999999999999999999", "-1"):
        response = owner.get(url, {"page": bad})
        assert response.status_code == 200
        assert f"page 1 of {pages}" in response.content.decode()


def test_history_of_a_question_elsewhere_is_not_found(tenant, other_tenant):
    queue, helpful, _safe, reviewers = _world(tenant)
    other_queue = make_queue(other_tenant, configs=[make_config(other_tenant, name="x")])
    owner = signed_in(tenant.owner)
    # Another organization's queue, and a question of this queue not in its reports.
    assert (
        owner.get(
            project_url(
                tenant,
                "reports-quality-agreement-history",
                queue_pk=other_queue.pk,
                config_pk=helpful.pk,
            )
        ).status_code
        == 404
    )
    unreported = make_config(tenant, name="unreported")
    assert (
        owner.get(
            project_url(
                tenant,
                "reports-quality-agreement-history",
                queue_pk=queue.pk,
                config_pk=unreported.pk,
            )
        ).status_code
        == 404
    )
    # Reviewers may not read the quality pages.
    url = project_url(
        tenant, "reports-quality-agreement-history", queue_pk=queue.pk, config_pk=helpful.pk
    )
    assert signed_in(reviewers[0]).get(url).status_code == 403
