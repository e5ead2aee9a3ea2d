"""Every form of the lead's and quality pages walked with what people (and scripts)
send wrong: NUL, bytes that are no UTF-8, numbers past 64 bits, words for numbers,
unknown choices, another organization's rows, text too long, fields left out. Each
answers a 4xx with the field's reason on the page and writes nothing; none a 5xx.

The forms are also checked without the middleware (which refuses NUL first), and the
page modules for hand reads of ``request.POST``/``request.GET``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from hitl.audit import Actor
from hitl.forms import TextField
from hitl.tenancy import tenant_scope
from review.comparison.models import ComparisonItem, ComparisonQueue
from review.models import QueueItem, ReviewQueue, RoutingRule, ScoreConfig
from review.pages import lead_forms, rubric_forms
from review.quality import forms as calibration_forms
from review.quality.models import (
    AlignmentMapping,
    CalibrationRound,
    CalibrationSet,
    GoldAnswer,
    QualitySettings,
)
from review.quality.services import alignment, calibration
from review.services import routing
from tests.factories import Tenant
from tests.page_input import BAD_UTF8, HAND_READ, HUGE, NUL, UNSTORABLE, send
from tests.review.helpers import add_traces, make_config, make_queue, make_trace, membership_of

ROOT = Path(__file__).resolve().parents[2]
CATEGORICAL = {
    "data_type": "categorical",
    "options": [{"label": "Yes", "value": 1}, {"label": "No", "value": 0}],
    "min_value": None,
    "max_value": None,
    "step": None,
}


@dataclass
class Walk:
    """One form: its address, a valid base, the wrong values of each field, where the
    page shows a field's reason, and what must stay unwritten."""

    url: Callable[[Tenant, dict], str]
    valid: Callable[[dict], dict[str, Any]]
    wrong: Callable[[dict], dict[str, list[Any]]]
    shows: Callable[[Any, str], bool]
    state: Callable[[dict], Any]
    method: str = "post"
    missing: tuple[str, ...] = ()
    expected: tuple[int, ...] = (422,)


def on_form(key: str = "form") -> Callable[[Any, str], bool]:
    return lambda response, name: name in response.context[key].errors


def on_rule_form(response: Any, name: str) -> bool:
    return any(f["name"] == name and f["errors"] for f in response.context["rule_fields"])


def in_errors(labels: dict[str, str]) -> Callable[[Any, str], bool]:
    return lambda response, name: any(
        line.startswith(f"{labels[name]}:") for line in response.context["errors"]
    )


def on_scope_form(response: Any, name: str) -> bool:
    return any(name in row["scope_form"].errors for row in response.context["mappings"])


def project_url(name: str, **kwargs: str) -> Callable[[Tenant, dict], str]:
    return lambda t, rows: reverse(
        name,
        kwargs={"org_slug": t.organization.slug, "project_slug": t.project.slug}
        | {k: rows[v] for k, v in kwargs.items()},
    )


NUMBER = ["abc", "1e400", "nan"]
WHOLE = ["abc", HUGE, "1.5"]
LEVEL = {"level-0-label": "Good", "level-0-definition": "Right.", "level-0-examples": "Yes."}


def rubric_wrong(rows: dict, *, numbers: bool = True) -> dict[str, list[Any]]:
    """``numbers``: the question takes numbers (a kind without them neither reads nor
    refuses its hidden number fields)."""
    wrong = {
        "name": ["x" * 201],
        "data_type": ["pigeon"],
        "target": ["pigeon"],
        "options": ["Yes", "Yes = abc"],
        "scale": ["pigeon"],
        "level-0-label": ["x" * 201],
    }
    return wrong | ({"min_value": NUMBER, "step": NUMBER} if numbers else {})


def count(model: Any) -> Callable[[dict], int]:
    return lambda rows: model.objects.count()


def row_of(model: Any, key: str, attribute: str) -> Callable[[dict], Any]:
    return lambda rows: getattr(model.objects.get(pk=rows[key]), attribute)


