"""Thread rules: routing rules that put whole conversations (threads) into queues when
their turns meet the rule's conditions (a thumbs-down, a number of turns, an error,
ended after a time idle, a trace filter on any turn), each thread once per queue, with
the rule's sampling, daily cap, priority and reason; the periodic run fires a rule on
conversations that ended without new ingestion; the preview, the API and the lead's page
say the same."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError
from review import services, tasks
from review.models import QueueItem, ReviewQueue, RoutingRule, RoutingRuleDay
from review.services.thread_routing import thread_conditions_check, thread_conditions_words
from tests.factories import Tenant
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_queue, make_span, make_trace
from traces.models import Feedback, Thread, Trace

_n = itertools.count(1)


def base(tenant: Tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def make_thread(
    tenant: Tenant,
    turns: int = 2,
    *,
    idle_minutes: float = 0,
    first_input: Any = None,
    **trace_fields: Any,
) -> tuple[Thread, list[Trace]]:
    """A conversation of ``turns`` traces whose latest activity was ``idle_minutes`` ago."""
    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id=f"conv-{next(_n)}")
    traces = []
    for i in range(turns):
        fields = dict(trace_fields)
        if i == 0 and first_input is not None:
            fields["input"] = first_input
        traces.append(make_trace(tenant, thread=thread, **fields))
    if idle_minutes:
        at = timezone.now() - timedelta(minutes=idle_minutes)
        with tenancy.tenant_scope(tenant.organization.pk):
            Trace.objects.filter(thread=thread).update(created_at=at, updated_at=at)
    return thread, traces


def thumbs_down(tenant: Tenant, trace: Trace, value: float = -1) -> None:
    with tenancy.tenant_scope(tenant.organization.pk):
        Feedback.objects.create(project=tenant.project, trace=trace, kind="thumbs", value=value)


def thread_rule(
    tenant: Tenant, queue: ReviewQueue, conditions: dict[str, Any], **fields: Any
) -> RoutingRule:
    fields.setdefault("name", f"threads {next(_n)}")
    fields.setdefault("signal", "other")
    fields.setdefault("filter_params", {})
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            target="thread",
            thread_conditions=conditions,
            **fields,
        )


def routed(tenant: Tenant, queue: ReviewQueue) -> dict[int, QueueItem]:
    """thread id -> its item in ``queue``."""
    with tenancy.tenant_scope(tenant.organization.pk):
        return {
            item.thread_id: item
            for item in QueueItem.objects.filter(queue=queue, target_type="thread")
        }


def sweep(tenant: Tenant) -> dict[int, int]:
    with tenancy.tenant_scope(tenant.organization.pk), transaction.atomic():
        return services.routing_apply_threads(project_id=tenant.project.pk)


def ingest(tenant: Tenant, traces: list[Trace]) -> dict[int, int]:
    with tenancy.tenant_scope(tenant.organization.pk), transaction.atomic():
        return services.routing_apply(
            project_id=tenant.project.pk, trace_ids=[t.pk for t in traces]
        )


# --- the conditions ------------------------------------------------------------------------


def test_each_condition_matches_its_threads_and_not_the_others(tenant):
    queues = {n: make_queue(tenant, name=n) for n in ("down", "long", "error", "ended", "filter")}
    down, down_turns = make_thread(tenant)
    thumbs_down(tenant, down_turns[1])
    _up, up_turns = make_thread(tenant)
    thumbs_down(tenant, up_turns[0], value=1)  # a thumbs-up never matches
    long, _ = make_thread(tenant, turns=4)
    failed, failed_turns = make_thread(tenant)
    make_span(failed_turns[1], status="error")  # an error in a span of a turn
    failed_trace, _ = make_thread(tenant, status="error")
    ended, _ = make_thread(tenant, idle_minutes=45)
    tagged, _ = make_thread(tenant, tags=["billing"])
    rules = {
        "down": thread_rule(tenant, queues["down"], {"thumbs_down": True}),
        "long": thread_rule(tenant, queues["long"], {"min_turns": 3}),
        "error": thread_rule(tenant, queues["error"], {"error": True}),
        "ended": thread_rule(tenant, queues["ended"], {"idle_minutes": 30}),
        "filter": thread_rule(tenant, queues["filter"], {}, filter_params={"tags": ["billing"]}),
    }

    result = sweep(tenant)

    assert set(routed(tenant, queues["down"])) == {down.pk}
    assert set(routed(tenant, queues["long"])) == {long.pk}
    assert set(routed(tenant, queues["error"])) == {failed.pk, failed_trace.pk}
    assert set(routed(tenant, queues["ended"])) == {ended.pk}
    assert set(routed(tenant, queues["filter"])) == {tagged.pk}
    assert result == {rules["down"].pk: 1, rules["long"].pk: 1, rules["error"].pk: 2,
                      rules["ended"].pk: 1, rules["filter"].pk: 1}  # fmt: skip
    item = routed(tenant, queues["long"])[long.pk]
    assert (item.source, item.routing_rule_id, item.target_type) == (
        "routing_rule", rules["long"].pk, "thread",
    )  # fmt: skip
    assert item.source_detail["reason"] == "4 turns (at least 3)"
    assert item.source_detail["target"] == "thread"
    assert item.source_detail["thread_conditions"] == {"min_turns": 3}
    assert routed(tenant, queues["down"])[down.pk].source_detail["reason"] == (
        "a thumbs-down in a turn, 2 turns"
    )


def test_conditions_hold_together(tenant):
    queue = make_queue(tenant)
    rule = thread_rule(tenant, queue, {"thumbs_down": True, "min_turns": 3, "idle_minutes": 30})
    both, turns = make_thread(tenant, turns=3, idle_minutes=60)
    thumbs_down(tenant, turns[0])
    with tenancy.tenant_scope(tenant.organization.pk):
        # Feedback's own time is not a turn: the thread stays idle.
        Trace.objects.filter(thread=both).update(updated_at=timezone.now() - timedelta(hours=1))
    _short, short_turns = make_thread(tenant, turns=2, idle_minutes=60)
    thumbs_down(tenant, short_turns[0])
    make_thread(tenant, turns=5, idle_minutes=60)  # happy: no thumbs-down

    assert sweep(tenant) == {rule.pk: 1}
    (item,) = routed(tenant, queue).values()
    assert item.thread_id == both.pk
    assert item.source_detail["reason"] == (
        "a thumbs-down in a turn, 3 turns (at least 3), idle for 1 hour (ended after 30 minutes)"
    )


def test_an_ended_conversation_fires_without_new_ingestion_and_an_active_one_waits(tenant):
    queue = make_queue(tenant)
    rule = thread_rule(tenant, queue, {"idle_minutes": 30, "min_turns": 2})
    active, active_turns = make_thread(tenant, idle_minutes=5)
    # Ingestion of its turns: still active, not routed.
    assert ingest(tenant, active_turns) == {}
    assert routed(tenant, queue) == {}
    assert sweep(tenant) == {}

    # 40 minutes later, no new turn: the periodic run (no ingestion) routes it, once.
    with tenancy.tenant_scope(tenant.organization.pk):
        Trace.objects.filter(thread=active).update(
            updated_at=timezone.now() - timedelta(minutes=40)
        )
    tasks.route_threads.apply()
    assert set(routed(tenant, queue)) == {active.pk}
    assert sweep(tenant) == {}
    assert len(routed(tenant, queue)) == 1
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRuleDay.objects.get(rule=rule).routed == 1

    # A conversation that ended long ago (before the run's window) is not picked up.
    make_thread(tenant, idle_minutes=30 + 2 * 24 * 60)
    assert sweep(tenant) == {}


def test_ingestion_routes_the_threads_of_new_traces_once_per_queue(tenant):
    queue, other_queue = make_queue(tenant, name="a"), make_queue(tenant, name="b")
    rule = thread_rule(tenant, queue, {"min_turns": 2}, item_priority=7)
    other = thread_rule(tenant, other_queue, {"min_turns": 2})
    thread, turns = make_thread(tenant, turns=2)
    assert ingest(tenant, turns) == {rule.pk: 1, other.pk: 1}
    # A new turn, the next run, ingestion again: still one item per queue.
    turns.append(make_trace(tenant, thread=thread))
    assert ingest(tenant, turns) == {}
    assert sweep(tenant) == {}
    assert list(routed(tenant, queue)) == [thread.pk]
    assert list(routed(tenant, other_queue)) == [thread.pk]
    assert routed(tenant, queue)[thread.pk].priority == 7
    # A trace without a thread is no thread rule's business.
    assert ingest(tenant, [make_trace(tenant)]) == {}


def test_the_daily_cap_and_sampling_apply_to_threads(tenant):
    capped_queue, sampled_queue = make_queue(tenant, name="capped"), make_queue(tenant, name="s")
    capped = thread_rule(tenant, capped_queue, {"min_turns": 1}, daily_cap=2)
    half = thread_rule(tenant, sampled_queue, {"min_turns": 1}, sampling_rate=0.5)
    threads = [make_thread(tenant, turns=1)[0] for _ in range(30)]
    result = sweep(tenant)
    assert result[capped.pk] == 2
    assert len(routed(tenant, capped_queue)) == 2
    assert 0 < result[half.pk] < 30
    sampled = set(routed(tenant, sampled_queue))
    assert sampled <= {t.pk for t in threads}
    # The cap is the day's: the next run adds none; the draw is the same every run.
    assert sweep(tenant) == {capped.pk: 0}
    assert set(routed(tenant, sampled_queue)) == sampled
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRuleDay.objects.get(rule=capped).routed == 2


def test_a_failing_thread_rule_does_not_stop_the_others(tenant):
    broken_queue, fine_queue = make_queue(tenant, name="a broken"), make_queue(tenant, name="b")
    broken = thread_rule(tenant, broken_queue, {"min_turns": 1})
    fine = thread_rule(tenant, fine_queue, {"min_turns": 1})
    trace_rule_queue = make_queue(tenant, name="c traces")
    with tenancy.tenant_scope(tenant.organization.pk):
        trace_rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner), project=tenant.project,
            queue_id=trace_rule_queue.pk, name="c", signal="other",
            filter_params={"status": "ok"},
        )  # fmt: skip
        # A filter an older release stored, refused now.
        RoutingRule.objects.filter(pk=broken.pk).update(filter_params={"status": "bogus"})
    thread, turns = make_thread(tenant, turns=1, status="ok")

    assert ingest(tenant, turns) == {fine.pk: 1, trace_rule.pk: 1}
    with tenancy.tenant_scope(tenant.organization.pk):
        failing = RoutingRule.objects.get(pk=broken.pk)
    assert failing.failing_since is not None and "status" in failing.last_error
    assert sweep(tenant) == {}
    assert set(routed(tenant, fine_queue)) == {thread.pk}
    assert routed(tenant, broken_queue) == {}


def test_another_organizations_threads_never_match(tenant, other_tenant):
    queue = make_queue(tenant)
    rule = thread_rule(tenant, queue, {"thumbs_down": True})
    theirs, their_turns = make_thread(other_tenant)
    thumbs_down(other_tenant, their_turns[0])
    ours, our_turns = make_thread(tenant)
    thumbs_down(tenant, our_turns[0])
    # Their traces named in our project's run: ignored.
    assert ingest(tenant, their_turns + our_turns) == {rule.pk: 1}
    assert set(routed(tenant, queue)) == {ours.pk}
    tasks.route_threads.apply()
    assert set(routed(tenant, queue)) == {ours.pk}
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert not QueueItem.objects.filter(thread=theirs).exists()


def test_the_thread_query_is_one_statement_whatever_the_number_of_threads(tenant):
    from django.test.utils import CaptureQueriesContext

    queue = make_queue(tenant)
    thread_rule(tenant, queue, {"thumbs_down": True, "error": True, "min_turns": 2})
    _, turns = make_thread(tenant, turns=2, status="error")
    thumbs_down(tenant, turns[0])
    sweep(tenant)  # the rule's day exists from here on
    for _ in range(5):
        _, turns = make_thread(tenant, turns=2, status="error")
        thumbs_down(tenant, turns[0])
    with CaptureQueriesContext(connection) as few:
        sweep(tenant)
    for _ in range(10):
        _, turns = make_thread(tenant, turns=2, status="error")
        thumbs_down(tenant, turns[0])
    with CaptureQueriesContext(connection) as more:
        sweep(tenant)
    assert len(routed(tenant, queue)) == 16
    assert len(more.captured_queries) == len(few.captured_queries)


# --- the one check -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"min_turns": -1}, "min_turns"),
        ({"min_turns": 0}, "min_turns"),
        ({"min_turns": 2.5}, "min_turns"),
        ({"min_turns": "3"}, "min_turns"),
        ({"min_turns": True}, "min_turns"),
        ({"min_turns": float("nan")}, "min_turns"),
        ({"min_turns": 10**30}, "min_turns"),
        ({"idle_minutes": float("inf")}, "idle_minutes"),
        ({"idle_minutes": -5}, "idle_minutes"),
        ({"idle_minutes": 10**12}, "idle_minutes"),
        ({"thumbs_down": "yes"}, "thumbs_down"),
        ({"error": 1}, "error"),
        ({"turns": 3}, "turns"),
        ({"min_turns\x00": 3}, "min_turns\\x00"),
    ],
)
def test_the_check_refuses_with_a_reason_per_key(raw, key):
    with pytest.raises(DomainError) as refused:
        thread_conditions_check(raw)
    assert key in refused.value.details


def test_the_check_normalizes_and_the_words_read_as_a_sentence():
    checked = thread_conditions_check(
        {"idle_minutes": 30, "min_turns": 3.0, "thumbs_down": True, "error": False}
    )
    assert checked == {"thumbs_down": True, "min_turns": 3, "idle_minutes": 30}
    assert list(checked) == ["thumbs_down", "min_turns", "idle_minutes"]
    assert thread_conditions_words(checked) == (
        "threads with a thumbs-down in any turn and at least 3 turns, ended after 30 minutes idle"
    )
    assert thread_conditions_words({"idle_minutes": 120}) == "threads ended after 2 hours idle"
    assert thread_conditions_words({"error": True}, "status is error") == (
        "threads with an error in any turn and a turn where status is error"
    )


def test_the_rule_services_refuse_what_a_thread_rule_cannot_be(tenant):
    queue = make_queue(tenant)
    with pytest.raises(DomainError) as empty:
        thread_rule(tenant, queue, {})
    assert "thread_conditions" in empty.value.details
    with pytest.raises(DomainError) as strategy:
        thread_rule(tenant, queue, {"min_turns": 2}, strategy="judges_disagree",
                    strategy_params={})  # fmt: skip
    assert "strategy" in strategy.value.details or "strategy_params" in strategy.value.details
    with pytest.raises(DomainError) as trace_rule, tenancy.tenant_scope(tenant.organization.pk):
        services.routing_rule_create(
            actor=Actor(user=tenant.owner), project=tenant.project, queue_id=queue.pk,
            name="t", signal="other", filter_params={"status": "error"},
            thread_conditions={"min_turns": 2},
        )  # fmt: skip
    assert "thread_conditions" in trace_rule.value.details

    # An edit to a trace rule starts from empty conditions; history records each edit.
    rule = thread_rule(tenant, queue, {"min_turns": 2}, filter_params={"status": "error"})
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_update(
            actor=Actor(user=tenant.owner), rule=rule, thread_conditions={"min_turns": 4}
        )
        assert rule.thread_conditions == {"min_turns": 4}
        rule = services.routing_rule_update(actor=Actor(user=tenant.owner), rule=rule,
                                            target="trace")  # fmt: skip
        assert (rule.target, rule.thread_conditions) == ("trace", {})
        assert rule.history.count() == 3


# --- the API -------------------------------------------------------------------------------


def test_the_api_creates_a_thread_rule_and_previews_its_threads(tenant, client_for):
    queue = make_queue(tenant)
    matching, turns = make_thread(
        tenant, turns=3, first_input={"messages": [{"role": "user", "content": "My card broke"}]}
    )
    thumbs_down(tenant, turns[2])
    make_thread(tenant, turns=3)  # no thumbs-down
    api = client_for(tenant.owner)
    body = {"target": "thread", "thread_conditions": {"thumbs_down": True, "min_turns": 3},
            "filter_params": {}}  # fmt: skip

    preview = api.post(f"{base(tenant)}/routing-rules/preview/", body, format="json")
    assert preview.status_code == 200, preview.content
    answer = preview.json()
    assert (answer["target"], answer["matched"], answer["exact"]) == ("thread", 1, False)
    (row,) = answer["threads"]
    assert row["thread_id"] == matching.external_id
    assert row["turns"] == 3 and row["last_activity"]
    assert row["first_message"] == "My card broke"
    assert row["reason"] == "a thumbs-down in a turn, 3 turns (at least 3)"
    assert answer["traces"] == []

    created = api.post(
        f"{base(tenant)}/routing-rules/",
        {**body, "name": "unhappy conversations", "queue_id": queue.pk, "signal": "thumbs_down"},
        format="json",
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["target"] == "thread"
    assert rule["thread_conditions"] == {"thumbs_down": True, "min_turns": 3}
    saved = api.get(f"{base(tenant)}/routing-rules/{rule['id']}/preview/")
    assert saved.status_code == 200
    assert saved.json()["exact"] is True
    assert [r["thread_id"] for r in saved.json()["threads"]] == [matching.external_id]

    edited = api.patch(
        f"{base(tenant)}/routing-rules/{rule['id']}/",
        {"thread_conditions": {"idle_minutes": 30}},
        format="json",
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["thread_conditions"] == {"idle_minutes": 30}
    listed = api.get(f"{base(tenant)}/routing-rules/", {"target": "thread"}).json()["results"]
    assert [r["id"] for r in listed] == [rule["id"]]
    assert api.get(f"{base(tenant)}/routing-rules/", {"target": "trace"}).json()["results"] == []


def test_the_api_previews_a_trace_rule_too(tenant, client_for):
    make_trace(tenant, status="error", external_id="t-broken")
    make_trace(tenant, status="ok")
    answer = client_for(tenant.owner).post(
        f"{base(tenant)}/routing-rules/preview/",
        {"filter_params": {"status": "error"}},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["target"], body["matched"], body["threads"]) == ("trace", 1, [])
    assert body["traces"][0]["trace_id"] == "t-broken"
    assert body["traces"][0]["taken"] is True


@pytest.mark.parametrize(
    "conditions",
    [
        {"min_turns": -3},
        {"min_turns": 3.5},
        {"min_turns": "3"},
        {"idle_minutes": 10**20},
        {"idle_minutes": 10**12},
        {"thumbs_down": "true"},
        {"unknown": True},
        {"min_turns\u0000": 2},
        "not an object",
        {},
    ],
)
def test_the_api_refuses_hostile_conditions_with_a_reason(tenant, client_for, conditions):
    queue = make_queue(tenant)
    api = client_for(tenant.owner)
    body = {"name": "x", "queue_id": queue.pk, "signal": "other", "filter_params": {},
            "target": "thread", "thread_conditions": conditions}  # fmt: skip
    for url in (f"{base(tenant)}/routing-rules/", f"{base(tenant)}/routing-rules/preview/"):
        sent = (
            body
            if url.endswith("rules/")
            else {k: body[k] for k in ("target", "thread_conditions", "filter_params")}
        )
        answer = api.post(url, sent, format="json")
        assert answer.status_code == 400, (url, answer.content)
        # The reason names the field (beside it, or where the parser found it).
        assert "thread_conditions" in json.dumps(answer.json()["error"])
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not RoutingRule.objects.exists()


def test_the_api_refuses_nan_in_raw_json(tenant, client_for):
    queue = make_queue(tenant)
    raw = (
        f'{{"name": "x", "queue_id": {queue.pk}, "signal": "other", "filter_params": {{}},'
        ' "target": "thread", "thread_conditions": {"min_turns": NaN}}'
    )
    answer = client_for(tenant.owner).post(
        f"{base(tenant)}/routing-rules/", raw, content_type="application/json"
    )
    assert answer.status_code == 400


def test_a_thread_rule_of_another_organization_is_not_found(tenant, other_tenant, client_for):
    rule = thread_rule(other_tenant, make_queue(other_tenant), {"min_turns": 1})
    api = client_for(tenant.owner)
    assert api.get(f"{base(tenant)}/routing-rules/{rule.pk}/preview/").status_code == 404


# --- the lead's page -----------------------------------------------------------------------


def test_the_page_creates_a_thread_rule_and_says_it_in_words(tenant):
    queue = make_queue(tenant)
    client = signed_in(tenant.owner)
    url = project_url(tenant, "lead-queue-rules", queue_pk=queue.pk)
    page = client.get(url).content.decode()
    assert 'name="target"' in page and 'name="thread_min_turns"' in page
    assert 'data-rule-group="thread"' in page

    created = client.post(
        url,
        {
            "name": "unhappy",
            "signal": "thumbs_down",
            "target": "thread",
            "thread_thumbs_down": "on",
            "thread_min_turns": "3",
            "thread_idle_minutes": "30",
            "sampling_percent": "100",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(queue=queue)
    assert rule.target == "thread"
    assert rule.thread_conditions == {"thumbs_down": True, "min_turns": 3, "idle_minutes": 30}
    listed = client.get(url).content.decode()
    assert (
        "threads with a thumbs-down in any turn and at least 3 turns, ended after 30 minutes idle"
        in listed
    )
    edit_url = project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk)
    edit = client.get(edit_url).content.decode()
    assert 'name="thread_min_turns"' in edit and 'value="3"' in edit

    # An edit shows in the history in words.
    saved = client.post(
        edit_url,
        {"name": "unhappy", "signal": "thumbs_down", "target": "thread", "enabled": "on",
         "thread_thumbs_down": "on", "thread_min_turns": "5", "sampling_percent": "100"},
    )  # fmt: skip
    assert saved.status_code == 302, saved.content.decode()[:2000]
    history = client.get(edit_url).content.decode()
    assert "threads with a thumbs-down in any turn and at least 5 turns" in history


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("thread_min_turns", "-2"),
        ("thread_min_turns", "2.5"),
        ("thread_min_turns", "NaN"),
        ("thread_min_turns", "99999999999999999999999"),
        ("thread_idle_minutes", "1e9"),
        ("thread_idle_minutes", "100000000"),
    ],
)
def test_the_page_refuses_bad_numbers_beside_the_field(tenant, field, value):
    queue = make_queue(tenant)
    client = signed_in(tenant.owner)
    answer = client.post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "x", "signal": "other", "target": "thread", field: value,
         "sampling_percent": "100"},
    )  # fmt: skip
    assert answer.status_code == 422
    page = answer.content.decode()
    field_id = "rule-" + field.replace("_", "-")
    assert f'id="{field_id}-error"' in page
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not RoutingRule.objects.exists()


def test_the_page_refuses_a_thread_rule_without_a_condition(tenant):
    queue = make_queue(tenant)
    answer = signed_in(tenant.owner).post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "x", "signal": "other", "target": "thread", "sampling_percent": "100"},
    )
    assert answer.status_code == 422
    assert 'id="rule-thread-thumbs-down-error"' in answer.content.decode()


def test_the_page_previews_the_threads_a_rule_would_match(tenant):
    queue = make_queue(tenant)
    thread, turns = make_thread(
        tenant, turns=2, first_input={"messages": [{"role": "user", "content": "Refund please"}]}
    )
    thumbs_down(tenant, turns[1])
    make_thread(tenant, turns=2)
    client = signed_in(tenant.owner)
    preview = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"target": "thread", "thread_thumbs_down": "on", "sampling_percent": "100"},
    )
    assert preview.status_code == 200
    page = preview.content.decode()
    assert f'data-thread="{thread.external_id}"' in page
    assert page.count("data-thread=") == 1
    assert "Refund please" in page
    assert "threads with a thumbs-down in any turn" in page
    assert '<strong id="preview-matched">1</strong>' in page

    # A saved thread rule's own preview from the rules list (no target sent).
    rule = thread_rule(tenant, queue, {"thumbs_down": True})
    listed = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"filter": "", "sampling_percent": "100", "rule": rule.pk},
    ).content.decode()
    assert f'data-thread="{thread.external_id}"' in listed


def test_the_page_leaves_a_trace_rules_strategy_out_of_a_thread_rule(tenant):
    queue = make_queue(tenant)
    created = signed_in(tenant.owner).post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "x", "signal": "other", "target": "thread", "thread_error": "on",
         "strategy": "judges_disagree", "score_a": "a", "sampling_percent": "100"},
    )  # fmt: skip
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(queue=queue)
    assert (rule.target, rule.strategy, rule.strategy_params) == ("thread", "match_and_sample", {})
    assert rule.thread_conditions == {"error": True}
