from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Membership
from review.models import Annotation, Assignment, ItemStatus, QueueItem
from tests.review.helpers import (
    RUBRIC,
    add_reviewers,
    add_traces,
    make_config,
    make_queue,
    make_trace,
)
from traces.models import Score


def base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def test_score_config_api_versions_and_refusals(tenant, client_for):
    owner = client_for(tenant.owner)
    url = f"{base(tenant)}/score-configs/"
    body = {
        "name": "faithfulness",
        "data_type": "categorical",
        "options": [{"label": "faithful", "value": 1}, {"label": "hallucinated", "value": 0}],
        "rubric": RUBRIC,
        "writes_expected_output": False,
    }
    created = owner.post(url, body, format="json")
    assert created.status_code == 201, created.content
    config_id = created.json()["id"]

    empty = owner.post(url, {**body, "name": "other", "rubric": []}, format="json")
    assert empty.status_code == 400
    assert "rubric" in empty.json()["error"]["details"]

    assert client_for(tenant.viewer).post(url, body, format="json").status_code == 403
    assert client_for(tenant.viewer).get(url).status_code == 200

    edited = owner.patch(f"{url}{config_id}/", {"description": "Is it grounded?"}, format="json")
    assert edited.status_code == 200 and edited.json()["version"] == 2
    versions = owner.get(f"{url}{config_id}/versions/").json()
    assert [v["version"] for v in versions] == [1, 2]
    history = owner.get(f"{url}{config_id}/history/").json()
    assert history[0]["user"] == tenant.owner.email
    assert {"field": "description", "old": "", "new": "Is it grounded?"} in history[0]["changes"]