WALKS: dict[str, Walk] = {
    "new rubric": Walk(
        url=project_url("lead-rubric-create"),
        valid=lambda r: (
            {"name": "tone", "data_type": "categorical", "options": "Yes = 1\nNo = 0"} | LEVEL
        ),
        wrong=lambda r: rubric_wrong(r, numbers=False),  # categorical: its numbers hidden
        missing=("data_type",),
        shows=on_form(),
        state=count(ScoreConfig),
    ),
    "rubric": Walk(
        url=project_url("lead-rubric", config_pk="numeric"),
        valid=lambda r: (
            {
                "name": "renamed",
                "data_type": "numeric",
                "min_value": "0",
                "max_value": "1",
                "step": "0.25",
            }
            | LEVEL
        ),
        wrong=lambda r: rubric_wrong(r) | {"archive": ["maybe"]},
        shows=lambda response, name: name == "archive" or name in response.context["form"].errors,
        state=row_of(ScoreConfig, "numeric", "version"),
    ),
    "new queue": Walk(
        url=project_url("lead-queue-create"),
        valid=lambda r: {"name": "second", "q-" + str(r["numeric"]): "on"},
        wrong=lambda r: {
            "name": ["x" * 201, "   "],
            "assignment_strategy": ["pigeon"],
            "overlap": [*WHOLE, "0"],
            "priority": [*WHOLE, str(2**31)],
            "lease_minutes": NUMBER,
            "audit_percent": [*NUMBER, "101"],
            f"pos-{r['numeric']}": NUMBER,
            f"tol-{r['numeric']}": [*NUMBER, "-1"],
            f"skills-{r['reviewer_membership']}": ["x" * 65],
        },
        missing=("name",),
        shows=on_form(),
        state=count(ReviewQueue),
    ),
    "queue": Walk(
        url=project_url("lead-queue-edit", queue_pk="queue"),
        valid=lambda r: {"name": "renamed"},
        wrong=lambda r: {"name": ["x" * 201], "overlap": WHOLE, "archive": ["maybe"]},
        missing=("name",),
        shows=lambda response, name: name == "archive" or name in response.context["form"].errors,
        state=row_of(ReviewQueue, "queue", "name"),
    ),
    "board": Walk(
        url=project_url("lead-items-update", queue_pk="queue"),
        valid=lambda r: {"item_id": [str(r["item"])], "priority": "5"},
        wrong=lambda r: {
            "item_id": ["abc", HUGE, "-1"],
            "column": ["pigeon"],
            "priority": [*WHOLE, str(2**31)],
            "assignee": ["pigeon", HUGE],
        },
        shows=on_form(),
        state=row_of(QueueItem, "item", "priority"),
    ),
    "new rule": Walk(
        url=project_url("lead-queue-rules", queue_pk="queue"),
        valid=lambda r: {"name": "errors", "filter": "status=error", "sampling_percent": "50"},
        wrong=lambda r: {
            "name": ["x" * 201],
            "signal": ["pigeon"],
            "filter": ["x" * 4001],
            "sampling_percent": [*NUMBER, "0", "101"],
            "daily_cap": [*WHOLE, "-1"],
            "item_priority": [*WHOLE, str(2**31)],
        },
        shows=on_rule_form,
        state=count(RoutingRule),
    ),
    "rule": Walk(
        url=project_url("lead-rule-edit", queue_pk="queue", rule_pk="rule"),
        valid=lambda r: {"name": "renamed", "filter": "status=error", "enabled": "on"},
        wrong=lambda r: {"signal": ["pigeon"], "sampling_percent": NUMBER, "daily_cap": WHOLE},
        shows=on_rule_form,
        state=row_of(RoutingRule, "rule", "name"),
    ),
    "rule preview": Walk(
        url=project_url("lead-rule-preview", queue_pk="queue"),
        method="get",
        valid=lambda r: {"filter": "status=error", "rule": str(r["rule"])},
        wrong=lambda r: {
            "sampling_percent": NUMBER,
            "daily_cap": WHOLE,
            "rule": ["abc", HUGE],
            "signal": ["pigeon"],
        },
        shows=in_errors(
            {
                "sampling_percent": "Sampling rate (%)",
                "daily_cap": "Daily cap",
                "rule": "Rule",
                "signal": "Signal",
            }
        ),
        state=count(RoutingRule),
        expected=(200,),
    ),
    "add matching traces": Walk(
        url=project_url("lead-bulk-add"),
        valid=lambda r: {"filter": "", "queue": str(r["queue"])},
        wrong=lambda r: {
            "queue": ["abc", HUGE, "-1", str(r["other_queue"])],
            "filter": ["x" * 4001],
        },
        missing=("queue",),
        shows=on_form(),
        state=count(QueueItem),
    ),
    "comparison questions": Walk(
        url=project_url("lead-queue-comparison", queue_pk="queue"),
        valid=lambda r: {"action": "setup", "criteria": "helpfulness", "n_way": "best"},
        wrong=lambda r: {"criteria": ["a\na", "x" * 101, "x" * 20_001], "n_way": ["pigeon"]},
        missing=("criteria",),
        shows=on_form("setup_form"),
        state=count(ComparisonQueue),
    ),
    "comparison items": Walk(
        url=project_url("lead-queue-comparison", queue_pk="queue"),
        valid=lambda r: {"action": "fill", "source": "traces", "group_by": "variant"},
        wrong=lambda r: {
            "source": ["pigeon"],
            "experiment_ids": ["1, x", HUGE],
            "group_by": ["x" * 101],
            "trace_ids": ["x" * 256],
            "priority": WHOLE,
        },
        missing=("source", "group_by"),
        shows=on_form("fill_form"),
        state=count(ComparisonItem),
    ),
    "new calibration set": Walk(
        url=project_url("calibration-sets"),
        valid=lambda r: {"name": "weekly", "config": [str(r["numeric"])], "min_accuracy": "0.8"},
        wrong=lambda r: {
            "name": ["x" * 201],
            "config": ["abc", HUGE, str(r["other_config"])],
            "min_accuracy": NUMBER,
            "min_agreement": NUMBER,
        },
        missing=("name",),
        shows=on_form(),
        state=count(CalibrationSet),
    ),
    "calibration thresholds": Walk(
        url=project_url("calibration-set", calibration_set_pk="set"),
        valid=lambda r: {"min_accuracy": "0.9"},
        wrong=lambda r: {
            "min_accuracy": NUMBER,
            "min_agreement": NUMBER,
            f"tolerance-{r['numeric']}": [*NUMBER, "-1"],
        },
        missing=("min_accuracy",),
        shows=on_form("thresholds"),
        state=row_of(CalibrationSet, "set", "min_accuracy"),
    ),
    "gold answers": Walk(
        url=project_url("calibration-gold", calibration_set_pk="set"),
        valid=lambda r: {
            "trace": r["trace"],
            f"q-{r['numeric']}": "0.5",
            f"q-{r['categorical']}": "Yes",
        },
        wrong=lambda r: {
            "trace": ["nope", r["other_trace"], "x" * 401],
            f"q-{r['numeric']}": NUMBER,
            f"q-{r['categorical']}": ["pigeon"],
        },
        missing=("trace",),
        shows=on_form(),
        state=count(GoldAnswer),
    ),
    "calibration round": Walk(
        url=project_url("calibration-round-start", calibration_set_pk="set"),
        valid=lambda r: {"reviewer": [str(r["reviewer"])]},
        wrong=lambda r: {"reviewer": ["abc", HUGE, str(r["other_reviewer"])]},
        shows=on_form(),
        state=count(CalibrationRound),
    ),
    "new alignment mapping": Walk(
        url=project_url("alignment-mappings"),
        valid=lambda r: {
            "score_name": "faithfulness",
            "config_id": str(r["numeric"]),
            "metric_threshold": "0.5",
            "human_threshold": "0.5",
        },
        wrong=lambda r: {
            "score_name": ["x" * 257],
            "source_version": ["x" * 129],
            "config_id": ["abc", HUGE, str(r["other_config"])],
            "metric_threshold": NUMBER,
            "human_pass_labels": ["x" * 201],
            "scope": ["pigeon"],
            "queue": ["abc", HUGE, str(r["other_queue"])],
        },
        missing=("score_name", "config_id"),
        shows=on_form(),
        state=count(AlignmentMapping),
    ),
    "alignment scope": Walk(
        url=project_url("alignment-scope", alignment_mapping_pk="mapping"),
        valid=lambda r: {"scope": "all"},
        wrong=lambda r: {"scope": ["pigeon"], "queue": ["abc", HUGE, str(r["other_queue"])]},
        shows=on_scope_form,
        state=row_of(AlignmentMapping, "mapping", "scope"),
    ),
    "quality settings": Walk(
        url=project_url("reports-quality-settings"),
        valid=lambda r: {
            "agreement_threshold": "0.5",
            "alignment_threshold": "0.5",
            "window": "5",
        },
        wrong=lambda r: {
            "agreement_threshold": NUMBER,
            "alignment_threshold": NUMBER,
            "window": [*WHOLE, "-1"],
        },
        missing=("agreement_threshold", "alignment_threshold", "window"),
        shows=on_form(),
        state=count(QualitySettings),
    ),
}


