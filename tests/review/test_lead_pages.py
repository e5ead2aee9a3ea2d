"""The lead's pages: rubrics with versions, queues (form, pool, rules in words), routing
rules with their preview, the board with reassigning, items and annotations with their
history; managers only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Membership
from review import services
from review.models import QueueItem, QueueReviewer, ReviewQueue, RoutingRule, ScoreConfig
from tests.review.helpers import add_traces, make_config, make_queue, make_trace


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(tenant, name: str, **kwargs) -> str:
    return reverse(
        name,
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug} | kwargs,
    )


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
    client = _client(tenant.admin)
    created = client.post(_url(tenant, "lead-rubric-create"), RUBRIC_POST)
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
    # The edit history names who changed it.
    assert tenant.admin.email in body and 'id="history"' in body


def test_an_incomplete_rubric_is_refused_with_readable_reasons(tenant):
    post = dict(RUBRIC_POST, **{"level-1-examples": "", "options": "Correct\nWrong = x"})
    page = _client(tenant.admin).post(_url(tenant, "lead-rubric-create"), post)
    assert page.status_code == 422
    body = page.content.decode()
    assert "write label = number" in body
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ScoreConfig.objects.filter(project=tenant.project).exists()
    post = dict(RUBRIC_POST, **{"level-1-examples": ""})
    page = _client(tenant.admin).post(_url(tenant, "lead-rubric-create"), post)
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
    client = _client(tenant.admin)
    response = client.post(_url(tenant, "lead-queue-create"), post)
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
    edit = client.get(_url(tenant, "lead-queue-edit", queue_pk=queue.pk))
    body = edit.content.decode()
    assert "spread (highest minus lowest) by more than 0.25" in body
    assert "more than 34% of the answers differ" in body
    # Edit: a lower overlap; the history shows the change and who made it.
    assert client.post(_url(tenant, "lead-queue-edit", queue_pk=queue.pk), dict(post, overlap="1"))
    history = client.get(_url(tenant, "lead-queue-edit", queue_pk=queue.pk)).context["history"]
    changes = [line for entry in history for line in entry["lines"]]
    assert {"field": "overlap", "old": "2", "new": "1"} in changes
    assert history[0]["who"] == f"{tenant.admin.email} (web)"


def test_queue_errors_are_shown_and_nothing_is_saved(tenant):
    make_queue(tenant, name="Taken")
    page = _client(tenant.admin).post(
        _url(tenant, "lead-queue-create"),
        {"name": "Taken", "overlap": "1", "assignment_strategy": "pull"},
    )
    assert page.status_code == 422
    assert "exists" in page.content.decode()
    page = _client(tenant.admin).post(
        _url(tenant, "lead-queue-create"),
        {"name": "New", "overlap": "99", "assignment_strategy": "pull"},
    )
    assert page.status_code == 422 and "Between 1 and 20" in page.content.decode()


def test_routing_preview_shows_which_recent_traces_the_rule_takes(tenant):
    queue = make_queue(tenant)
    failing = [make_trace(tenant, status="error", name=f"failing {n}") for n in range(6)]
    make_trace(tenant, status="ok", name="fine one")
    client = _client(tenant.admin)
    preview = client.get(
        _url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"filter": "status=error", "sampling_percent": "50"},
    )
    assert preview.status_code == 200
    data = preview.context["preview"]
    assert data["matched"] == 6 and data["recent"] == 7
    assert data["taken"] == sum(1 for row in data["rows"] if row["taken"])
    assert "fine one" not in preview.content.decode()
    # A bad filter says why.
    bad = client.get(
        _url(tenant, "lead-rule-preview", queue_pk=queue.pk), {"filter": "status=bogus"}
    )
    assert "status" in bad.content.decode() and bad.context["preview"] is None
    # The rules page starts from a filter handed over by the explorer.
    page = client.get(_url(tenant, "lead-queue-rules", queue_pk=queue.pk), {"filter": "tags=x"})
    assert page.status_code == 200 and 'value="tags=x"' in page.content.decode()
    # Saved, the preview of the rule is its own draw, the one routing makes.
    created = client.post(
        _url(tenant, "lead-queue-rules", queue_pk=queue.pk),
        {"name": "Errors", "signal": "error", "filter": "status=error", "sampling_percent": "50"},
    )
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(queue=queue)
        routed = services.routing_apply(
            project_id=tenant.project.pk, trace_ids=[t.pk for t in failing]
        )
    listed = client.get(_url(tenant, "lead-queue-rules", queue_pk=queue.pk)).content.decode()
    assert "Errors" in listed and "status=error" in listed
    exact = client.get(
        _url(tenant, "lead-rule-preview", queue_pk=queue.pk),
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
    client = _client(tenant.admin)
    live = client.get(_url(tenant, "lead-queue-board-live", queue_pk=queue.pk))
    assert live.status_code == 200
    columns = {c["status"]: c["count"] for c in live.context["board"]["columns"]}
    assert columns["pending"] == 2 and columns["complete"] == 1
    assert 'hx-trigger="every 3s' in live.content.decode()
    assignees = live.context["board"]["assignees"]
    assert [(a["email"], a["done"]) for a in assignees] == [(tenant.reviewer.email, 1)]
    # Reprioritise and reassign a waiting item.
    waiting = next(i for i in items if i.pk != assignment.item_id)
    response = client.post(
        _url(tenant, "lead-items-update", queue_pk=queue.pk),
        {"item_id": waiting.pk, "priority": "7", "assignee": str(tenant.admin.pk)},
    )
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        waiting = QueueItem.objects.get(pk=waiting.pk)
    assert (waiting.priority, waiting.assignees) == (7, [tenant.admin.pk])
    # The item page shows the change in its history.
    page = client.get(_url(tenant, "lead-item", queue_pk=queue.pk, item_pk=waiting.pk))
    lines = [line for entry in page.context["history"] for line in entry["lines"]]
    assert {"field": "priority", "old": "0", "new": "7"} in lines
    # Someone outside the pool cannot be assigned; the board says why.
    refused = client.post(
        _url(tenant, "lead-items-update", queue_pk=queue.pk),
        {"item_id": waiting.pk, "assignee": str(tenant.viewer.pk)},
        follow=True,
    )
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
    page = _client(tenant.admin).get(_url(tenant, "lead-annotation", annotation_pk=annotation.pk))
    assert page.status_code == 200
    lines = [line for entry in page.context["history"] for line in entry["lines"]]
    assert {"field": "values: Accuracy", "old": "0.25", "new": "0.75"} in lines


@pytest.mark.parametrize("role", ["reviewer", "auditor", "viewer"])
def test_lead_pages_are_for_managers(tenant, role):
    queue = make_queue(tenant)
    client = _client(getattr(tenant, role))
    for name, kwargs in (
        ("lead-rubrics", {}),
        ("lead-queues", {}),
        ("lead-queue-create", {}),
        ("lead-queue-board", {"queue_pk": queue.pk}),
        ("lead-queue-rules", {"queue_pk": queue.pk}),
    ):
        assert client.get(_url(tenant, name, **kwargs)).status_code == 403, name


def test_another_organizations_queue_is_not_found(tenant, other_tenant):
    theirs = make_queue(other_tenant)
    url = _url(tenant, "lead-queue-board", queue_pk=theirs.pk)
    assert _client(tenant.admin).get(url).status_code == 404


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
        services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Errors",
            signal="error",
            filter_params={"status": "error"},
        )
    client = _client(tenant.admin)
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
        ("lead-item", {"queue_pk": queue.pk, "item_pk": items[0].pk}),
        ("lead-annotation", {"annotation_pk": annotation.pk}),
        ("lead-bulk-add", {}),
    ):
        response = client.get(_url(tenant, name, **kwargs))
        assert response.status_code == 200, (name, response.status_code)
