"""Routing rules and adding matching traces to a queue build their filter with the
explorer's condition rows (``traces.filter_builder``): a rule built on the page is the
rule posted to the API; a score condition on a name the project has no score of is
refused with its reason (it would match nothing); the preview says nothing in red
before a condition is given; each trace in the preview and the promote list is named
by its external id, start time and an input snippet."""

from __future__ import annotations

import datetime as dt

from django.utils.html import escape

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import ItemStatus, QueueItem, RoutingRule
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_queue
from tests.review.test_api import base
from tests.traces.read_builders import make_score, make_trace
from traces.models import Trace

ROWS = {
    "cf": ["score", "feedback", "tags", ""],
    "ck": ["faithfulness", "", "", ""],
    "co": ["lt", "is", "has", ""],
    "cv": ["0.5", "thumbs_down", "billing", ""],
}
API_FILTER = {"score": ["faithfulness<0.5"], "feedback": "thumbs_down", "tags": ["billing"]}


def _scored_trace(tenant, external_id="t-1", **fields):
    trace = make_trace(tenant.project, external_id, **fields)
    make_score(trace, "faithfulness", 0.2)
    return trace


def test_a_rule_built_with_rows_is_the_rule_posted_to_the_api(tenant, client_for):
    _scored_trace(tenant)
    queue = make_queue(tenant)
    page = signed_in(tenant.admin)
    built = page.post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "Built", "signal": "low_score", "sampling_percent": "100", **ROWS},
    )
    assert built.status_code == 302, built.content.decode()[:2000]
    posted = client_for(tenant.owner).post(
        f"{base(tenant)}/routing-rules/",
        {"name": "Posted", "queue_id": queue.pk, "signal": "low_score",
         "filter_params": API_FILTER},
        format="json",
    )  # fmt: skip
    assert posted.status_code == 201, posted.content
    with tenancy.tenant_scope(tenant.organization.pk):
        rules = {r.name: r.filter_params for r in RoutingRule.objects.filter(queue=queue)}
    assert rules["Built"] == rules["Posted"]
    assert rules["Built"]["score"] == ["faithfulness<0.5"]

    # The edit page shows the saved filter as rows again, with its chips.
    with tenancy.tenant_scope(tenant.organization.pk):
        pk = RoutingRule.objects.get(name="Built").pk
    edit = page.get(project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=pk))
    fields = [c["row"].field for c in edit.context["conditions"]]
    assert sorted(fields) == ["feedback", "score", "tags"]
    body = edit.content.decode()
    assert escape("faithfulness < 0.5") in body and 'id="rule-chips"' in body
    # The typed (advanced) filter holds together with the rows.
    both = page.post(
        project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=pk),
        {"name": "Built", "signal": "low_score", "sampling_percent": "100",
         "filter": "status=error", **ROWS},
    )  # fmt: skip
    assert both.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        saved = RoutingRule.objects.get(pk=pk).filter_params
    assert saved == {**API_FILTER, "status": "error"}


def test_an_unknown_score_name_is_refused_on_the_page_the_api_the_preview_and_bulk_add(
    tenant, client_for
):
    _scored_trace(tenant)
    queue = make_queue(tenant)
    page = signed_in(tenant.admin)
    rows = {"cf": ["score"], "ck": ["faithfulnes"], "co": ["lt"], "cv": ["0.5"]}
    refused = page.post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "Typo", "signal": "low_score", **rows},
    )
    assert refused.status_code == 422
    (condition,) = refused.context["conditions"]
    assert condition["errors"] == [
        "no score named “faithfulnes” in this project; choose one of its score names."
    ]
    assert 'class="condition has-error"' in refused.content.decode()

    api = client_for(tenant.owner).post(
        f"{base(tenant)}/routing-rules/",
        {"name": "Typo", "queue_id": queue.pk, "signal": "low_score",
         "filter_params": {"score": ["faithfulnes<0.5"]}},
        format="json",
    )  # fmt: skip
    assert api.status_code == 400
    assert "faithfulnes" in str(api.json()["error"]["details"]["filter_params"]["score"])

    preview = page.get(project_url(tenant, "lead-rule-preview", queue_pk=queue.pk), rows)
    assert preview.context["preview"] is None
    assert any("no score named “faithfulnes”" in e for e in preview.context["errors"])

    bulk = page.get(project_url(tenant, "lead-bulk-add"), rows)
    assert bulk.context["matched"] is None
    assert bulk.context["conditions"][0]["errors"]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not RoutingRule.objects.filter(queue=queue).exists()


