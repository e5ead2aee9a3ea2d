"""The lead's pages: rubrics with versions, queues (form, pool, rules in words), routing
rules with their preview, the board with reassigning, items and annotations with their
history; managers only."""

from __future__ import annotations

import re

import pytest

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Membership
from review import services
from review.models import QueueItem, QueueReviewer, ReviewQueue, RoutingRule, ScoreConfig
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_traces, make_config, make_queue, make_rule, make_trace

RUBRIC_POST = {
    "name": "Clinical accuracy",
    "description": "Is the answer right for this patient?",
    "data_type": "categorical",
    "target": "trace",
    "options": "Correct = 1\nWrong = 0",
    "required": "on",
    "level-0-label": "Correct",
    "level-0-definition": "Right for this patient.",
    "level-0-examples": "2 g a day in cirrhosis.",
    "level-1-label": "Wrong",
    "level-1-definition": "Unsafe advice.",
    "level-1-examples": "Warfarin in pregnancy.\nDouble dose.",
    "level-2-label": "",
    "level-2-definition": "",
    "level-2-examples": "",
}


def test_a_rubric_is_created_edited_and_its_versions_say_what_changed(tenant):
    client = signed_in(tenant.admin)
    created = client.post(project_url(tenant, "lead-rubric-create"), RUBRIC_POST)
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(project=tenant.project, name="Clinical accuracy")
    assert config.rubric[1]["examples"] == ["Warfarin in pregnancy.", "Double dose."]
    assert config.options == [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}]

    edit = dict(RUBRIC_POST, **{"level-1-definition": "Unsafe or wrong advice."})
    assert client.post(created["Location"], edit).status_code == 302
    page = client.get(created["Location"])
    body = page.content.decode()
    assert "version 2" in body
    versions = page.context["versions"]
    assert [v["version"].version for v in versions] == [2, 1]
    assert {
        "field": "level Wrong: definition",
        "old": "Unsafe advice.",
        "new": "Unsafe or wrong advice.",
    } in versions[0]["changes"]
    # The edit history, loaded after the page, names who changed it.
    history_url = project_url(tenant, "lead-rubric-history", config_pk=config.pk)
    assert f'hx-get="{history_url}"' in body and 'id="history"' not in body
    card = client.get(history_url, HTTP_HX_REQUEST="true").content.decode()
    assert tenant.admin.email in card and 'id="history"' in card and "<html" not in card
    whole = client.get(history_url).content.decode()
    assert tenant.admin.email in whole and "Edit history of the question" in whole