def rows_for(tenant: Tenant, other: Tenant) -> dict[str, Any]:
    numeric = make_config(tenant)
    categorical = make_config(tenant, **CATEGORICAL)
    queue = make_queue(tenant, configs=[numeric, categorical])
    (item,) = add_traces(tenant, queue, 1)
    trace = make_trace(tenant)
    actor = Actor(user=tenant.owner)
    other_config = make_config(other)
    other_queue = make_queue(other, configs=[other_config])
    other_trace = make_trace(other)
    with tenant_scope(tenant.organization.pk):
        rule = routing.routing_rule_create(
            actor=actor,
            project=tenant.project,
            queue_id=queue.pk,
            name="errors",
            signal="other",
            filter_params={"status": ["error"]},
        )
        calibration_set = calibration.calibration_set_create(
            actor=actor,
            project=tenant.project,
            name="weekly",
            config_ids=[numeric.pk, categorical.pk],
        )
        mapping = alignment.alignment_mapping_create(
            actor=actor,
            project=tenant.project,
            score_name="faithfulness",
            config_id=numeric.pk,
            metric_threshold=0.5,
            human_threshold=0.5,
        )
    return {
        "numeric": numeric.pk,
        "categorical": categorical.pk,
        "queue": queue.pk,
        "item": item.pk,
        "trace": trace.external_id,
        "rule": rule.pk,
        "set": calibration_set.pk,
        "mapping": mapping.pk,
        "reviewer": tenant.reviewer.pk,
        "reviewer_membership": membership_of(tenant, tenant.reviewer).pk,
        "other_config": other_config.pk,
        "other_queue": other_queue.pk,
        "other_trace": other_trace.external_id,
        "other_reviewer": other.reviewer.pk,
    }


