"""The reviewer's pages beyond one review: My history (edits, the readable 409), what
others said once I submitted, adjudication for seniors, the next item fetched ahead,
Markdown rendered safely, comments on spans and the failure-mode picker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Adjudication, Annotation, Assignment, Comment, QueueItem
from review.payloads import render_text
from tests.factories import add_member, make_user
from tests.review.helpers import add_traces, make_config, make_queue, make_span, make_trace

CATEGORIES = [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(name: str, tenant, **kwargs) -> str:
    return reverse(
        name,
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            **kwargs,
        },
    )


def _org_url(name: str, tenant) -> str:
    return reverse(name, kwargs={"org_slug": tenant.organization.slug})


def _scoped(tenant):
    return tenancy.tenant_scope(tenant.organization.pk)


@pytest.fixture
def second(tenant):
    user = make_user("second@acme.example.com")
    add_member(tenant.organization, user, "reviewer")
    return user


@pytest.fixture
def pair(tenant, second):
    """A blind queue of overlap 2 (reviewer and second), the admin its senior."""
    config = make_config(
        tenant, name="Accuracy", data_type="categorical", options=CATEGORIES, required=True
    )
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=[tenant.reviewer, second],
        name="Pairs",
        overlap=2,
        blind_mode=True,
    )
    return queue, config


def _review(tenant, user, queue, config, answer: str, explanation: str = "", **more):
    with _scoped(tenant):
        lease = services.queue_claim_next(actor=Actor(user=user), queue=queue)
        return services.assignment_submit(
            actor=Actor(user=user),
            assignment_id=lease.pk,
            values={str(config.pk): answer},
            explanation=explanation,
            **more,
        )


# --- My history -------------------------------------------------------------------------------


def test_my_history_lists_my_answers_only(tenant, second, pair):
    queue, config = pair
    add_traces(tenant, queue, 2)
    mine = _review(tenant, tenant.reviewer, queue, config, "Wrong", "mine-marker")
    _review(tenant, second, queue, config, "Correct", "theirs-marker")
    response = _client(tenant.reviewer).get(_org_url("review-history", tenant))
    assert response.status_code == 200
    page = response.content.decode()
    assert [row["annotation"].pk for row in response.context["rows"]] == [mine.pk]
    assert "Wrong" in page and "Pairs" in page
    assert "theirs-marker" not in page
    assert _url("review-history-item", tenant, annotation_pk=mine.pk) in page


def test_someone_elses_answer_is_not_found_in_my_history(tenant, second, pair):
    queue, config = pair
    add_traces(tenant, queue, 1)
    theirs = _review(tenant, second, queue, config, "Correct")
    url = _url("review-history-item", tenant, annotation_pk=theirs.pk)
    assert _client(tenant.reviewer).get(url).status_code == 404


def test_editing_an_answer_saves_a_new_version(tenant, second, pair):
    queue, config = pair
    add_traces(tenant, queue, 1)
    mine = _review(tenant, tenant.reviewer, queue, config, "Wrong", "first thought")
    url = _url("review-history-item", tenant, annotation_pk=mine.pk)
    client = _client(tenant.reviewer)
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="version" value="1"' in page.content.decode()
    response = client.post(
        url,
        {
            f"q-{config.pk}": "Correct",
            "explanation": "second thought",
            "version": "1",
            "failure_mode": [],
            "failure_modes": "hallucination, dose",
        },
    )
    assert response.status_code == 302
    with _scoped(tenant):
        mine.refresh_from_db()
    assert mine.version == 2
    assert mine.values == {str(config.pk): "Correct"}
    assert mine.explanation == "second thought"
    assert mine.failure_modes == ["hallucination", "dose"]


def test_a_stale_edit_shows_both_versions_instead_of_an_error(tenant, second, pair):
    queue, config = pair
    add_traces(tenant, queue, 1)
    mine = _review(tenant, tenant.reviewer, queue, config, "Wrong", "original")
    url = _url("review-history-item", tenant, annotation_pk=mine.pk)
    # Another tab (or the API) saves first.
    with _scoped(tenant):
        services.annotation_update(
            actor=Actor(user=tenant.reviewer),
            annotation_id=mine.pk,
            expected_version=1,
            explanation="saved-from-another-tab",
        )
    response = _client(tenant.reviewer).post(
        url, {f"q-{config.pk}": "Correct", "explanation": "my-stale-edit", "version": "1"}
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "Your answers changed while you edited them" in page
    assert "Your edit (not saved)" in page and "Saved now (version 2)" in page
    assert "saved-from-another-tab" in page and "my-stale-edit" in page
    # The form keeps my edit and now carries the saved version, to save over it on purpose.
    assert 'name="version" value="2"' in page
    assert response.context["comparison"][0] == {
        "name": "Accuracy",
        "mine": "Correct",
        "saved": "Wrong",
        "differs": True,
    }
    with _scoped(tenant):
        mine.refresh_from_db()
    assert (mine.version, mine.explanation) == (2, "saved-from-another-tab")


def test_what_others_said_appears_once_the_blind_rule_allows(tenant, second, pair):
    queue, config = pair
    add_traces(tenant, queue, 1)
    mine = _review(tenant, tenant.reviewer, queue, config, "Wrong", "mine")
    url = _url("review-history-item", tenant, annotation_pk=mine.pk)
    # The second reviewer holds the item but has not answered: nothing to show yet.
    with _scoped(tenant):
        lease = services.queue_claim_next(actor=Actor(user=second), queue=queue)
    before = _client(tenant.reviewer).get(url).content.decode()
    assert "What others said" not in before
    # While the second reviewer is blind, their review page shows nothing of mine.
    blind = _client(second).get(_url("review-item", tenant, assignment_pk=lease.pk))
    assert "Blind review" in blind.content.decode()
    assert tenant.reviewer.email not in blind.content.decode()
    with _scoped(tenant):
        services.assignment_submit(
            actor=Actor(user=second),
            assignment_id=lease.pk,
            values={str(config.pk): "Correct"},
            explanation="second-reviewer-reasoning",
        )
    after = _client(tenant.reviewer).get(url).content.decode()
    assert "What others said" in after
    assert "second-reviewer-reasoning" in after and second.email in after


def test_the_review_page_links_the_previous_item(tenant, second, pair):
    queue, config = pair
    add_traces(tenant, queue, 2)
    mine = _review(tenant, tenant.reviewer, queue, config, "Wrong")
    with _scoped(tenant):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    page = _client(tenant.reviewer).get(_url("review-item", tenant, assignment_pk=lease.pk))
    assert page.context["previous_url"] == _url(
        "review-history-item", tenant, annotation_pk=mine.pk
    )


# --- adjudication -----------------------------------------------------------------------------


@pytest.fixture
def disputed(tenant, second):
    config = make_config(
        tenant, name="Accuracy", data_type="categorical", options=CATEGORIES, required=True
    )
    grounded = make_config(tenant, name="Grounded", data_type="boolean")
    queue = make_queue(
        tenant,
        configs=[config, grounded],
        reviewers=[tenant.reviewer, second],
        seniors=(second,),
        name="Disputes",
        overlap=2,
    )
    add_traces(tenant, queue, 1)
    _review(tenant, tenant.reviewer, queue, config, "Wrong", "reviewer-one-why")
    with _scoped(tenant):
        lease = services.queue_claim_next(actor=Actor(user=second), queue=queue)
        services.assignment_submit(
            actor=Actor(user=second),
            assignment_id=lease.pk,
            values={str(config.pk): "Correct"},
            explanation="reviewer-two-why",
        )
        item = QueueItem.objects.get(queue=queue)
    assert item.status == "needs_adjudication"
    return queue, config, grounded, item


def test_the_senior_sees_the_disputed_item_and_others_do_not(tenant, second, disputed):
    _queue, _config, _grounded, item = disputed
    listed = _client(second).get(_org_url("review-adjudication", tenant))
    assert [row["item"].pk for row in listed.context["rows"]] == [item.pk]
    my_work = _client(second).get(_org_url("review-my-work", tenant))
    assert my_work.context["awaiting_decision"] == 1
    assert _org_url("review-adjudication", tenant) in my_work.content.decode()
    # The other reviewer is not a senior: an empty list, and the page answers 404.
    assert (
        _client(tenant.reviewer).get(_org_url("review-adjudication", tenant)).context["rows"] == []
    )
    url = _url("review-adjudicate", tenant, item_pk=item.pk)
    assert _client(tenant.reviewer).get(url).status_code == 404


def test_the_adjudication_page_shows_reviews_side_by_side_and_the_disagreement(
    tenant, second, disputed
):
    _queue, config, grounded, item = disputed
    response = _client(second).get(_url("review-adjudicate", tenant, item_pk=item.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "reviewer-one-why" in page and "reviewer-two-why" in page
    rows = {row["config_id"]: row for row in response.context["rows"]}
    assert rows[config.pk]["answers"] == ["Wrong", "Correct"]
    assert rows[config.pk]["disagreement"]["tie"] is True
    assert rows[grounded.pk]["disagreement"] is None
    assert f'class="disagree" id="row-{config.pk}"' in page
    assert f'class="" id="row-{grounded.pk}"' in page


def test_a_senior_decides_through_the_page(tenant, second, disputed):
    _queue, config, _grounded, item = disputed
    url = _url("review-adjudicate", tenant, item_pk=item.pk)
    response = _client(second).post(
        url, {f"q-{config.pk}": "Correct", "explanation": "the formulary says 2 g"}
    )
    assert response.status_code == 302
    assert response.url == _org_url("review-adjudication", tenant)
    with _scoped(tenant):
        decision = Adjudication.objects.get(item=item)
        item.refresh_from_db()
    assert decision.values == {str(config.pk): "Correct"}
    assert decision.adjudicator == second
    assert str(config.pk) in decision.disagreement
    assert item.status == "adjudicated"
    again = _client(second).get(url)
    assert "awaits no decision" in again.content.decode()


def test_a_decision_with_a_missing_required_answer_is_shown_again(tenant, second, disputed):
    _queue, _config, _grounded, item = disputed
    url = _url("review-adjudicate", tenant, item_pk=item.pk)
    response = _client(second).post(url, {"explanation": "kept"})
    assert response.status_code == 422
    assert "an answer is required" in response.content.decode()
    assert "kept" in response.content.decode()


# --- the next item, fetched ahead --------------------------------------------------------------


@pytest.fixture
def solo(tenant, second):
    config = make_config(
        tenant, name="Accuracy", data_type="categorical", options=CATEGORIES, required=True
    )
    queue = make_queue(
        tenant, configs=[config], reviewers=[tenant.reviewer, second], name="Solo", overlap=1
    )
    add_traces(tenant, queue, 3)
    return queue, config


def _leases(tenant, user):
    with _scoped(tenant):
        return list(Assignment.objects.filter(reviewer=user).order_by("pk"))


def test_prefetch_claims_one_item_ahead_and_never_two(tenant, solo):
    queue, _config = solo
    client = _client(tenant.reviewer)
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    url = _url("review-prefetch", tenant, assignment_pk=current.pk)
    first = client.post(url).json()
    second = client.post(url).json()
    leases = _leases(tenant, tenant.reviewer)
    assert len(leases) == 2
    ahead = leases[1]
    assert (
        first
        == second
        == {
            "url": _url("review-item", tenant, assignment_pk=ahead.pk),
            "assignment": ahead.pk,
        }
    )


def test_submit_opens_the_item_fetched_ahead(tenant, solo):
    queue, config = solo
    client = _client(tenant.reviewer)
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    ahead = client.post(_url("review-prefetch", tenant, assignment_pk=current.pk)).json()
    submit = _url("review-submit", tenant, assignment_pk=current.pk)
    # The script holds the next page: 204 naming it, and the previous item's link.
    fast = client.post(
        submit,
        {f"q-{config.pk}": "Correct"},
        headers={"X-Review-Buffered": str(ahead["assignment"])},
    )
    assert fast.status_code == 204
    assert fast["X-Review-Next"] == ahead["url"]
    with _scoped(tenant):
        annotation = Annotation.objects.get(assignment_id=current.pk)
    assert fast["X-Review-Previous"] == _url(
        "review-history-item", tenant, annotation_pk=annotation.pk
    )
    # Without the script, submit redirects to the same lease: nothing claimed twice.
    plain = client.post(
        _url("review-submit", tenant, assignment_pk=ahead["assignment"]),
        {f"q-{config.pk}": "Wrong"},
    )
    assert plain.status_code == 302
    leases = _leases(tenant, tenant.reviewer)
    assert [lease.state for lease in leases] == ["submitted", "submitted", "leased"]
    assert plain.url == _url("review-item", tenant, assignment_pk=leases[2].pk)


def test_a_stale_buffer_falls_back_to_the_ordinary_redirect(tenant, solo):
    queue, config = solo
    client = _client(tenant.reviewer)
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    response = client.post(
        _url("review-submit", tenant, assignment_pk=current.pk),
        {f"q-{config.pk}": "Correct"},
        headers={"X-Review-Buffered": "999999"},
    )
    assert response.status_code == 302
    leases = _leases(tenant, tenant.reviewer)
    assert len(leases) == 2
    assert response.url == _url("review-item", tenant, assignment_pk=leases[1].pk)


def test_a_closed_tab_loses_nothing_the_lease_ahead_expires(tenant, second, solo):
    queue, _config = solo
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    ahead = (
        _client(tenant.reviewer)
        .post(_url("review-prefetch", tenant, assignment_pk=current.pk))
        .json()
    )
    # The tab closes; time passes beyond the lease.
    with _scoped(tenant):
        Assignment.objects.filter(reviewer=tenant.reviewer).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        services.leases_expire(queue_id=queue.pk)
        states = {a.pk: a.state for a in Assignment.objects.filter(reviewer=tenant.reviewer)}
        assert states == {current.pk: "expired", ahead["assignment"]: "expired"}
        # Both items are claimable again, by anyone.
        claimed = [
            services.queue_claim_next(actor=Actor(user=second), queue=queue) for _ in range(3)
        ]
    assert all(claimed)
    assert {current.item_id} <= {c.item_id for c in claimed}


def test_release_gives_back_the_item_fetched_ahead_too(tenant, solo):
    queue, _config = solo
    client = _client(tenant.reviewer)
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    client.post(_url("review-prefetch", tenant, assignment_pk=current.pk))
    client.post(_url("review-release", tenant, assignment_pk=current.pk))
    assert [a.state for a in _leases(tenant, tenant.reviewer)] == ["released", "released"]


def test_a_buffered_render_leaves_flash_messages_for_the_page_shown(tenant, solo):
    queue, config = solo
    client = _client(tenant.reviewer)
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    response = client.post(
        _url("review-submit", tenant, assignment_pk=current.pk), {f"q-{config.pk}": "Correct"}
    )
    held = client.get(response.url + "?buffered=1").content.decode()
    assert "Saved. Here is the next item." not in held
    shown = client.get(response.url).content.decode()
    assert "Saved. Here is the next item." in shown


# --- Markdown, comments on spans, failure modes ------------------------------------------------


def test_markdown_is_rendered_without_script_html_or_remote_images():
    html = str(
        render_text(
            "# Dose\n\n**Max 2 g** a day. <script>alert(1)</script>\n"
            "[formulary](https://formulary.example/a?b=1&c=2) [bad](javascript:alert(1))\n"
            '![chart](https://tracker.example/pixel.png) <img src="x" onerror="alert(1)">'
        )
    )
    assert "<h1>Dose</h1>" in html and "<strong>Max 2 g</strong>" in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img" in html
    assert 'href="javascript:' not in html
    assert 'href="https://formulary.example/a?b=1&amp;c=2" rel="nofollow noopener noreferrer"' in (
        html
    )
    assert '<a class="md-image" href="https://tracker.example/pixel.png"' in html
    assert "[image: chart]" in html


def test_plain_text_stays_as_written():
    html = str(render_text("2*3 is six\nnot a list"))
    assert html == '<p class="text">2*3 is six\nnot a list</p>'


def test_a_span_comment_belongs_to_the_item_and_stays_hidden_from_a_blind_reviewer(
    tenant, second, pair
):
    queue, _config = pair
    trace = make_trace(tenant, name="with spans")
    make_span(trace, external_id="lookup", name="dose_calculator", kind="tool")
    with _scoped(tenant):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        mine = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        theirs = services.queue_claim_next(actor=Actor(user=second), queue=queue)
    response = _client(tenant.reviewer).post(
        _url("review-span-comment", tenant, assignment_pk=mine.pk),
        {"span": "lookup", "trace": trace.external_id, "body": "span-comment-marker", "index": 0},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "span-comment-marker" in response.content.decode()
    assert 'id="span-comments-0"' in response.content.decode()
    with _scoped(tenant):
        comment = Comment.objects.get(body="span-comment-marker")
    assert comment.item_id == mine.item_id and comment.span.external_id == "lookup"
    blind = _client(second).get(_url("review-item", tenant, assignment_pk=theirs.pk))
    assert "span-comment-marker" not in blind.content.decode()
    own = _client(tenant.reviewer).get(_url("review-item", tenant, assignment_pk=mine.pk))
    assert "span-comment-marker" in own.content.decode()


def test_a_span_of_another_trace_cannot_be_commented_from_this_item(tenant, pair):
    queue, _config = pair
    add_traces(tenant, queue, 1)
    other = make_trace(tenant, name="elsewhere")
    make_span(other, external_id="lookup", name="x", kind="tool")
    with _scoped(tenant):
        mine = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    response = _client(tenant.reviewer).post(
        _url("review-span-comment", tenant, assignment_pk=mine.pk),
        {"span": "lookup", "trace": other.external_id, "body": "nope"},
    )
    assert response.status_code == 404


def test_failure_modes_are_picked_from_the_queues_tags_or_typed(tenant, solo):
    queue, config = solo
    _review(tenant, tenant.reviewer, queue, config, "Wrong", failure_modes=["wrong dose"])
    client = _client(tenant.reviewer)
    with _scoped(tenant):
        current = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    page = client.get(_url("review-item", tenant, assignment_pk=current.pk))
    assert [c["tag"] for c in page.context["failure_mode_choices"]] == ["wrong dose"]
    assert 'name="failure_mode" value="wrong dose"' in page.content.decode()
    client.post(
        _url("review-submit", tenant, assignment_pk=current.pk),
        {f"q-{config.pk}": "Wrong", "failure_mode": ["wrong dose"], "failure_modes": "tone, "},
    )
    with _scoped(tenant):
        annotation = Annotation.objects.get(assignment_id=current.pk)
    assert annotation.failure_modes == ["wrong dose", "tone"]