def test_an_incomplete_rubric_is_refused_with_readable_reasons(tenant):
    post = dict(RUBRIC_POST, **{"level-1-examples": "", "options": "Correct\nWrong = x"})
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    body = page.content.decode()
    assert "write label = number" in body
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ScoreConfig.objects.filter(project=tenant.project).exists()
    post = dict(RUBRIC_POST, **{"level-1-examples": ""})
    page = signed_in(tenant.admin).post(project_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    assert "at least one example" in page.content.decode()


def test_a_queue_is_built_from_the_form_with_pool_and_rules_in_words(tenant):
    accuracy = make_config(tenant, name="Accuracy", data_type="numeric")
    tone = make_config(
        tenant,
        name="Tone",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": "Good", "value": 1}, {"label": "Bad", "value": 0}],
        rubric=[
            {"label": "Good", "definition": "Kind.", "examples": ["Thanks!"]},
            {"label": "Bad", "definition": "Rude.", "examples": ["No."]},
        ],
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        reviewer = Membership.objects.get(user=tenant.reviewer)
        admin = Membership.objects.get(user=tenant.admin)
    post = {
        "name": "Clinical answers",
        "description": "Doses",
        "assignment_strategy": "pull",
        "overlap": "2",
        "lease_minutes": "20",
        "priority": "3",
        "audit_percent": "10",
        "blind_mode": "on",
        "include_explanation": "on",
        f"q-{tone.pk}": "on",
        f"pos-{tone.pk}": "2",
        f"adj-{tone.pk}": "on",
        f"tol-{tone.pk}": "34",
        f"q-{accuracy.pk}": "on",
        f"pos-{accuracy.pk}": "1",
        f"adj-{accuracy.pk}": "on",
        f"tol-{accuracy.pk}": "0.25",
        f"m-{reviewer.pk}": "on",
        f"skills-{reviewer.pk}": "cardiology, dosing",
        f"langs-{reviewer.pk}": "en",
        f"m-{admin.pk}": "on",
        f"senior-{admin.pk}": "on",
    }
    client = signed_in(tenant.admin)
    response = client.post(project_url(tenant, "lead-queue-create"), post)
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = ReviewQueue.objects.get(project=tenant.project, name="Clinical answers")
        assert (queue.overlap, queue.lease_ttl_seconds, queue.priority) == (2, 1200, 3)
        assert queue.audit_sample_rate == pytest.approx(0.1)
        fields = list(queue.form_fields.order_by("position"))
        assert [f.config_id for f in fields] == [accuracy.pk, tone.pk]
        assert fields[0].numeric_tolerance == 0.25
        assert fields[1].max_dissent_share == pytest.approx(0.34)
        pool = {r.membership_id: r for r in QueueReviewer.objects.filter(queue=queue)}
        assert pool[reviewer.pk].skills == ["cardiology", "dosing"]
        assert pool[admin.pk].is_senior
    edit = client.get(project_url(tenant, "lead-queue-edit", queue_pk=queue.pk))
    body = edit.content.decode()
    assert "spread (highest minus lowest) by more than 0.25" in body
    assert "more than 34% of the answers differ" in body
    # Edit: a lower overlap; the history shows the change and who made it.
    assert client.post(
        project_url(tenant, "lead-queue-edit", queue_pk=queue.pk), dict(post, overlap="1")
    )
    history = client.get(project_url(tenant, "lead-queue-history", queue_pk=queue.pk)).context[
        "history"
    ]
    changes = [line for entry in history for line in entry["lines"]]
    assert {"field": "overlap", "old": "2", "new": "1"} in changes
    assert history[0]["who"] == f"{tenant.admin.email} (web)"


def test_queue_errors_are_shown_and_nothing_is_saved(tenant):
    make_queue(tenant, name="Taken")
    page = signed_in(tenant.admin).post(
        project_url(tenant, "lead-queue-create"),
        {"name": "Taken", "overlap": "1", "assignment_strategy": "pull"},
    )
    assert page.status_code == 422
    assert "exists" in page.content.decode()
    page = signed_in(tenant.admin).post(
        project_url(tenant, "lead-queue-create"),
        {"name": "New", "overlap": "99", "assignment_strategy": "pull"},
    )
    assert page.status_code == 422 and "Between 1 and 20" in page.content.decode()


def test_routing_preview_shows_which_recent_traces_the_rule_takes(tenant):
    queue = make_queue(tenant)
    failing = [make_trace(tenant, status="error", name=f"failing {n}") for n in range(6)]
    make_trace(tenant, status="ok", name="fine one")
    client = signed_in(tenant.admin)
    preview = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"filter": "status=error", "sampling_percent": "50"},
    )
    assert preview.status_code == 200
    data = preview.context["preview"]
    assert data["matched"] == 6 and data["recent"] == 7
    assert data["taken"] == sum(1 for row in data["rows"] if row["taken"])
    assert "fine one" not in preview.content.decode()
    # A bad filter says why.
    bad = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk), {"filter": "status=bogus"}
    )
    assert "status" in bad.content.decode() and bad.context["preview"] is None
    # The rules page starts from a filter handed over by the explorer.
    page = client.get(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk), {"filter": "tags=x"}
    )
    assert page.status_code == 200
    assert [(c["row"].field, c["row"].value) for c in page.context["conditions"]] == [("tags", "x")]
    # Saved, the preview of the rule is its own draw, the one routing makes.
    created = client.post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "Errors", "signal": "error", "filter": "status=error", "sampling_percent": "50"},
    )
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(queue=queue)
        routed = services.routing_apply(
            project_id=tenant.project.pk, trace_ids=[t.pk for t in failing]
        )
    listed = client.get(project_url(tenant, "lead-queue-rules", queue_pk=queue.pk)).content.decode()
    assert "Errors" in listed and "status=error" in listed
    exact = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"filter": "status=error", "sampling_percent": "50", "rule": rule.pk},
    ).context["preview"]
    assert exact["exact"] and exact["taken"] == routed.get(rule.pk, 0)


