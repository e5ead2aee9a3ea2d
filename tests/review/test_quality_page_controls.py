"""Three settings a lead makes on the pages, end to end: a numeric question's
calibration tolerance (set with the gold answers, used and shown by round scoring),
nominal or ordinal on a categorical question (the rubric form, shown in the agreement
report), and whose answers an alignment mapping counts (the alignment page, shown in
the report). Input goes through forms: a bad value answers the page with the field's
reason (422), never a 500; writes carry the acting user."""

from __future__ import annotations

import html
import re

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueItem, ScoreConfig
from review.quality.models import AlignmentMapping, CalibrationRound, CalibrationSet
from review.quality.services import agreement, alignment, calibration
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue, make_trace

LEVELS = ["low", "mid", "high"]


def _text(response) -> str:
    """The page's text without tags, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(body))


def _categorical(tenant, name: str, **extra):
    return make_config(
        tenant, name=name, data_type="categorical", min_value=None, max_value=None, step=None,
        options=[{"label": label, "value": float(i)} for i, label in enumerate(LEVELS)], **extra,
    )  # fmt: skip


# --- calibration tolerance ---------------------------------------------------------------------


def _tolerance_world(tenant):
    """A set asking a 0-100 score (gold 73, 40) and a label; one reviewer answers 72
    and 44 in a round."""
    score = make_config(tenant, name="score", min_value=0.0, max_value=100.0, step=None)
    label = _categorical(tenant, "verdict")
    traces = [make_trace(tenant, external_id=f"gold-{i}") for i in range(2)]
    (reviewer,) = add_reviewers(tenant, 1)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        row = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name="numbers",
            config_ids=[score.pk, label.pk], min_accuracy=0.5,
        )  # fmt: skip
        for trace, gold in zip(traces, (73.0, 40.0), strict=True):
            calibration.gold_answer_set(
                actor=owner, calibration_set=row, trace_id=trace.pk,
                values={str(score.pk): gold, str(label.pk): "mid"},
            )  # fmt: skip
    return row, score, label, traces, reviewer


def _play_round(tenant, row, score, label, reviewer, answers) -> CalibrationRound:
    with tenancy.tenant_scope(tenant.organization.pk):
        round_ = calibration.calibration_round_start(
            actor=Actor(user=tenant.owner), calibration_set=row, reviewer_ids=[reviewer.pk]
        )
        actor = Actor(user=reviewer)
        while (lease := services.queue_claim_next(actor=actor, queue=round_.queue)) is not None:
            trace_id = QueueItem.objects.get(pk=lease.item_id).trace_id
            services.assignment_submit(
                actor=actor, assignment_id=lease.pk,
                values={str(score.pk): answers[trace_id], str(label.pk): "mid"},
            )  # fmt: skip
    return round_


def test_the_lead_sets_a_tolerance_on_the_set_page_and_the_round_is_scored_with_it(tenant):
    row, score, label, traces, reviewer = _tolerance_world(tenant)
    lead = signed_in(tenant.admin)
    set_url = project_url(tenant, "calibration-set", calibration_set_pk=row.pk)
    field = f"tolerance-{score.pk}"

    page = lead.get(set_url)
    assert page.status_code == 200
    body = page.content.decode()
    # Only the numeric question takes a tolerance; none yet: equal to gold.
    assert f'name="{field}"' in body and f'name="tolerance-{label.pk}"' not in body
    assert "score only when equal to gold" in _text(page)

    # Bad input answers the page with the field's reason, and nothing is saved.
    for bad, reason in (("-1", "greater than or equal to 0"), ("lots", "A number is expected"),
                        ("inf", "A number is expected")):  # fmt: skip
        refused = lead.post(set_url, {"min_accuracy": "0.5", field: bad})
        assert refused.status_code == 422, bad
        assert f'id="id_{field}-error"' in refused.content.decode()
        assert reason in _text(refused)
        assert f'value="{bad}"' in refused.content.decode()  # what was typed, to mend
    refused = lead.post(set_url, {"min_accuracy": "1.5", field: "1"})
    assert refused.status_code == 422
    assert 'id="t-accuracy-error"' in refused.content.decode()
    assert "min_accuracy is a fraction between 0 and 1" in _text(refused)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert CalibrationSet.objects.get(pk=row.pk).tolerances == {}

    saved = lead.post(set_url, {"min_accuracy": "0.5", "description": "d", field: "1"})
    assert saved.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        row.refresh_from_db()
        assert row.tolerances == {str(score.pk): 1.0}
        assert row.history.latest("history_date").history_user == tenant.admin
    page = _text(lead.get(set_url))
    assert "score within ± 1 of gold" in page
    assert "Gold answer: score (right within ± 1)" in page

    # 72 against gold 73 is right within 1; 44 against 40 is not.
    answers = {traces[0].pk: 72.0, traces[1].pk: 44.0}
    round_ = _play_round(tenant, row, score, label, reviewer, answers)
    round_url = project_url(tenant, "calibration-round", calibration_round_pk=round_.pk)
    before = _text(lead.get(round_url))
    assert "the set's tolerances, used by the next scoring" in before
    assert (
        lead.post(
            project_url(tenant, "calibration-round-score", calibration_round_pk=round_.pk)
        ).status_code
        == 302
    )
    scored = lead.get(round_url)
    assert "(as this round was scored): score within ± 1 of gold" in _text(scored)
    [result] = scored.context["detail"]["reviewers"]
    assert (result["result"].answered, result["result"].correct) == (4, 3)

    # Emptying the field takes the tolerance away; the scored round keeps its own.
    assert lead.post(set_url, {"min_accuracy": "0.5", field: ""}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        row.refresh_from_db()
    assert row.tolerances == {}
    assert "(as this round was scored): score within ± 1 of gold" in _text(lead.get(round_url))


def test_an_auditor_sees_the_tolerance_and_may_not_set_it(tenant):
    row, score, _label, _traces, _reviewer = _tolerance_world(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        calibration.calibration_set_update(
            actor=Actor(user=tenant.owner), calibration_set=row, min_accuracy=0.5,
            min_agreement=None, tolerances={str(score.pk): 2.5},
        )  # fmt: skip
    auditor = signed_in(tenant.auditor)
    set_url = project_url(tenant, "calibration-set", calibration_set_pk=row.pk)
    page = auditor.get(set_url)
    assert page.status_code == 200
    assert "score within ± 2.5 of gold" in _text(page)
    assert 'id="thresholds-form"' not in page.content.decode()
    assert (
        auditor.post(set_url, {"min_accuracy": "0.5", f"tolerance-{score.pk}": "9"}).status_code
        == 403
    )


# --- nominal or ordinal ------------------------------------------------------------------------

RUBRIC_POST = {
    "name": "Severity",
    "data_type": "categorical",
    "target": "trace",
    "options": "low = 0\nmid = 1\nhigh = 2",
    "level-0-label": "low",
    "level-0-definition": "Harmless.",
    "level-0-examples": "A typo.",
}


def test_the_rubric_form_makes_ordinal_an_explicit_choice_shown_in_the_agreement_report(tenant):
    lead = signed_in(tenant.admin)
    create_url = project_url(tenant, "lead-rubric-create")
    form = lead.get(create_url).content.decode()
    # Both choices offered; a new question starts unordered.
    assert 'id="r-scale-nominal" checked' in form and 'id="r-scale-ordinal"' in form

    refused = lead.post(create_url, RUBRIC_POST | {"scale": "sideways"})
    assert refused.status_code == 422
    assert 'id="r-scale-error"' in refused.content.decode()
    assert "Choose unordered categories or ordered levels." in _text(refused)
    same = RUBRIC_POST | {"scale": "ordinal", "options": "low = 1\nmid = 1\nhigh = 2"}
    refused = lead.post(create_url, same)
    assert refused.status_code == 422
    assert 'id="r-scale-error"' in refused.content.decode()
    assert "Ordered options need distinct values" in _text(refused)
    assert 'id="r-scale-ordinal" checked' in refused.content.decode()  # as posted
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ScoreConfig.objects.filter(project=tenant.project).exists()

    created = lead.post(create_url, RUBRIC_POST | {"scale": "ordinal"})
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(project=tenant.project, name="Severity")
    assert config.ordered is True
    assert 'id="r-scale-ordinal" checked' in lead.get(created["Location"]).content.decode()
    assert "(ordered levels)" in _text(lead.get(project_url(tenant, "lead-rubrics")))

    # Two reviewers answer two items; the report reads the answers as ordinal.
    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    add_traces(tenant, queue, 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        for user, answer in zip(reviewers, ("low", "mid"), strict=True):
            actor = Actor(user=user)
            while (lease := services.queue_claim_next(actor=actor, queue=queue)) is not None:
                services.assignment_submit(
                    actor=actor, assignment_id=lease.pk, values={str(config.pk): answer}
                )
        agreement.agreement_refresh(queue_id=queue.pk, force=True, resamples=10)
    report = _text(lead.get(project_url(tenant, "reports-quality")))
    assert "Answers read as ordered levels (ordinal): near answers nearly agree." in report

    # Switched to nominal (a new version): the report says the next one reads it so.
    edited = lead.post(created["Location"], RUBRIC_POST | {"scale": "nominal"})
    assert edited.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        config.refresh_from_db()
        assert (config.ordered, config.version) == (False, 2)
        assert config.history.latest("history_date").history_user == tenant.admin
    report = _text(lead.get(project_url(tenant, "reports-quality")))
    assert "the question is now unordered categories (nominal)" in report

    # An edit that leaves the choice out keeps it.
    assert lead.post(created["Location"], RUBRIC_POST | {"scale": "ordinal"}).status_code == 302
    kept = RUBRIC_POST | {"level-0-definition": "Harmless, cosmetic."}
    assert lead.post(created["Location"], kept).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        config.refresh_from_db()
    assert (config.ordered, config.version) == (True, 4)


# --- alignment scope ---------------------------------------------------------------------------


def test_the_alignment_page_sets_the_scope_and_the_report_states_it(tenant, other_tenant):
    config = _categorical(tenant, "correct")
    queue = make_queue(tenant, configs=[config], name="live")
    foreign = make_queue(other_tenant, configs=[_categorical(other_tenant, "x")], name="theirs")
    lead = signed_in(tenant.admin)
    url = project_url(tenant, "alignment-mappings")
    page = lead.get(url).content.decode()
    assert 'id="scope-new-production" checked' in page and 'id="scope-new-all"' in page

    mapping_post = {"score_name": "judge", "config_id": str(config.pk), "human_pass_labels": "high"}
    refused = lead.post(url, mapping_post | {"scope": "everyone"})
    assert refused.status_code == 422
    assert 'id="scope-new-error"' in refused.content.decode()
    assert "Choose production answers or every answer." in _text(refused)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not AlignmentMapping.objects.exists()

    assert lead.post(url, mapping_post | {"scope": "all"}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        mapping = AlignmentMapping.objects.get(score_name="judge")
        assert (mapping.scope, mapping.queue_id) == ("all", None)
        alignment.alignment_refresh(mapping_id=mapping.pk)
    listed = _text(lead.get(url))
    assert "every answer to the question" in listed
    report = _text(lead.get(project_url(tenant, "reports-quality")))
    assert "Answers counted: every answer to the question." in report

    scope_url = project_url(tenant, "alignment-scope", alignment_mapping_pk=mapping.pk)
    for bad in ({"scope": "production", "queue": str(foreign.pk)},
                {"scope": "production", "queue": "x"}, {"scope": "nobody"}):  # fmt: skip
        refused = lead.post(scope_url, bad)
        assert refused.status_code == 422, bad
        assert f'id="scope-{mapping.pk}-' in refused.content.decode()
        assert "field-error" in refused.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        mapping.refresh_from_db()
        assert mapping.scope == "all"

    changed = lead.post(scope_url, {"scope": "production", "queue": str(queue.pk)})
    assert changed.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        mapping.refresh_from_db()
        assert (mapping.scope, mapping.queue_id) == ("production", queue.pk)
        assert mapping.history.latest("history_date").history_user == tenant.admin
        alignment.alignment_refresh(mapping_id=mapping.pk)
    listed = _text(lead.get(url))
    assert "production answers in the queue “live”" in listed
    report = _text(lead.get(project_url(tenant, "reports-quality")))
    assert "Answers counted: production answers in the queue live" in report

    # Auditors read the scope, never change it; another project's mapping is a 404.
    auditor = signed_in(tenant.auditor)
    assert "production answers" in _text(auditor.get(url))
    assert auditor.post(scope_url, {"scope": "all"}).status_code == 403
    outsider = signed_in(other_tenant.admin)
    other_url = project_url(other_tenant, "alignment-scope", alignment_mapping_pk=mapping.pk)
    assert outsider.post(other_url, {"scope": "all"}).status_code == 404


@pytest.mark.parametrize("scope", ["production", "all"])
def test_the_create_form_keeps_the_chosen_scope_when_another_field_is_refused(tenant, scope):
    config = _categorical(tenant, "correct")
    refused = signed_in(tenant.admin).post(
        project_url(tenant, "alignment-mappings"),
        {"score_name": "", "config_id": str(config.pk), "scope": scope},
    )
    assert refused.status_code == 422
    assert f'id="scope-new-{scope}" checked' in refused.content.decode()