@pytest.mark.parametrize("name", list(WALKS))
def test_each_form_refuses_what_is_wrong_beside_the_field(name, tenant, other_tenant):
    walk = WALKS[name]
    rows = rows_for(tenant, other_tenant)
    client = Client()
    client.force_login(tenant.owner)
    url = walk.url(tenant, rows)

    def state() -> Any:
        with tenant_scope(tenant.organization.pk):
            return walk.state(rows)

    before = state()
    valid = walk.valid(rows)
    wrong = walk.wrong(rows)
    cases = [(field, value, True) for field, values in wrong.items() for value in values]
    every_field = sorted({*valid, *wrong})
    cases += [(field, NUL, False) for field in every_field]
    for field, value, shown in cases:
        response = send(client, walk.method, url, {**valid, field: value})
        what = f"{name}: {field}={value!r}"
        assert response.status_code in ((400,) if value == NUL else walk.expected), what
        if shown:
            assert walk.shows(response, field), what
    for field in walk.missing:
        left = {k: v for k, v in valid.items() if k != field}
        response = send(client, walk.method, url, left)
        assert response.status_code in walk.expected, f"{name}: without {field}"
        assert walk.shows(response, field), f"{name}: without {field}"
    assert state() == before, f"{name}: something was written"
    # Bytes that are no UTF-8 decode as U+FFFD: text that may well be valid, never a 5xx.
    for field in every_field:
        response = send(client, walk.method, url, {**valid, field: BAD_UTF8})
        assert response.status_code < 500, f"{name}: {field} not UTF-8"