def test_queue_api_claim_submit_and_pool_checks(tenant, client_for):
    config = make_config(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        membership = Membership.objects.get(user=tenant.reviewer)
    owner = client_for(tenant.owner)
    created = owner.post(
        f"{base(tenant)}/queues/",
        {
            "name": "Clinical answers",
            "overlap": 1,
            "form": [{"config_id": config.pk}],
            "reviewers": [{"membership_id": membership.pk, "languages": ["en"]}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    queue_id = created.json()["id"]
    trace = make_trace(tenant, input={"q": "dose?"})
    added = owner.post(
        f"{base(tenant)}/queues/{queue_id}/items/", {"trace_id": trace.external_id}, format="json"
    )
    assert added.status_code == 201, added.content
    again = owner.post(
        f"{base(tenant)}/queues/{queue_id}/items/", {"trace_id": trace.external_id}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_queued"

    outsider = client_for(tenant.admin).post(f"{base(tenant)}/queues/{queue_id}/claim/")
    assert outsider.status_code == 403
    assert outsider.json()["error"]["code"] == "not_in_pool"
    assert (
        client_for(tenant.viewer).post(f"{base(tenant)}/queues/{queue_id}/claim/").status_code
        == 403
    )
    keyed = client_for(key=tenant.key("all")).post(f"{base(tenant)}/queues/{queue_id}/claim/")
    assert keyed.status_code == 403

    reviewer = client_for(tenant.reviewer)
    claim = reviewer.post(f"{base(tenant)}/queues/{queue_id}/claim/")
    assert claim.status_code == 200, claim.content
    payload = claim.json()
    assert payload["item"]["target"]["trace"]["input"] == {"q": "dose?"}
    assert payload["item"]["form"][0]["rubric"][0]["examples"]
    assignment_id = payload["assignment"]["id"]
    assert reviewer.post(f"{base(tenant)}/queues/{queue_id}/claim/").status_code == 204

    bad = reviewer.post(
        f"{base(tenant)}/assignments/{assignment_id}/submit/",
        {"values": {str(config.pk): 7}},
        format="json",
    )
    assert bad.status_code == 400
    assert "between" in bad.json()["error"]["details"]["values"][str(config.pk)]
    # Someone else's lease is not even visible to another reviewer.
    other = client_for(add_reviewers(tenant, 1)[0]).post(
        f"{base(tenant)}/assignments/{assignment_id}/submit/",
        {"values": {str(config.pk): 1.0}},
        format="json",
    )
    assert other.status_code == 404
    ok = reviewer.post(
        f"{base(tenant)}/assignments/{assignment_id}/submit/",
        {"values": {str(config.pk): 1.0}, "explanation": "Correct dose.", "failure_modes": []},
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["seconds_on_task"] >= 0
    board = owner.get(f"{base(tenant)}/queues/{queue_id}/board/").json()
    assert board["columns"]["complete"] == 1
    assert board["assignees"][0]["email"] == tenant.reviewer.email
    assert board["assignees"][0]["done"] == 1
    assignee = board["assignees"][0]
    assert assignee["seconds_on_task_avg"] >= 0
    assert assignee["seconds_on_task_total"] == assignee["seconds_on_task_avg"]
    # One review is no pace: not extrapolated to an hour (tests/review/test_small_samples.py).
    assert assignee["reviews_per_hour"] is None
    listed = owner.get(f"{base(tenant)}/queues/{queue_id}/items/", {"board_status": "complete"})
    assert [i["trace"] for i in listed.json()["results"]] == [trace.external_id]
    assert (
        owner.get(f"{base(tenant)}/queues/{queue_id}/items/", {"board_status": "pending"}).json()[
            "results"
        ]
        == []
    )
    assert (
        owner.get(f"{base(tenant)}/queues/{queue_id}/items/", {"board_status": "nope"}).status_code
        == 400
    )


def test_submitting_on_an_expired_lease_is_409(tenant, client_for):
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    add_traces(tenant, queue, 1)
    reviewer = client_for(tenant.reviewer)
    assignment_id = reviewer.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"][
        "id"
    ]
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=assignment_id).update(
            expires_at=timezone.now() - timedelta(seconds=5)
        )
    late = reviewer.post(
        f"{base(tenant)}/assignments/{assignment_id}/submit/",
        {"values": {str(config.pk): 1.0}},
        format="json",
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "lease_expired"


def test_blind_mode_hides_other_answers_and_automated_scores_until_you_submit(tenant, client_for):
    config = make_config(tenant)
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=[first, second], overlap=2)
    (item,) = add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project, trace_id=item.trace_id, name="judge", data_type="numeric",
            value=0.1, source="llm_judge", source_name="gpt-judge",
        )  # fmt: skip
    a, b = client_for(first), client_for(second)
    lease_a = a.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"]["id"]
    a.post(
        f"{base(tenant)}/assignments/{lease_a}/submit/",
        {"values": {str(config.pk): 0.25}, "explanation": "first-reviewer-reasoning"},
        format="json",
    )
    claim_b = b.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()
    lease_b = claim_b["assignment"]["id"]
    assert claim_b["item"]["revealed"] is False
    assert claim_b["item"]["annotations"] == []
    assert claim_b["item"]["scores"] == []
    item_url = f"{base(tenant)}/queues/{queue.pk}/items/{item.pk}/"
    hidden = b.get(item_url)
    assert "first-reviewer-reasoning" not in hidden.content.decode()
    assert "gpt-judge" not in hidden.content.decode()
    listed = b.get(f"{base(tenant)}/annotations/?item={item.pk}")
    assert listed.json()["results"] == []
    # A manager outside the pool sees everything.
    assert "gpt-judge" in client_for(tenant.owner).get(item_url).content.decode()

    b.post(
        f"{base(tenant)}/assignments/{lease_b}/submit/",
        {"values": {str(config.pk): 0.25}},
        format="json",
    )
    shown = b.get(item_url).json()
    assert shown["revealed"] is True
    assert {s["source"] for s in shown["scores"]} == {"llm_judge", "human"}
    assert "first-reviewer-reasoning" in str(shown["annotations"])


def test_disagreement_goes_to_adjudication_and_the_decision_sits_beside(tenant, client_for):
    config = make_config(tenant)
    first, second, senior = add_reviewers(tenant, 3)
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=[first, second, senior],
        seniors=(senior,),
        thresholds={config.pk: 0.25},
        overlap=2,
    )
    (item,) = add_traces(tenant, queue, 1)
    for user, value in ((first, 0.0), (second, 1.0)):
        client = client_for(user)
        lease = client.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"]["id"]
        response = client.post(
            f"{base(tenant)}/assignments/{lease}/submit/",
            {"values": {str(config.pk): value}},
            format="json",
        )
        assert response.status_code == 201
    with tenancy.tenant_scope(tenant.organization.pk):
        item.refresh_from_db()
        assert item.status == ItemStatus.NEEDS_ADJUDICATION
    url = f"{base(tenant)}/queues/{queue.pk}/items/{item.pk}/adjudicate/"
    body = {"values": {str(config.pk): 0.5}, "explanation": "Partly right."}
    refused = client_for(first).post(url, body, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_senior"
    detail = client_for(senior).get(f"{base(tenant)}/queues/{queue.pk}/items/{item.pk}/").json()
    assert detail["disagreement"][str(config.pk)]["spread"] == 1.0
    decided = client_for(senior).post(url, body, format="json")
    assert decided.status_code == 201, decided.content
    assert decided.json()["disagreement"][str(config.pk)]["answers"] == [0.0, 1.0]
    assert client_for(senior).post(url, body, format="json").status_code == 409
    with tenancy.tenant_scope(tenant.organization.pk):
        item.refresh_from_db()
        assert item.status == ItemStatus.ADJUDICATED
        originals = sorted(a.values[str(config.pk)] for a in Annotation.objects.filter(item=item))
        assert originals == [0.0, 1.0]
        human = Score.objects.filter(trace_id=item.trace_id, source="human")
        assert sorted(s.value for s in human) == [0.0, 0.5, 1.0]


def test_agreeing_reviews_complete_and_audit_sampling_marks_items(tenant, client_for):
    config = make_config(tenant)
    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=reviewers,
        thresholds={config.pk: 0.25},
        overlap=2,
        audit_sample_rate=1.0,
    )
    (item,) = add_traces(tenant, queue, 1)
    for user in reviewers:
        client = client_for(user)
        lease = client.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"]["id"]
        client.post(
            f"{base(tenant)}/assignments/{lease}/submit/",
            {"values": {str(config.pk): 0.75}},
            format="json",
        )
    with tenancy.tenant_scope(tenant.organization.pk):
        item.refresh_from_db()
    assert (item.status, item.audit_status) == ("complete", "pending")
    audit = client_for(tenant.owner).post(
        f"{base(tenant)}/queues/{queue.pk}/items/{item.pk}/adjudicate/",
        {"values": {str(config.pk): 0.75}},
        format="json",
    )
    assert audit.status_code == 201 and audit.json()["kind"] == "audit"


def test_stale_annotation_edit_is_409_and_history_shows_who_changed_what(tenant, client_for):
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    add_traces(tenant, queue, 1)
    reviewer = client_for(tenant.reviewer)
    lease = reviewer.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"]["id"]
    annotation = reviewer.post(
        f"{base(tenant)}/assignments/{lease}/submit/",
        {"values": {str(config.pk): 0.5}},
        format="json",
    ).json()
    url = f"{base(tenant)}/annotations/{annotation['id']}/"
    edited = reviewer.patch(
        url, {"version": 1, "values": {str(config.pk): 0.75}, "explanation": "Rechecked."},
        format="json",
    )  # fmt: skip
    assert edited.status_code == 200 and edited.json()["version"] == 2
    stale = reviewer.patch(url, {"version": 1, "values": {str(config.pk): 0.0}}, format="json")
    assert stale.status_code == 409
    assert stale.json()["error"]["details"] == {"current_version": 2}
    assert reviewer.get(url).json()["values"] == {str(config.pk): 0.75}
    not_author = client_for(tenant.admin).patch(url, {"version": 2}, format="json")
    assert not_author.status_code == 403
    history = reviewer.get(f"{url}history/").json()
    assert [h["history_type"] for h in history] == ["~", "+"]
    changed = {c["field"]: (c["old"], c["new"]) for c in history[0]["changes"]}
    assert changed["values"] == ({str(config.pk): 0.5}, {str(config.pk): 0.75})
    assert history[0]["user"] == tenant.reviewer.email
    with tenancy.tenant_scope(tenant.organization.pk):
        scores = Score.objects.filter(metadata__annotation_id=annotation["id"])
        assert [s.value for s in scores] == [0.75]


def test_bulk_add_from_a_trace_filter_covers_every_page_once_with_history(tenant, client_for):
    queue = make_queue(tenant)
    errors = [make_trace(tenant, status="error") for _ in range(7)]
    make_trace(tenant, status="ok")
    owner = client_for(tenant.owner)
    url = f"{base(tenant)}/queues/{queue.pk}/items/bulk-add/"
    with tenancy.tenant_scope(tenant.organization.pk):
        from hitl.audit import Actor
        from review import services

        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=errors[0].pk)
    first = owner.post(url, {"filter": {"status": "error"}}, format="json")
    assert first.status_code == 200, first.content
    assert first.json() == {"matched": 7, "added": 6, "already_queued": 1}
    assert owner.post(url, {"filter": {"status": "error"}}, format="json").json()["added"] == 0
    bad = owner.post(url, {"filter": {"status": "exploded"}}, format="json")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["details"]
    unknown = owner.post(url, {"filter": {"colour": "red"}}, format="json")
    assert unknown.status_code == 400
    with tenancy.tenant_scope(tenant.organization.pk):
        items = QueueItem.objects.filter(queue=queue, source="bulk_filter")
        assert sorted(i.trace_id for i in items) == sorted(t.pk for t in errors[1:])
        for item in items:
            (row,) = QueueItem.history.filter(id=item.pk)
            assert (row.history_type, row.history_user) == ("+", tenant.owner)
            assert row.source_detail == {"filter": {"status": "error"}}


def test_adding_another_organizations_trace_over_the_api_is_400(tenant, other_tenant, client_for):
    queue = make_queue(tenant)
    foreign = make_trace(other_tenant)
    response = client_for(tenant.owner).post(
        f"{base(tenant)}/queues/{queue.pk}/items/", {"trace_id": foreign.external_id}, format="json"
    )
    assert response.status_code == 400
    assert "trace_id" in response.json()["error"]["details"]


def test_comments_mentions_search_and_stable_links(tenant, client_for):
    from tests.review.helpers import make_span

    trace = make_trace(tenant)
    span = make_span(trace, name="retrieve docs")
    reviewer = client_for(tenant.reviewer)
    url = f"{base(tenant)}/comments/"
    created = reviewer.post(
        url,
        {"body": f"Retriever missed the dosage table, @{tenant.admin.email} please check",
         "trace_id": trace.external_id, "span_id": span.external_id},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    comment = created.json()
    assert comment["trace"] == trace.external_id and comment["span"] == span.external_id
    assert comment["mentions"] == [tenant.admin.pk]
    assert comment["url"].endswith(f"/comments/{comment['id']}/")
    assert reviewer.get(comment["url"].split("testserver")[-1].split("8000")[-1]).status_code == 200
    found = reviewer.get(url, {"q": "dosage"}).json()["results"]
    assert [c["id"] for c in found] == [comment["id"]]
    assert reviewer.get(url, {"q": "antibiotics"}).json()["results"] == []
    assert reviewer.get(url, {"mentions": tenant.admin.pk}).json()["results"]
    assert (
        client_for(tenant.viewer)
        .post(url, {"body": "hi", "trace_id": trace.external_id})
        .status_code
        == 403
    )
    assert reviewer.post(url, {"body": "x", "trace_id": 10**9}, format="json").status_code == 400
    edit = client_for(tenant.admin).patch(f"{url}{comment['id']}/", {"body": "mine now"})
    assert edit.status_code == 403


def test_routing_rule_with_an_invalid_filter_is_refused(tenant, client_for):
    queue = make_queue(tenant)
    url = f"{base(tenant)}/routing-rules/"
    body = {"name": "errors", "queue_id": queue.pk, "signal": "error",
            "filter_params": {"latency_ms_min": "fast"}}  # fmt: skip
    response = client_for(tenant.owner).post(url, body, format="json")
    assert response.status_code == 400
    assert "latency_ms_min" in response.json()["error"]["details"]["filter_params"]
    body["filter_params"] = {"status": "error"}
    assert (
        client_for(tenant.owner).post(url, {**body, "sampling_rate": 0}, format="json").status_code
        == 400
    )
    ok = client_for(tenant.owner).post(url, body, format="json")
    assert ok.status_code == 201, ok.content


def test_api_keys_read_and_write_by_scope_but_never_review(tenant, client_for):
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    (item,) = add_traces(tenant, queue, 1)
    read_key = client_for(key=tenant.key("read"))
    assert read_key.get(f"{base(tenant)}/queues/").status_code == 200
    assert read_key.get(f"{base(tenant)}/queues/{queue.pk}/items/{item.pk}/").status_code == 200
    refused = read_key.post(f"{base(tenant)}/score-configs/", {"name": "x"}, format="json")
    assert refused.status_code == 403
    write_key = client_for(key=tenant.key("write"))
    assert write_key.get(f"{base(tenant)}/queues/").status_code == 403
    created = write_key.post(
        f"{base(tenant)}/queues/{queue.pk}/items/",
        {"trace_id": make_trace(tenant).external_id},
        format="json",
    )
    assert created.status_code == 201
    comment = client_for(key=tenant.key("all")).post(
        f"{base(tenant)}/comments/", {"body": "from CI", "item_id": item.pk}, format="json"
    )
    assert comment.status_code == 403


def test_comment_on_a_queue_item_names_its_trace(tenant, client_for):
    queue = make_queue(tenant)
    (item,) = add_traces(tenant, queue, 1)
    response = client_for(tenant.reviewer).post(
        f"{base(tenant)}/comments/", {"body": "Edge case", "item_id": item.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    with tenancy.tenant_scope(tenant.organization.pk):
        trace_id = item.trace.external_id  # the id the client sent, not the row id
    assert (response.json()["item"], response.json()["trace"]) == (item.pk, trace_id)


def test_queue_and_rule_edits_over_the_api_with_history(tenant, client_for):
    first, second = make_config(tenant), make_config(tenant)
    queue = make_queue(tenant, configs=[first])
    owner = client_for(tenant.owner)
    url = f"{base(tenant)}/queues/{queue.pk}/"
    with tenancy.tenant_scope(tenant.organization.pk):
        admin_membership = Membership.objects.get(user=tenant.admin)
    patched = owner.patch(
        url,
        {
            "overlap": 2,
            "blind_mode": False,
            "form": [
                {"config_id": second.pk},
                {"config_id": first.pk, "numeric_tolerance": 0.5},
            ],
            "reviewers": [{"membership_id": admin_membership.pk, "is_senior": True}],
        },
        format="json",
    )
    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert [f["config_id"] for f in body["form"]] == [second.pk, first.pk]
    assert body["reviewers"][0]["email"] == tenant.admin.email
    history = owner.get(f"{url}history/").json()
    changed = {c["field"] for c in history[0]["changes"]}
    assert {"overlap", "blind_mode"} <= changed
    assert owner.patch(url, {"overlap": 0}, format="json").status_code == 400
    assert client_for(tenant.reviewer).patch(url, {"overlap": 3}, format="json").status_code == 403

    rules = f"{base(tenant)}/routing-rules/"
    rule = owner.post(
        rules,
        {"name": "slow", "queue_id": queue.pk, "signal": "high_latency",
         "filter_params": {"latency_ms_min": "5000"}, "sampling_rate": 0.1, "daily_cap": 50},
        format="json",
    ).json()  # fmt: skip
    edited = owner.patch(f"{rules}{rule['id']}/", {"daily_cap": 10}, format="json")
    assert edited.status_code == 200 and edited.json()["daily_cap"] == 10
    bad = owner.patch(f"{rules}{rule['id']}/", {"filter_params": {"nope": 1}}, format="json")
    assert bad.status_code == 400
    assert owner.delete(f"{rules}{rule['id']}/").status_code == 204
    archived = owner.delete(url)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert client_for(tenant.reviewer).post(f"{url}claim/").status_code == 409


def test_bulk_update_answers_each_item_with_its_new_priority_and_assignees(tenant, client_for):
    queue = make_queue(tenant, reviewers=[tenant.reviewer])
    first, second, untouched = add_traces(tenant, queue, 3)
    response = client_for(tenant.owner).post(
        f"{base(tenant)}/queues/{queue.pk}/items/bulk-update/",
        {"item_ids": [first.pk, second.pk], "priority": 7, "assignees": [tenant.reviewer.pk]},
        format="json",
    )
    assert response.status_code == 200, response.content
    answered = {item["id"]: item for item in response.json()}
    assert set(answered) == {first.pk, second.pk}
    assert all(item["priority"] == 7 for item in answered.values())
    assert all(item["assignees"] == [tenant.reviewer.pk] for item in answered.values())
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QueueItem.objects.get(pk=untouched.pk).priority != 7


def test_a_priority_past_the_column_is_400_on_every_bulk_write(tenant, client_for):
    queue = make_queue(tenant)
    [item] = add_traces(tenant, queue, 1)
    client = client_for(tenant.owner)
    url = f"{base(tenant)}/queues/{queue.pk}/items/"
    huge = "9" * 400  # a string DRF reads as an integer; a JSON number that long is 400 too
    for path, body in (
        ("bulk-add/", {"filter": {}, "priority": huge}),
        ("bulk-update/", {"item_ids": [item.pk], "priority": huge}),
    ):
        response = client.post(url + path, body, format="json")
        assert response.status_code == 400, (path, response.content)
        assert "priority" in response.json()["error"]["details"], response.json()


def test_release_and_skip_answer_the_ended_lease(tenant, client_for):
    queue = make_queue(tenant, reviewers=[tenant.reviewer], overlap=1)
    add_traces(tenant, queue, 2)
    client = client_for(tenant.reviewer)
    first = client.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"]
    released = client.post(f"{base(tenant)}/assignments/{first['id']}/release/")
    assert released.status_code == 200, released.content
    assert released.json()["id"] == first["id"] and released.json()["state"] == "released"
    assert released.json()["ended_at"]

    second = client.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()["assignment"]
    skipped = client.post(
        f"{base(tenant)}/assignments/{second['id']}/skip/", {"reason": "not my field"},
        format="json",
    )  # fmt: skip
    assert skipped.status_code == 200, skipped.content
    assert skipped.json()["id"] == second["id"] and skipped.json()["state"] == "skipped"
    assert skipped.json()["skip_reason"] == "not my field"


def test_deletes_of_the_review_api_answer_what_they_did(tenant, client_for):
    """Removing an item, a routing rule and a comment answers 204 with nothing; deleting a
    score config archives it and answers the config."""
    from review import services as review_services
    from review.models import Comment, RoutingRule, ScoreConfig

    config = make_config(tenant, name="to-archive")
    queue = make_queue(tenant, configs=[config])
    [item] = add_traces(tenant, queue, 1)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = review_services.routing_rule_create(
            actor=owner, project=tenant.project, queue_id=queue.pk, name="errors",
            signal="error", filter_params={"status": "error"},
        )  # fmt: skip
        comment = review_services.comment_create(
            actor=owner, project=tenant.project, body="first", trace_id=item.trace_id
        )
    client = client_for(tenant.owner)

    edited = client.patch(
        f"{base(tenant)}/comments/{comment.pk}/", {"body": "second thoughts"}, format="json"
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["body"] == "second thoughts" and edited.json()["edited_at"]

    archived = client.delete(f"{base(tenant)}/score-configs/{config.pk}/")
    assert archived.status_code == 200, archived.content
    assert archived.json()["id"] == config.pk and archived.json()["archived_at"]

    for url in (
        f"{base(tenant)}/queues/{queue.pk}/items/{item.pk}/",
        f"{base(tenant)}/routing-rules/{rule.pk}/",
        f"{base(tenant)}/comments/{comment.pk}/",
    ):
        deleted = client.delete(url)
        assert deleted.status_code == 204 and deleted.content == b"", (url, deleted.content)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not QueueItem.objects.filter(pk=item.pk).exists()
        assert not RoutingRule.objects.filter(pk=rule.pk).exists()
        assert not Comment.objects.filter(pk=comment.pk).exists()
        assert ScoreConfig.objects.get(pk=config.pk).archived_at is not None
