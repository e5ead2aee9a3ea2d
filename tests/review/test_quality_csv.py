"""The quality CSVs (calibration results, alignment reports) run nothing in a
spreadsheet: a reviewer's email may start with a formula character (``=``, ``+``, ``-``
are valid in an address)."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Role
from review.quality.services import calibration
from tests.csv_checks import assert_runs_nothing
from tests.factories import add_member, make_user
from tests.review.test_calibration import GOLD, _answer_round, _config, _set

EMAILS = ["=1+1@evil.example", "+cmd@evil.example", "-2+3@evil.example"]


def test_calibration_results_csv_neutralises_hostile_emails(tenant, client_for):
    config = _config(tenant)
    cal, traces = _set(tenant, config)
    reviewers = [make_user(email) for email in EMAILS]
    for user in reviewers:
        add_member(tenant.organization, user, Role.REVIEWER)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[u.pk for u in reviewers]
        )
    gold = dict(zip([t.pk for t in traces], GOLD, strict=True))
    _answer_round(tenant, round_, config, dict.fromkeys(reviewers, gold))
    with tenancy.tenant_scope(tenant.organization.pk):
        calibration.calibration_round_score(actor=owner, round_=round_)

    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    response = client_for(tenant.owner).get(f"{base}/calibration-rounds/{round_.pk}/csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    header, *rows = assert_runs_nothing(response.content.decode())
    emails = sorted(dict(zip(header, row, strict=True))["reviewer_email"] for row in rows)
    assert emails == sorted("'" + email for email in EMAILS)
    accuracy = {dict(zip(header, row, strict=True))["accuracy"] for row in rows}
    assert accuracy == {"1.0"}  # numbers are written as numbers