def test_board_shows_columns_and_assignees_and_reassigns(tenant):
    queue = make_queue(tenant, reviewers=[tenant.reviewer, tenant.admin])
    items = add_traces(tenant, queue, 3)
    with tenancy.tenant_scope(tenant.organization.pk):
        assignment = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        config_id = queue.form_fields.get().config_id
        services.assignment_submit(
            actor=Actor(user=tenant.reviewer),
            assignment_id=assignment.pk,
            values={str(config_id): 0.5},
        )
    client = signed_in(tenant.admin)
    live = client.get(project_url(tenant, "lead-queue-board-live", queue_pk=queue.pk))
    assert live.status_code == 200
    columns = {c["status"]: c["count"] for c in live.context["board"]["columns"]}
    assert columns["pending"] == 2 and columns["complete"] == 1
    assert 'hx-trigger="every 3s' in live.content.decode()
    assignees = live.context["board"]["assignees"]
    assert [(a["email"], a["done"]) for a in assignees] == [(tenant.reviewer.email, 1)]
    # Reprioritise and reassign a waiting item.
    waiting = next(i for i in items if i.pk != assignment.item_id)
    response = client.post(
        project_url(tenant, "lead-items-update", queue_pk=queue.pk),
        {"item_id": waiting.pk, "priority": "7", "assignee": str(tenant.admin.pk)},
    )
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        waiting = QueueItem.objects.get(pk=waiting.pk)
    assert (waiting.priority, waiting.assignees) == (7, [tenant.admin.pk])
    # The item page shows the change in its history.
    page = client.get(project_url(tenant, "lead-item", queue_pk=queue.pk, item_pk=waiting.pk))
    lines = [line for entry in page.context["history"] for line in entry["lines"]]
    assert {"field": "priority", "old": "0", "new": "7"} in lines
    # Someone outside the pool cannot be assigned; the board says why.
    refused = client.post(
        project_url(tenant, "lead-items-update", queue_pk=queue.pk),
        {"item_id": waiting.pk, "assignee": str(tenant.viewer.pk)},
    )
    assert refused.status_code == 422
    assert "must be in the queue" in refused.content.decode()


def test_annotation_page_shows_each_edit_of_the_answers(tenant):
    config = make_config(tenant, name="Accuracy")
    queue = make_queue(tenant, configs=[config])
    add_traces(tenant, queue, 1)
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        assignment = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer, assignment_id=assignment.pk, values={str(config.pk): 0.25}
        )
        services.annotation_update(
            actor=reviewer,
            annotation_id=annotation.pk,
            expected_version=annotation.version,
            values={str(config.pk): 0.75},
        )
    page = signed_in(tenant.admin).get(
        project_url(tenant, "lead-annotation", annotation_pk=annotation.pk)
    )
    assert page.status_code == 200
    lines = [line for entry in page.context["history"] for line in entry["lines"]]
    assert {"field": "values: Accuracy", "old": "0.25", "new": "0.75"} in lines


@pytest.mark.parametrize("role", ["reviewer", "auditor", "viewer"])
def test_lead_pages_are_for_managers(tenant, role):
    queue = make_queue(tenant)
    rule = _rule(tenant, queue)
    client = signed_in(getattr(tenant, role))
    for name, kwargs in (
        ("lead-rubrics", {}),
        ("lead-queues", {}),
        ("lead-queue-create", {}),
        ("lead-queue-board", {"queue_pk": queue.pk}),
        ("lead-queue-rules", {"queue_pk": queue.pk}),
        ("lead-rule-edit", {"queue_pk": queue.pk, "rule_pk": rule.pk}),
        ("lead-rule-history", {"queue_pk": queue.pk, "rule_pk": rule.pk}),
        ("lead-queue-history", {"queue_pk": queue.pk}),
    ):
        assert client.get(project_url(tenant, name, **kwargs)).status_code == 403, name
    # Nor may they change a rule or items.
    item = add_traces(tenant, queue, 1)[0]
    for name, kwargs, data in (
        ("lead-rule-edit", {"rule_pk": rule.pk}, dict(RULE_POST, name="Taken over")),
        ("lead-items-update", {}, {"item_id": item.pk, "priority": "9"}),
    ):
        response = client.post(project_url(tenant, name, queue_pk=queue.pk, **kwargs), data)
        assert response.status_code == 403, name
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRule.objects.get(pk=rule.pk).name == "Errors"
        assert QueueItem.objects.get(pk=item.pk).priority == 0