def test_a_refused_queue_field_is_marked_and_what_was_typed_kept(tenant, other_tenant):
    rows = rows_for(tenant, other_tenant)
    client = Client()
    client.force_login(tenant.owner)
    url = WALKS["new queue"].url(tenant, rows)
    response = client.post(url, {"name": "nightly", "overlap": "abc", "priority": "7"})
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="q-overlap-error"' in page and 'aria-describedby="q-overlap-error"' in page
    assert 'value="nightly"' in page and 'value="7"' in page


def test_a_refused_rubric_level_is_marked_in_its_row(tenant):
    client = Client()
    client.force_login(tenant.owner)
    url = project_url("lead-rubric-create")(tenant, {})
    response = client.post(
        url,
        {
            "name": "tone",
            "data_type": "categorical",
            "options": "Yes = 1",
            **LEVEL,
            "level-1-label": "x" * 201,
            "level-2-label": "",
        },
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="l1-error"' in page and 'id="l0-error"' not in page
    assert 'value="Good"' in page and 'id="l4-label"' not in page


def make_forms(tenant: Tenant, other: Tenant) -> list[forms.Form]:
    rows = rows_for(tenant, other)
    with tenant_scope(tenant.organization.pk):
        configs = list(ScoreConfig.objects.filter(pk__in=[rows["numeric"], rows["categorical"]]))
        questions = [
            {"config_id": c.pk, "name": c.name, "data_type": c.data_type, "options": ["Yes"]}
            for c in configs
        ]
        return [
            rubric_forms.RubricForm,
            lambda data: lead_forms.QueueForm(data, configs=configs, candidates=[]),
            lead_forms.RoutingRuleForm,
            lambda data: lead_forms.BulkAddForm(data, project=tenant.project),
            lambda data: calibration_forms.CalibrationSetForm(data, configs=configs),
            lambda data: calibration_forms.GoldAnswerForm(
                data, project=tenant.project, questions=questions
            ),
            lambda data: calibration_forms.AlignmentMappingForm(data, configs=configs),
        ]


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_the_forms_refuse_unstorable_text_without_the_middleware(bad, tenant, other_tenant):
    for make in make_forms(tenant, other_tenant):
        with tenant_scope(tenant.organization.pk):
            form = make({})
            text_fields = [n for n, f in form.fields.items() if isinstance(f, TextField)]
            assert text_fields, make
            form = make({name: bad for name in text_fields})
            assert not form.is_valid()
            for name in text_fields:
                assert name in form.errors, (make, name)


PAGE_MODULES = [
    "review/pages/lead.py",
    "review/pages/board.py",
    "review/pages/routing.py",
    "review/quality/pages/calibration.py",
    "review/quality/pages/report.py",
    "review/pages/reviewer.py",
    "review/pages/review_actions.py",
    "review/pages/history.py",
    "review/comparison/pages.py",
]


@pytest.mark.parametrize("module", PAGE_MODULES)
def test_pages_read_input_only_through_forms(module):
    source = (ROOT / module).read_text()
    assert not HAND_READ.findall(source), f"{module} reads request input by hand"
