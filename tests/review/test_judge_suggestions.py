"""Judge suggestions on the review page: a queue shows the automated score named as a
question as its suggestion (off, after, before; in a blind queue only when the lead
says so, refused with a reason otherwise, by the service, the API and the lead's form);
every annotation records what its reviewer was shown, from the server's own read, and
the client's claims are checked against the queue's mode; a share of items is held out
without suggestions, drawn per item, the same on every read, and fixed at the first
review."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError
from review import selectors, services
from review.models import Annotation, QueueItem, ReviewQueue, SuggestionArm
from tests.factories import make_user
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_traces, make_config, make_queue
from traces.models import Score


def _judge(tenant, item, name, *, value=None, label="", data_type="boolean", **more):
    with tenancy.tenant_scope(tenant.organization.pk):
        return Score.objects.create(
            project=tenant.project, trace_id=item.trace_id, name=name, data_type=data_type,
            value=value, label=label, source=more.pop("source", "llm_judge"),
            source_name="gpt-judge", source_version="v3", **more,
        )  # fmt: skip


@pytest.fixture
def correct(tenant):
    return make_config(
        tenant, name="Correct", data_type="boolean", min_value=None, max_value=None, step=None
    )


@pytest.fixture
def tone(tenant):
    return make_config(
        tenant,
        name="Tone",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": "rude", "value": 0}, {"label": "kind", "value": 1}],
    )


def _lease(tenant, queue, user=None):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.queue_claim_next(actor=Actor(user=user or tenant.reviewer), queue=queue)


def _submit(tenant, lease, values, user=None, **claims):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.assignment_submit(
            actor=Actor(user=user or tenant.reviewer),
            assignment_id=lease.pk,
            values=values,
            **claims,
        )


def test_a_blind_queue_shows_suggestions_only_when_the_lead_says_so(tenant, correct):
    with pytest.raises(DomainError) as refused:
        make_queue(tenant, configs=[correct], blind_mode=True, suggestion_mode="before")
    assert "suggestions_in_blind" in refused.value.details
    assert "blind" in refused.value.message
    queue = make_queue(
        tenant, configs=[correct], blind_mode=True, suggestion_mode="before",
        suggestions_in_blind=True,
    )  # fmt: skip
    # Turning the flag off again while suggestions are on is refused too.
    with tenancy.tenant_scope(tenant.organization.pk), pytest.raises(DomainError):
        services.queue_update(
            actor=Actor(user=tenant.owner), queue=queue, suggestions_in_blind=False
        )
    open_queue = make_queue(tenant, configs=[correct], blind_mode=False, suggestion_mode="after")
    with tenancy.tenant_scope(tenant.organization.pk), pytest.raises(DomainError):
        services.queue_update(actor=Actor(user=tenant.owner), queue=open_queue, blind_mode=True)
    with pytest.raises(DomainError) as share:
        make_queue(tenant, configs=[correct], blind_mode=False, suggestion_holdout_percent=101)
    assert "suggestion_holdout_percent" in share.value.details


def test_the_api_refuses_suggestions_in_a_blind_queue_with_a_reason(tenant, correct):
    client = Client()
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/queues/"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {tenant.key()}"}
    body = {"name": "Judged", "form": [{"config_id": correct.pk}], "suggestion_mode": "before"}
    response = client.post(base, json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 400, response.content
    assert "suggestions_in_blind" in response.content.decode()
    body |= {"suggestions_in_blind": True, "suggestion_holdout_percent": 30}
    response = client.post(base, json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["suggestion_mode"] == "before"
    assert created["suggestions_in_blind"] is True
    assert created["suggestion_holdout_percent"] == 30
    patch = client.patch(
        f"{base}{created['id']}/",
        json.dumps({"suggestions_in_blind": False}),
        content_type="application/json",
        **headers,
    )
    assert patch.status_code == 400, patch.content
    assert "blind" in patch.content.decode()
    for wrong in ({"suggestion_mode": "sometimes"}, {"suggestion_holdout_percent": -1}):
        response = client.patch(
            f"{base}{created['id']}/", json.dumps(wrong), content_type="application/json",
            **headers,
        )  # fmt: skip
        assert response.status_code == 400, response.content


def test_the_suggestion_is_the_latest_judge_score_named_as_the_question(tenant, correct, tone):
    queue = make_queue(tenant, configs=[correct, tone], blind_mode=False, suggestion_mode="before")
    (item,) = add_traces(tenant, queue, 1)
    _judge(tenant, item, "Correct", value=0.0)
    newest = _judge(tenant, item, "Correct", value=1.0)
    _judge(tenant, item, "Correct", value=0.0, source="human")  # not a judge
    _judge(tenant, item, "Tone", data_type="categorical", label="sarcastic", value=0.5)
    with tenancy.tenant_scope(tenant.organization.pk):
        found = selectors.item_suggestions(item, selectors.queue_form(queue))
    # The tone's label is no option of the question: no suggestion for it.
    assert list(found) == [str(correct.pk)]
    assert found[str(correct.pk)]["value"] is True
    assert found[str(correct.pk)]["score_id"] == newest.pk
    assert found[str(correct.pk)]["source_version"] == "v3"


def test_an_annotation_records_what_its_reviewer_was_shown(tenant, correct, tone):
    queue = make_queue(tenant, configs=[correct, tone], blind_mode=False, suggestion_mode="before")
    (item,) = add_traces(tenant, queue, 1)
    _judge(tenant, item, "Correct", value=1.0)
    _judge(tenant, item, "Tone", data_type="categorical", label="kind", value=1.0)
    lease = _lease(tenant, queue)
    answers = {str(correct.pk): True, str(tone.pk): "rude"}
    # A claim the answers contradict: "accepted" the tone, but answered otherwise.
    with pytest.raises(DomainError) as refused:
        _submit(tenant, lease, answers, suggestions_seen=[correct.pk, tone.pk],
                suggestions_accepted=[tone.pk])  # fmt: skip
    assert "not the suggestion accepted" in refused.value.message
    annotation = _submit(
        tenant, lease, answers, suggestions_seen=[correct.pk, tone.pk],
        suggestions_accepted=[correct.pk],
    )  # fmt: skip
    record = annotation.suggestions
    assert record["mode"] == "before" and record["arm"] == "shown"
    shown = record["questions"]
    assert shown[str(correct.pk)] | {"score_id": 0} == {
        "question": "Correct", "value": True, "text": "true", "score_id": 0,
        "score_name": "Correct", "source": "llm_judge", "source_name": "gpt-judge",
        "source_version": "v3",
        "visible": "before", "accepted_by_key": True, "outcome": "accepted",
    }  # fmt: skip
    assert shown[str(tone.pk)]["value"] == "kind"
    assert shown[str(tone.pk)]["outcome"] == "changed"
    assert shown[str(tone.pk)]["accepted_by_key"] is False
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QueueItem.objects.get(pk=item.pk).suggestion_arm == SuggestionArm.SHOWN
        # The edit history keeps it.
        assert Annotation.history.filter(id=annotation.pk).first().suggestions == record
    # The admin's history reads it in words, for an auditor.
    root = make_user(is_staff=True)
    root.is_superuser = True
    root.save()
    client = Client()
    client.force_login(root)
    page = client.get(f"/admin/review/annotation/{annotation.pk}/history/")
    body = page.content.decode()
    assert page.status_code == 200
    taken = "Correct: gpt-judge v3 suggested “true”, shown before answering, accepted, taken"
    assert taken in body
    assert "Tone: gpt-judge v3 suggested “kind”, shown before answering, changed" in body
    # So does the lead's page of the annotation.
    lead = signed_in(tenant.admin).get(
        project_url(tenant, "lead-annotation", annotation_pk=annotation.pk)
    )
    assert 'id="suggestions-shown"' in lead.content.decode()
    assert "Tone: gpt-judge v3 suggested “kind”, shown before answering, changed" in (
        lead.content.decode()
    )


def test_claims_the_mode_cannot_have_produced_are_refused(tenant, correct):
    queue = make_queue(tenant, configs=[correct], blind_mode=True)  # suggestions off
    items = add_traces(tenant, queue, 2)
    for item in items:
        _judge(tenant, item, "Correct", value=1.0)
    lease = _lease(tenant, queue)
    for claims in ({"suggestions_seen": [correct.pk]}, {"suggestions_accepted": [correct.pk]}):
        with pytest.raises(DomainError) as refused:
            _submit(tenant, lease, {str(correct.pk): True}, **claims)
        assert refused.value.details
    annotation = _submit(tenant, lease, {str(correct.pk): True})
    # Off in a blind queue: the judge's score was nowhere on the page.
    assert annotation.suggestions["mode"] == "off"
    assert annotation.suggestions["questions"][str(correct.pk)]["visible"] == "no"
    with tenancy.tenant_scope(tenant.organization.pk):
        # Off: no A/B, the item keeps no arm.
        assert QueueItem.objects.get(pk=lease.item_id).suggestion_arm == ""


def test_a_share_of_items_is_held_out_per_item_and_fixed_at_the_first_review(tenant, correct):
    queue = make_queue(
        tenant, configs=[correct], blind_mode=False, suggestion_mode="before",
        suggestion_holdout_percent=40, overlap=2,
    )  # fmt: skip
    items = add_traces(tenant, queue, 30)
    for item in items:
        _judge(tenant, item, "Correct", value=1.0)
    with tenancy.tenant_scope(tenant.organization.pk):
        arms = {item.pk: selectors.suggestion_arm(item, queue) for item in items}
        # The same on another read (another tab, another process).
        again = {
            item.pk: selectors.suggestion_arm(QueueItem.objects.get(pk=item.pk), queue)
            for item in items
        }
    assert arms == again
    hidden = [pk for pk, arm in arms.items() if arm == SuggestionArm.HIDDEN]
    assert 4 <= len(hidden) <= 20  # 40% of 30, drawn
    lease = _lease(tenant, queue)
    arm = arms[lease.item_id]
    seen = [correct.pk] if arm == SuggestionArm.SHOWN else []
    annotation = _submit(tenant, lease, {str(correct.pk): False}, suggestions_seen=seen)
    assert annotation.suggestions["arm"] == arm
    expected_mode = "before" if arm == SuggestionArm.SHOWN else "off"
    assert annotation.suggestions["mode"] == expected_mode
    # Held-out items show nothing, and the page's scores panel leaves the judge out.
    visible = annotation.suggestions["questions"][str(correct.pk)]["visible"]
    assert visible == ("before" if arm == SuggestionArm.SHOWN else "no")
    # The arm is fixed at the first review: a new share changes no reviewed item's arm.
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_update(
            actor=Actor(user=tenant.owner),
            queue=queue,
            suggestion_holdout_percent=0 if arm == SuggestionArm.HIDDEN else 100,
        )
        queue.refresh_from_db()
        item = QueueItem.objects.get(pk=lease.item_id)
        assert selectors.suggestion_arm(item, queue) == arm


def _page(client, tenant, lease):
    url = reverse(
        "review-item",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "assignment_pk": lease.pk,
        },
    )
    return url, client.get(url)


def test_the_review_page_shows_the_suggestion_and_its_submit_records_it(tenant, correct):
    queue = make_queue(tenant, configs=[correct], blind_mode=False, suggestion_mode="before")
    (item,) = add_traces(tenant, queue, 1)
    _judge(tenant, item, "Correct", value=0.0)
    lease = _lease(tenant, queue)
    client = Client()
    client.force_login(tenant.reviewer)
    url, page = _page(client, tenant, lease)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Judge suggests" in html and 'data-value="false"' in html
    # Not in the scores panel as well.
    assert 'id="item-scores"' not in html
    submit = url.replace("/review/", "/review/", 1) + "submit/"
    sent = {f"q-{correct.pk}": "false", "suggestion_seen": [str(correct.pk)],
            "suggestion_accepted": [str(correct.pk)]}  # fmt: skip
    # A suggestion of a question the form does not ask: the form refuses it.
    response = client.post(submit, {**sent, "suggestion_seen": ["999999"]})
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Annotation.objects.exists()
    response = client.post(submit, sent)
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        record = Annotation.objects.get().suggestions
    assert record["questions"][str(correct.pk)]["visible"] == "before"
    assert record["questions"][str(correct.pk)]["accepted_by_key"] is True


def test_after_mode_hides_the_suggestion_until_the_question_is_answered(tenant, correct):
    queue = make_queue(tenant, configs=[correct], blind_mode=False, suggestion_mode="after")
    (item,) = add_traces(tenant, queue, 1)
    _judge(tenant, item, "Correct", value=1.0)
    lease = _lease(tenant, queue)
    client = Client()
    client.force_login(tenant.reviewer)
    _url, page = _page(client, tenant, lease)
    html = page.content.decode()
    assert "data-after hidden" in html
    assert f'name="suggestion_seen" value="{correct.pk}" disabled' in html


def test_the_leads_queue_form_sets_suggestions_and_refuses_them_in_a_blind_queue(tenant, correct):
    client = signed_in(tenant.admin)
    base = {
        "name": "Judged", "overlap": "1", "assignment_strategy": "pull", f"q-{correct.pk}": "on",
        "blind_mode": "on", "suggestion_mode": "before", "suggestion_holdout_percent": "25",
    }  # fmt: skip
    page = client.post(project_url(tenant, "lead-queue-create"), base)
    assert page.status_code == 422
    assert "unless you choose it explicitly" in page.content.decode()
    for wrong, reason in (
        ({"suggestion_mode": "sometimes"}, "Choose off, after or before."),
        ({"suggestion_holdout_percent": "101"}, "100"),
        ({"suggestion_holdout_percent": "ten"}, "whole number"),
    ):
        page = client.post(project_url(tenant, "lead-queue-create"), {**base, **wrong})
        assert page.status_code == 422 and reason in page.content.decode(), wrong
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ReviewQueue.objects.filter(name="Judged").exists()
    page = client.post(
        project_url(tenant, "lead-queue-create"), {**base, "suggestions_in_blind": "on"}
    )
    assert page.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = ReviewQueue.objects.get(name="Judged")
    assert (queue.suggestion_mode, queue.suggestions_in_blind, queue.suggestion_holdout_percent) \
        == ("before", True, 25)  # fmt: skip
    edit = client.get(project_url(tenant, "lead-queue-edit", queue_pk=queue.pk)).content.decode()
    assert 'value="before" selected' in edit and 'name="suggestion_holdout_percent"' in edit


def test_the_api_shows_the_suggestion_on_a_claim_and_the_record_on_the_annotation(
    tenant, correct, client_for
):
    queue = make_queue(tenant, configs=[correct], blind_mode=False, suggestion_mode="before")
    (item,) = add_traces(tenant, queue, 1)
    _judge(tenant, item, "Correct", value=1.0)
    api = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    reviewer = client_for(tenant.reviewer)
    claim = reviewer.post(f"{api}/queues/{queue.pk}/claim/").json()
    suggestions = claim["item"]["suggestions"]
    assert suggestions["mode"] == "before" and suggestions["arm"] == "shown"
    assert suggestions["questions"][str(correct.pk)]["value"] is True
    assert claim["item"]["suggestion_arm"] == ""  # drawn, fixed at the first review
    submit = f"{api}/assignments/{claim['assignment']['id']}/submit/"
    wrong = reviewer.post(
        submit,
        {"values": {str(correct.pk): False}, "suggestions_accepted": [correct.pk]},
        format="json",
    )
    assert wrong.status_code == 400, wrong.content
    assert "suggestions_accepted" in wrong.json()["error"]["details"]
    sent = reviewer.post(
        submit,
        {"values": {str(correct.pk): False}, "suggestions_seen": [correct.pk]},
        format="json",
    )
    assert sent.status_code == 201, sent.content
    shown = sent.json()["suggestions"]["questions"][str(correct.pk)]
    assert (shown["visible"], shown["outcome"]) == ("before", "changed")
    listed = client_for(tenant.owner).get(f"{api}/annotations/").json()
    (row,) = listed["results"] if isinstance(listed, dict) else listed
    assert row["suggestions"]["questions"][str(correct.pk)]["value"] is True


def test_a_score_suggests_only_an_answer_its_question_takes():
    from review.models import ScoreConfig

    scale = ScoreConfig(data_type="numeric", min_value=1.0, max_value=5.0, step=1.0)
    assert selectors.suggested_answer(scale, "numeric", 4.0, "") == 4.0
    assert selectors.suggested_answer(scale, "numeric", 3.7, "") is None  # off the step
    assert selectors.suggested_answer(scale, "numeric", 9.0, "") is None  # out of range
    assert selectors.suggested_answer(scale, "boolean", 1.0, "true") is None  # another type
    yes_no = ScoreConfig(data_type="boolean")
    assert selectors.suggested_answer(yes_no, "boolean", 0.0, "false") is False
    assert selectors.suggested_answer(yes_no, "boolean", None, "") is None
    text = ScoreConfig(data_type="text")
    assert selectors.suggested_answer(text, "text", None, "Looks right.") is None


def test_after_mode_withholds_the_suggestion_from_the_api_until_the_submit(
    tenant, correct, client_for
):
    """In ``after`` the API answers every question at once, so whoever holds the lease
    sees no suggestion on the claim or the item (``withheld``); the submit's annotation
    records it, and the item shows it once answered."""
    queue = make_queue(tenant, configs=[correct], blind_mode=False, suggestion_mode="after")
    (item,) = add_traces(tenant, queue, 1)
    _judge(tenant, item, "Correct", value=1.0)
    api = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    reviewer = client_for(tenant.reviewer)
    claim = reviewer.post(f"{api}/queues/{queue.pk}/claim/").json()
    held = claim["item"]["suggestions"]
    assert held == {"mode": "after", "arm": "shown", "questions": {}, "withheld": True}
    read = reviewer.get(f"{api}/queues/{queue.pk}/items/{item.pk}/").json()["suggestions"]
    assert read["withheld"] is True and read["questions"] == {}
    sent = reviewer.post(
        f"{api}/assignments/{claim['assignment']['id']}/submit/",
        {"values": {str(correct.pk): False}},
        format="json",
    )
    assert sent.status_code == 201, sent.content
    record = sent.json()["suggestions"]["questions"][str(correct.pk)]
    assert (record["value"], record["visible"], record["outcome"]) == (True, "no", "changed")
    after = reviewer.get(f"{api}/queues/{queue.pk}/items/{item.pk}/").json()["suggestions"]
    assert after["withheld"] is False and after["questions"][str(correct.pk)]["value"] is True