def test_another_organizations_queue_is_not_found(tenant, other_tenant):
    theirs = make_queue(other_tenant)
    url = project_url(tenant, "lead-queue-board", queue_pk=theirs.pk)
    assert signed_in(tenant.admin).get(url).status_code == 404
    # Their rule and items, named under our queue or theirs, are not found either.
    their_rule = _rule(other_tenant, theirs)
    their_item = add_traces(other_tenant, theirs, 1)[0]
    ours = make_queue(tenant)
    client = signed_in(tenant.admin)
    for queue_pk in (theirs.pk, ours.pk):
        edit = project_url(tenant, "lead-rule-edit", queue_pk=queue_pk, rule_pk=their_rule.pk)
        assert client.get(edit).status_code == 404
        history = project_url(tenant, "lead-rule-history", queue_pk=queue_pk, rule_pk=their_rule.pk)
        assert client.get(history, HTTP_HX_REQUEST="true").status_code == 404
        assert client.post(edit, dict(RULE_POST, name="Taken over")).status_code == 404
    update = project_url(tenant, "lead-items-update", queue_pk=theirs.pk)
    assert client.post(update, {"item_id": their_item.pk, "priority": "9"}).status_code == 404
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert RoutingRule.objects.get(pk=their_rule.pk).name == "Errors"
        assert QueueItem.objects.get(pk=their_item.pk).priority == 0


def test_every_lead_page_renders_for_a_manager(tenant):
    config = make_config(tenant, name="Accuracy")
    queue = make_queue(tenant, configs=[config])
    items = add_traces(tenant, queue, 2)
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        assignment = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer, assignment_id=assignment.pk, values={str(config.pk): 0.5}
        )
        rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Errors",
            signal="error",
            filter_params={"status": "error"},
        )
    client = signed_in(tenant.admin)
    for name, kwargs in (
        ("lead-rubrics", {}),
        ("lead-rubric-create", {}),
        ("lead-rubric", {"config_pk": config.pk}),
        ("lead-queues", {}),
        ("lead-queue-create", {}),
        ("lead-queue-edit", {"queue_pk": queue.pk}),
        ("lead-queue-board", {"queue_pk": queue.pk}),
        ("lead-queue-board-live", {"queue_pk": queue.pk}),
        ("lead-queue-rules", {"queue_pk": queue.pk}),
        ("lead-rule-preview", {"queue_pk": queue.pk}),
        ("lead-rule-edit", {"queue_pk": queue.pk, "rule_pk": rule.pk}),
        ("lead-rule-history", {"queue_pk": queue.pk, "rule_pk": rule.pk}),
        ("lead-queue-history", {"queue_pk": queue.pk}),
        ("lead-rubric-history", {"config_pk": config.pk}),
        ("lead-item", {"queue_pk": queue.pk, "item_pk": items[0].pk}),
        ("lead-annotation", {"annotation_pk": annotation.pk}),
        ("lead-bulk-add", {}),
    ):
        response = client.get(project_url(tenant, name, **kwargs))
        assert response.status_code == 200, (name, response.status_code)


# --- editing a routing rule --------------------------------------------------------------

RULE_POST = {
    "name": "Errors",
    "signal": "error",
    "filter": "status=error",
    "sampling_percent": "100",
    "daily_cap": "",
    "item_priority": "0",
    "enabled": "on",
}


_rule = make_rule


def _history_fields(page) -> list[set[str]]:
    return [{line["field"] for line in entry["lines"]} for entry in page.context["history"]]