def test_the_preview_is_quiet_until_a_condition_is_given(tenant):
    queue = make_queue(tenant)
    page = signed_in(tenant.admin)
    url = project_url(tenant, "lead-rule-preview", queue_pk=queue.pk)
    empty = page.get(url).content.decode()
    assert 'id="preview-empty"' in empty and "errorlist" not in empty
    unfinished = page.get(url, {"cf": ["tags"], "co": ["has"], "cv": [""]}).content.decode()
    assert 'id="preview-unfinished"' in unfinished and "errorlist" not in unfinished
    assert "Give a value." in unfinished


def test_each_signal_starts_its_condition(tenant):
    _scored_trace(tenant)
    queue = make_queue(tenant)
    page = signed_in(tenant.admin).get(project_url(tenant, "lead-queue-rules", queue_pk=queue.pk))
    options = {o["value"]: o["preset"] for o in page.context["signal_options"]}
    assert options["low_score"] == {"field": "score", "op": "lt", "value": "0.5",
                                    "key": "faithfulness"}  # fmt: skip
    assert options["thumbs_down"]["field"] == "feedback"
    assert options["other"] is None
    body = page.content.decode()
    assert "data-signal-presets" in body and 'data-field="feedback"' in body


def test_bulk_add_builds_its_filter_with_rows_and_adds_what_it_counted(tenant):
    _scored_trace(tenant, "t-hit", status="error")
    _scored_trace(tenant, "t-miss")
    queue = make_queue(tenant)
    page = signed_in(tenant.admin)
    url = project_url(tenant, "lead-bulk-add")
    counted = page.get(url, {"cf": ["status", ""], "ck": ["", ""], "co": ["is", ""],
                             "cv": ["error", ""]})  # fmt: skip
    assert counted.context["matched"] == 1
    assert counted.context["query"] == "status=error"
    assert [c["chip"] for c in counted.context["conditions"]] == ["status is error"]
    # From the explorer's link (a typed filter), the rows show that filter.
    linked = page.get(url, {"filter": "status=error"})
    assert [c["row"].field for c in linked.context["conditions"]] == ["status"]
    added = page.post(url, {"filter": counted.context["query"], "queue": queue.pk})
    assert added.status_code == 302


def test_bulk_add_offers_a_routing_rule_from_the_same_filter(tenant):
    _scored_trace(tenant, "t-hit", status="error")
    queue = make_queue(tenant, name="Refunds")
    page = signed_in(tenant.admin)
    counted = page.get(
        project_url(tenant, "lead-bulk-add"), {"filter": "status=error&score=faithfulness<0.5"}
    )
    rules_url = project_url(tenant, "lead-queue-rules", queue_pk=queue.pk)
    link = f"{rules_url}?filter=status%3Derror%26score%3Dfaithfulness%253C0.5"
    assert escape(link) in counted.content.decode()
    # The rule page opens with that filter as its rows, and its preview counts the match.
    rule_page = page.get(link)
    assert sorted(c["chip"] for c in rule_page.context["conditions"]) == [
        "faithfulness < 0.5",
        "status is error",
    ]
    # Without a filter there is nothing to route by: no offer.
    plain = page.get(project_url(tenant, "lead-bulk-add"))
    assert "rule-from-filter" not in plain.content.decode()


def test_the_routing_preview_and_the_promote_list_name_each_trace(tenant):
    started = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)
    make_trace(
        tenant.project,
        "ext-42",
        name="chat",
        status="error",
        start_time=started,
        input={"messages": [{"role": "user", "content": "Is ibuprofen safe with warfarin?"}]},
    )
    queue = make_queue(tenant)
    page = signed_in(tenant.admin)
    preview = page.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"cf": ["status"], "co": ["is"], "cv": ["error"]},
    ).content.decode()
    assert "ext-42" in preview and "2026-03-04 05:06" in preview
    assert "Is ibuprofen safe with warfarin?" in preview

    # The promote list's reviewed items are named the same way.
    with tenancy.tenant_scope(tenant.organization.pk):
        trace = Trace.objects.get(external_id="ext-42")
        item = services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        QueueItem.objects.filter(pk=item.pk).update(status=ItemStatus.COMPLETE)
    promote = page.get(project_url(tenant, "datasets-promote")).content.decode()
    row = promote[promote.index('id="reviewed-table"') :]
    assert "ext-42" in row and "2026-03-04 05:06" in row
    assert "Is ibuprofen safe with warfarin?" in row
