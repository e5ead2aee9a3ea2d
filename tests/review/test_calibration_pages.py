"""The lead's quality pages: calibration sets created with questions and thresholds,
traces with gold answers, a round started for chosen reviewers, its results (accuracy
against gold, the group's agreement per question and rubric level, the set's rounds
compared), alignment mappings, the project's alert thresholds; refused input shows
the reasons with 422; managers write, auditors read, reviewers are refused."""

from __future__ import annotations

import html
import re

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueItem
from review.quality.models import (
    AlignmentMapping,
    CalibrationRound,
    CalibrationSet,
    GoldAnswer,
    QualitySettings,
)
from review.quality.services import alignment
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, make_config, make_trace

LABELS = ["wrong", "partial", "right"]
GOLD = ["right", "wrong", "partial", "right"]


def _text(response) -> str:
    """The page's text without tags, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def _config(tenant, name="correctness"):
    return make_config(
        tenant,
        name=name,
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": label, "value": float(i)} for i, label in enumerate(LABELS)],
    )


def _answer(tenant, round_id, config, answers_by_user):
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = CalibrationRound.objects.get(pk=round_id).queue
        for user, answers in answers_by_user.items():
            actor = Actor(user=user)
            while (lease := services.queue_claim_next(actor=actor, queue=queue)) is not None:
                item = QueueItem.objects.get(pk=lease.item_id)
                services.assignment_submit(
                    actor=actor,
                    assignment_id=lease.pk,
                    values={str(config.pk): answers[item.trace_id]},
                )


def test_a_lead_creates_a_set_adds_gold_runs_two_rounds_and_compares_them(tenant):
    config = _config(tenant)
    make_config(tenant, name="notes", data_type="text", min_value=None, max_value=None,
                step=None)  # fmt: skip
    traces = [make_trace(tenant, external_id=f"cal-{i}") for i in range(len(GOLD))]
    good, sloppy = add_reviewers(tenant, 2)
    lead = signed_in(tenant.admin)

    listing = lead.get(project_url(tenant, "calibration-sets"))
    assert listing.status_code == 200
    body = listing.content.decode()
    # The project navigation links the quality pages; free text is not offered.
    assert 'aria-current="page">Calibration</a>' in body
    assert project_url(tenant, "reports-quality") in body
    assert "correctness" in body and "notes" not in body

    # Refused: no name, no question; each reason on the page.
    refused = lead.post(
        project_url(tenant, "calibration-sets"), {"name": "", "min_accuracy": "0.75"}
    )
    assert refused.status_code == 422
    assert "Name: required." in _text(refused)
    refused = lead.post(
        project_url(tenant, "calibration-sets"), {"name": "onboarding", "min_accuracy": "0.75"}
    )
    assert refused.status_code == 422
    assert "Name each question of the set once." in _text(refused)
    refused = lead.post(
        project_url(tenant, "calibration-sets"),
        {"name": "onboarding", "min_accuracy": "lots", "config": [str(config.pk)]},
    )
    assert refused.status_code == 422 and "a number is expected" in _text(refused)

    created = lead.post(
        project_url(tenant, "calibration-sets"),
        {"name": "onboarding", "description": "For new reviewers", "min_accuracy": "0.75",
         "min_agreement": "", "config": [str(config.pk)]},
    )  # fmt: skip
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        cal = CalibrationSet.objects.get(project=tenant.project)
    assert (cal.config_ids, cal.min_accuracy, cal.min_agreement) == ([config.pk], 0.75, None)
    assert created["Location"] == project_url(tenant, "calibration-set", calibration_set_pk=cal.pk)
    taken = lead.post(
        project_url(tenant, "calibration-sets"),
        {"name": "onboarding", "min_accuracy": "0.8", "config": [str(config.pk)]},
    )
    assert taken.status_code == 422 and "exists" in _text(taken)

    # Gold answers, one trace at a time; bad ones refused with the reason.
    gold_url = project_url(tenant, "calibration-gold", calibration_set_pk=cal.pk)
    q = f"q-{config.pk}"
    unknown = lead.post(gold_url, {"trace": "no-such-trace", q: "right"})
    assert unknown.status_code == 422
    assert "no trace “no-such-trace” in this project" in _text(unknown)
    wrong = lead.post(gold_url, {"trace": "cal-0", q: "excellent"})
    assert wrong.status_code == 422 and "Unknown option 'excellent'" in _text(wrong)
    missing = lead.post(gold_url, {"trace": "cal-0", q: ""})
    assert missing.status_code == 422
    assert "A gold answer to 'correctness' is required." in _text(missing)
    for trace, label in zip(traces, GOLD, strict=True):
        saved = lead.post(
            gold_url, {"trace": trace.external_id, q: label, "explanation": f"why {label}"}
        )
        assert saved.status_code == 302, _text(saved)
    page = lead.get(project_url(tenant, "calibration-set", calibration_set_pk=cal.pk))
    text = _text(page)
    assert "Traces and gold answers 4" in text and "cal-3 right why right" in text

    # Removing a trace and putting it back.
    with tenancy.tenant_scope(tenant.organization.pk):
        gold = GoldAnswer.objects.get(calibration_set=cal, trace=traces[0])
    removed = lead.post(
        project_url(
            tenant, "calibration-gold-remove", calibration_set_pk=cal.pk, gold_answer_pk=gold.pk
        )
    )
    assert removed.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert GoldAnswer.objects.filter(calibration_set=cal).count() == 3
    assert lead.post(gold_url, {"trace": "cal-0", q: "right"}).status_code == 302

    # Thresholds: refused out of range, then saved.
    set_url = project_url(tenant, "calibration-set", calibration_set_pk=cal.pk)
    bad = lead.post(set_url, {"min_accuracy": "1.5", "min_agreement": ""})
    assert bad.status_code == 422 and "min_accuracy is a fraction between 0 and 1" in _text(bad)
    assert lead.post(set_url, {"min_accuracy": "0.75", "min_agreement": "0.1"}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        cal.refresh_from_db()
    assert cal.min_agreement == 0.1

    # A round: none chosen is refused; then the two reviewers.
    start_url = project_url(tenant, "calibration-round-start", calibration_set_pk=cal.pk)
    none = lead.post(start_url, {})
    assert none.status_code == 422 and "Choose the reviewers." in _text(none)
    started = lead.post(start_url, {"reviewer": [str(good.pk), str(sloppy.pk)]})
    assert started.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        first = CalibrationRound.objects.get(calibration_set=cal)
    round_url = project_url(tenant, "calibration-round", calibration_round_pk=first.pk)
    assert started["Location"] == round_url
    progress = _text(lead.get(round_url))
    assert "not scored" in progress and f"{good.email} 0 / 4" in progress

    gold_by_trace = dict(zip([t.pk for t in traces], GOLD, strict=True))
    _answer(tenant, first.pk, config,
            {good: gold_by_trace, sloppy: dict.fromkeys(gold_by_trace, "right")})  # fmt: skip
    scored = lead.post(
        project_url(tenant, "calibration-round-score", calibration_round_pk=first.pk)
    )
    assert scored.status_code == 302
    result = _text(lead.get(round_url))
    assert f"{good.email} 4 / 4 4 / 4 1.00 1.000 passed" in result
    assert f"{sloppy.email} 4 / 4 2 / 4 0.50" in result and "Accuracy 0.50 is under 0.75" in result
    # Per gold level: "wrong" was answered "right" once, "partial" once.
    assert "wrong 2 1 0.50 right (1)" in result and "partial 2 1 0.50 right (1)" in result
    assert "Group agreement (the lowest over the questions):" in result

    # A second round for the sloppy reviewer alone, answered well this time: the rounds
    # compared side by side.
    lead.post(start_url, {"reviewer": [str(sloppy.pk)]})
    with tenancy.tenant_scope(tenant.organization.pk):
        second = CalibrationRound.objects.get(calibration_set=cal, number=2)
    _answer(tenant, second.pk, config, {sloppy: gold_by_trace})
    lead.post(project_url(tenant, "calibration-round-score", calibration_round_pk=second.pk))
    compared = _text(
        lead.get(project_url(tenant, "calibration-round", calibration_round_pk=second.pk))
    )
    assert re.search(r"Round 1 \S+ \S+ \S+ \S+ 1 of 2 0\.75", compared), compared
    assert re.search(r"Round 2 \S+ \S+ \S+ \S+ 1 of 1 1\.00", compared), compared
    overview = _text(lead.get(project_url(tenant, "calibration-sets")))
    assert "onboarding correctness 4" in overview and "Round 2 : 1 of 1 passed" in overview


def test_roles_auditors_read_reviewers_are_refused(tenant):
    config = _config(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        from review.quality.services import calibration

        cal = calibration.calibration_set_create(
            actor=Actor(user=tenant.owner), project=tenant.project, name="s",
            config_ids=[config.pk],
        )  # fmt: skip
    set_url = project_url(tenant, "calibration-set", calibration_set_pk=cal.pk)
    auditor = signed_in(tenant.auditor)
    page = auditor.get(set_url)
    assert page.status_code == 200 and 'id="gold-form"' not in page.content.decode()
    assert auditor.post(set_url, {"min_accuracy": "0.5"}).status_code == 403
    assert auditor.post(project_url(tenant, "calibration-sets"), {"name": "x"}).status_code == 403
    for user in (tenant.reviewer, tenant.viewer):
        assert signed_in(user).get(set_url).status_code == 403
        assert signed_in(user).get(project_url(tenant, "alignment-mappings")).status_code == 403
    # GET on a form's target answers 405, not a page.
    gold_url = project_url(tenant, "calibration-gold", calibration_set_pk=cal.pk)
    assert signed_in(tenant.owner).get(gold_url).status_code == 405


def test_alignment_mappings_are_created_listed_and_refreshed(tenant):
    from tests.review.test_alignment import _setup

    config, _items = _setup(tenant)
    lead = signed_in(tenant.owner)
    page = lead.get(project_url(tenant, "alignment-mappings"))
    assert page.status_code == 200
    assert project_url(tenant, "reports-quality") + "#alignment" in page.content.decode()
    # A numeric question needs the value from which the reviewers pass.
    refused = lead.post(
        project_url(tenant, "alignment-mappings"),
        {"score_name": "judge-helpful", "config_id": str(config.pk), "metric_threshold": "0.5"},
    )
    assert refused.status_code == 422
    assert "A numeric question needs the value from which it passes." in _text(refused)
    nothing = lead.post(
        project_url(tenant, "alignment-mappings"), {"score_name": "", "config_id": ""}
    )
    assert nothing.status_code == 422
    assert "Automated score: its name is required." in _text(nothing)
    created = lead.post(
        project_url(tenant, "alignment-mappings"),
        {"score_name": "judge-helpful", "source_version": "v1", "config_id": str(config.pk),
         "metric_threshold": "0.5", "human_threshold": "0.5"},
    )  # fmt: skip
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        mapping = AlignmentMapping.objects.get(project=tenant.project)
        assert mapping.source_version == "v1" and mapping.human_threshold == 0.5
        alignment.alignment_refresh(mapping_id=mapping.pk)
    listed = _text(lead.get(project_url(tenant, "alignment-mappings")))
    assert "judge-helpful v1 helpfulness" in listed and "8 0.750" in listed
    refreshed = lead.post(project_url(tenant, "alignment-refresh", alignment_mapping_pk=mapping.pk))
    assert refreshed.status_code == 302


def test_quality_settings_form(tenant):
    url = project_url(tenant, "reports-quality-settings")
    lead = signed_in(tenant.owner)
    page = _text(lead.get(url))
    assert "This project uses the site's defaults." in page
    bad = lead.post(url, {"agreement_threshold": "2", "alignment_threshold": "x", "window": "0"})
    assert bad.status_code == 422
    text = _text(bad)
    assert "Alignment threshold: a number is expected, not “x”." in text
    bad = lead.post(url, {"agreement_threshold": "2", "alignment_threshold": "0.5", "window": "0"})
    assert bad.status_code == 422
    text = _text(bad)
    assert "A coefficient between -1 and 1" in text and "from 1 to 50" in text
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not QualitySettings.objects.exists()
    saved = lead.post(
        url, {"agreement_threshold": "0.6", "alignment_threshold": "0.9", "window": "5"}
    )
    assert saved.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        row = QualitySettings.objects.get(project=tenant.project)
    assert (row.agreement_threshold, row.alignment_threshold, row.window) == (0.6, 0.9, 5)
    assert "Set for this project" in _text(lead.get(url))
    # The quality report states the project's thresholds.
    report = lead.get(project_url(tenant, "reports-quality")).content.decode()
    assert '<span id="agreement-threshold">0.60</span>' in report
    assert '<span id="alignment-threshold">0.90</span>' in report
    # Auditors read, cannot write; reviewers are refused.
    auditor = signed_in(tenant.auditor)
    assert auditor.get(url).status_code == 200
    assert auditor.post(url, {"agreement_threshold": "0.1"}).status_code == 403
    assert signed_in(tenant.reviewer).get(url).status_code == 403