def test_a_rule_is_edited_in_its_form_and_the_edit_is_in_its_history(tenant):
    queue = make_queue(tenant)
    for n in range(4):
        make_trace(tenant, status="error", tags=["billing"] if n % 2 else [], name=f"bad {n}")
    make_trace(tenant, status="ok", name="fine")
    rule = _rule(tenant, queue)
    client = signed_in(tenant.admin)
    edit_url = project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk)
    # The rules page links to the edit form; the form holds the rule as saved.
    listed = client.get(project_url(tenant, "lead-queue-rules", queue_pk=queue.pk)).content.decode()
    assert f'href="{edit_url}"' in listed
    page = client.get(edit_url)
    assert page.status_code == 200
    values = {f["name"]: f["value"] for f in page.context["rule_fields"]}
    assert values == {
        "name": "Errors",
        "signal": "error",
        "filter": "",  # the advanced field: the filter is in the condition rows
        "sampling_percent": "100",
        "daily_cap": "",
        "item_priority": "0",
        "enabled": "on",
        # The strategy's fields (tests/review/test_routing_strategies.py): match and sample.
        "strategy": "match_and_sample",
        **dict.fromkeys(
            ("score_name", "band_low", "band_high", "score_a", "score_b", "min_difference"), ""
        ),
        "source_queue": "",
        # A trace rule (thread rules: tests/review/test_thread_routing.py).
        "target": "trace",
        **dict.fromkeys(
            ("thread_thumbs_down", "thread_error", "thread_min_turns", "thread_idle_minutes"), ""
        ),
    }
    assert [(c["row"].field, c["row"].value) for c in page.context["conditions"]] == [
        ("status", "error")
    ]
    body = page.content.decode()
    # The preview the form asks for is the saved rule's own draw.
    assert f'name="rule" value="{rule.pk}"' in body and 'id="rule-preview"' in body
    assert 'id="rule-enabled" name="enabled" checked' in body

    edited = client.post(
        edit_url,
        {
            "name": "Billing errors",
            "signal": "error",
            "filter": "status=error&tags=billing",
            "sampling_percent": "25",
            "daily_cap": "10",
            "item_priority": "3",
            # "enabled" left unticked: switched off
        },
    )
    assert edited.status_code == 302 and edited["Location"] == edit_url
    with tenancy.tenant_scope(tenant.organization.pk):
        rule.refresh_from_db()
    assert rule.name == "Billing errors"
    assert rule.filter_params == {"status": "error", "tags": ["billing"]}
    assert (rule.sampling_rate, rule.daily_cap, rule.item_priority, rule.enabled) == (
        0.25,
        10,
        3,
        False,
    )
    history_url = project_url(tenant, "lead-rule-history", queue_pk=queue.pk, rule_pk=rule.pk)
    assert f'hx-get="{history_url}"' in client.get(edit_url).content.decode()
    page = client.get(history_url, HTTP_HX_REQUEST="true")
    history = page.context["history"]
    assert [entry["kind"] for entry in history] == ["changed", "created"]
    assert history[0]["who"] == f"{tenant.admin.email} (web)"
    assert {"name", "sampling rate", "daily cap", "item priority", "enabled"} <= _history_fields(
        page
    )[0]
    assert 'id="history"' in page.content.decode()
    # The preview of the edited rule: its filter, its rate, its own draw.
    preview = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"filter": "status=error&tags=billing", "sampling_percent": "100", "rule": rule.pk},
    ).context["preview"]
    assert preview["exact"] and (preview["matched"], preview["taken"]) == (2, 2)

    # Saving it unchanged records nothing.
    same = dict(
        RULE_POST,
        name="Billing errors",
        filter="status=error&tags=billing",
        sampling_percent="25",
        daily_cap="10",
        item_priority="3",
    )
    del same["enabled"]
    assert client.post(edit_url, same).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert rule.history.count() == 2


