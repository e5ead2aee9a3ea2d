"""A routing rule's and a saved view's history read their trace filter in words (the
filter builder's summary through the one history renderer), in the API, the pages and
the admin alike; a stored value that is no filter shows as stored."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor, history_for_display
from review import services
from tests.review.helpers import make_queue
from tests.traces.read_builders import make_score, make_trace
from traces import filter_builder


def _lines(rule):
    return [
        (line["field"], line["old"], line["new"])
        for entry in history_for_display(rule.history.all())
        for line in entry["lines"]
        if line["field"] == "filter params"
    ]


def test_a_rule_history_reads_its_filter_in_words(tenant):
    make_score(make_trace(tenant.project, "scored"), "faithfulness", 0.3)
    queue = make_queue(tenant)
    actor = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_create(
            actor=actor,
            project=tenant.project,
            queue_id=queue.pk,
            name="Unfaithful",
            signal="error",
            filter_params={"status": "error"},
        )
        services.routing_rule_update(
            actor=actor,
            rule=rule,
            filter_params={"status": "error", "score": ["faithfulness<0.5"]},
        )
        lines = _lines(rule)
    changed, created = lines
    assert changed == ("filter params", "status is error", "faithfulness < 0.5 and status is error")
    assert created == ("filter params", None, "status is error")


def test_a_value_that_is_no_filter_shows_as_stored():
    assert filter_builder.as_words({"status": "error"}) == "status is error"
    assert filter_builder.as_words(None) == "—"
    assert filter_builder.as_words(["not", "a", "filter"]) == "['not', 'a', 'filter']"