def test_a_refused_rule_edit_shows_each_reason_beside_its_field(tenant):
    queue = make_queue(tenant)
    rule = _rule(tenant, queue)
    client = signed_in(tenant.admin)
    edit_url = project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk)

    def refused(**changes) -> tuple[dict[str, list[str]], str]:
        page = client.post(edit_url, dict(RULE_POST, **changes))
        assert page.status_code == 422, changes
        fields = {f["name"]: f["errors"] for f in page.context["rule_fields"] if f["errors"]}
        return fields, page.content.decode()

    # What the form cannot even read: each field says why, and keeps what was typed.
    fields, body = refused(sampling_percent="0", daily_cap="many", item_priority="high")
    assert fields == {
        "sampling_percent": ["Above 0 and at most 100 %."],
        "daily_cap": ["A whole number, or empty for no cap."],
        "item_priority": ["A whole number is expected."],
    }
    assert 'id="rule-sampling-percent-error"' in body and 'aria-invalid="true"' in body
    assert 'value="many"' in body and 'role="alert"' in body
    fields, _ = refused(sampling_percent="150")
    assert fields == {"sampling_percent": ["Above 0 and at most 100 %."]}
    # What the service refuses, beside its field too.
    fields, _ = refused(name="  ")
    assert fields == {"name": ["A rule needs a name."]}
    fields, body = refused(filter="status=bogus")
    assert list(fields) == ["filter"] and fields["filter"][0].startswith("status: ")
    fields, _ = refused(filter="")
    assert fields == {"filter": ["A routing rule needs a trace filter."]}
    fields, _ = refused(signal="whim")
    assert list(fields) == ["signal"]
    fields, _ = refused(item_priority=str(2**40))
    assert list(fields) == ["item_priority"]
    # Nothing was saved, and nothing is in the history but the creation.
    with tenancy.tenant_scope(tenant.organization.pk):
        rule.refresh_from_db()
        assert (rule.name, rule.filter_params, rule.sampling_rate) == (
            "Errors",
            {"status": "error"},
            1.0,
        )
        assert rule.history.count() == 1
    # The create form shows its reasons the same way.
    page = client.post(
        project_url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        dict(RULE_POST, name="", sampling_percent="x"),
    )
    assert page.status_code == 422
    errors = {f["name"]: f["errors"] for f in page.context["rule_fields"] if f["errors"]}
    assert errors == {"sampling_percent": ["A percentage is expected."]}


def test_a_rule_of_another_queue_is_not_edited_through_this_one(tenant):
    queue, other = make_queue(tenant), make_queue(tenant)
    rule = _rule(tenant, other)
    url = project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk)
    client = signed_in(tenant.admin)
    assert client.get(url).status_code == 404
    assert client.post(url, dict(RULE_POST, name="Moved")).status_code == 404


# --- the board's selection ---------------------------------------------------------------


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_board_changes_selected_items_together_and_says_which_could_not(tenant, other_tenant):
    queue = make_queue(tenant, reviewers=[tenant.reviewer, tenant.admin], overlap=1)
    items = add_traces(tenant, queue, 4)
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=reviewer, queue=queue)
        config_id = queue.form_fields.get().config_id
        services.assignment_submit(
            actor=reviewer, assignment_id=lease.pk, values={str(config_id): 0.5}
        )
    done = next(i for i in items if i.pk == lease.item_id)
    a, b, c = (i for i in items if i.pk != done.pk)
    theirs = add_traces(other_tenant, make_queue(other_tenant), 1)[0]
    client = signed_in(tenant.admin)
    board_url = project_url(tenant, "lead-queue-board", queue_pk=queue.pk)
    update_url = project_url(tenant, "lead-items-update", queue_pk=queue.pk)

    # Open cards have a box to select them (a keyboard-reachable checkbox tied to the
    # selection form), a column a "select all"; a complete card has none.
    body = client.get(board_url).content.decode()
    for item in (a, b, c):
        assert f'id="sel-{item.pk}" name="item_id" value="{item.pk}" form="board-bulk"' in body
    assert f'id="sel-{done.pk}"' not in body
    assert 'id="all-pending"' in body and 'id="all-complete"' not in body
    assert 'id="board-bulk"' in body

    # A, B, the complete item, an id that is nobody's and another tenant's item.
    response = client.post(
        update_url,
        {
            "item_id": [a.pk, b.pk, done.pk, 987654321, theirs.pk],
            "priority": "5",
            "assignee": str(tenant.admin.pk),
        },
        follow=True,
    )
    assert response.redirect_chain == [(board_url, 302)]
    said = _messages(response)
    assert said[0] == "Changed 2 items."
    assert said[1].startswith("Could not change 3 items: ")
    assert f"(item {done.pk}) (already complete; only open items are changed)" in said[1]
    assert "item 987654321 (not in this queue" in said[1]
    assert f"item {theirs.pk} (not in this queue" in said[1]
    with tenancy.tenant_scope(tenant.organization.pk):
        fresh = {i.pk: i for i in QueueItem.objects.filter(queue=queue)}
        # One history row per changed item, none for the others.
        counts = {i: QueueItem.history.filter(id=i).count() for i in fresh}
    assert (fresh[a.pk].priority, fresh[a.pk].assignees) == (5, [tenant.admin.pk])
    assert (fresh[b.pk].priority, fresh[b.pk].assignees) == (5, [tenant.admin.pk])
    assert (fresh[c.pk].priority, fresh[done.pk].priority) == (0, 0)
    assert counts[a.pk] == counts[b.pk] == counts[c.pk] + 1
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert QueueItem.objects.get(pk=theirs.pk).priority == 0
    page = client.get(project_url(tenant, "lead-item", queue_pk=queue.pk, item_pk=a.pk))
    lines = [line for entry in page.context["history"] for line in entry["lines"]]
    assert {"field": "priority", "old": "0", "new": "5"} in lines

    # Back to the queue (anyone in the pool may claim them); the priority is kept.
    response = client.post(update_url, {"item_id": [a.pk, b.pk], "assignee": "anyone"}, follow=True)
    assert _messages(response) == ["Changed 2 items."]
    with tenancy.tenant_scope(tenant.organization.pk):
        backs = list(
            QueueItem.objects.filter(pk__in=[a.pk, b.pk]).values_list("assignees", "priority")
        )
    assert backs == [([], 5), ([], 5)]
    # Asked again, nothing changes and nothing is recorded.
    response = client.post(update_url, {"item_id": [a.pk, b.pk], "assignee": "anyone"}, follow=True)
    assert _messages(response) == ["2 items already had that."]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QueueItem.history.filter(id=a.pk).count() == counts[a.pk] + 1


def test_bad_board_changes_are_refused_with_the_reason_and_the_selection_kept(tenant):
    queue = make_queue(tenant, reviewers=[tenant.reviewer, tenant.admin])
    a, b = add_traces(tenant, queue, 2)
    client = signed_in(tenant.admin)
    update_url = project_url(tenant, "lead-items-update", queue_pk=queue.pk)
    cases = [
        ({"priority": "high"}, "Priority: a whole number is expected."),
        ({"priority": str(2**40)}, "A priority is a whole number between"),
        ({"assignee": "the new one"}, "Assign to: keep, back to the queue, or a reviewer"),
        (
            {"assignee": str(tenant.viewer.pk)},
            "Assignees must be in the queue&#x27;s reviewer pool.",
        ),
        ({"assignee": "keep"}, "Choose a new priority or whom to assign"),
        ({"item_id": [], "priority": "3"}, "Select at least one item."),
        ({"item_id": [a.pk, "b"], "priority": "3"}, "Items: an item is named by its number."),
        ({"item_id": [a.pk, "9" * 20], "priority": "3"}, "Items: an item is named by its"),
        ({"item_id": [a.pk, "²"], "priority": "3"}, "Items: an item is named by its number."),
        ({"assignee": "²"}, "Assign to: keep, back to the queue, or a reviewer"),
    ]
    for changes, reason in cases:
        response = client.post(update_url, {"item_id": [a.pk, b.pk], **changes})
        assert response.status_code == 422, changes
        body = response.content.decode()
        assert reason in body, (changes, body[:2000])
        if changes.get("item_id") != []:
            # The selection comes back ticked, with what was typed.
            assert re.search(rf'id="sel-{a.pk}"[^>]*checked>', body)
            assert response.context["selected"] >= {a.pk}
    with tenancy.tenant_scope(tenant.organization.pk):
        assert [i.priority for i in QueueItem.objects.filter(queue=queue)] == [0, 0]
        assert QueueItem.history.filter(id__in=[a.pk, b.pk]).count() == 2
    # A selected item not shown on the board any more is kept as a hidden field.
    response = client.post(update_url, {"item_id": [a.pk, 987654321], "priority": "x"})
    assert response.context["selected_hidden"] == [987654321]
    assert '<input type="hidden" name="item_id" value="987654321">' in response.content.decode()
    # An archived queue's items are not changed: 409 with the reason.
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_archive(actor=Actor(user=tenant.owner), queue=queue)
    response = client.post(update_url, {"item_id": [a.pk], "priority": "3"})
    assert response.status_code == 409 and "This queue is archived." in response.content.decode()
