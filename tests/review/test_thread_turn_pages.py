"""The review page of a conversation (a thread item), through Django's client: each
turn's rating, note and comment control; the submit keeps the ratings; a comment on a
turn without the script (the review form posted to the turn's address, kept as the
draft, back to the item); hostile input answers the page with the reason beside the
turn and loses nothing typed; the lead's page of the review reads the ratings."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, Assignment, AssignmentState, Comment, ReviewDraft
from review.pages.reviewer_forms import TURN_COMMENT, TURN_NOTE, TURN_RATING
from tests.page_clients import project_url, signed_in
from tests.page_input import BAD_UTF8, NUL, send
from tests.review.thread_helpers import make_conversations
from traces.models import Score


@pytest.fixture
def page(tenant):
    talk = make_conversations(tenant, reviewers=1, include_expected_output=True)
    reviewer = talk.reviewers[0]
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=reviewer), queue=talk.queue)
    client = Client()
    client.force_login(reviewer)
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "assignment_pk": lease.pk,
    }
    item = reverse("review-item", kwargs=kwargs)
    valid = {f"q-{talk.config.pk}": "Unresolved", "explanation": "The adult dose is wrong."}
    ids = [t.external_id for t in talk.turns[0]]
    return talk, lease, client, item, valid, ids


def _lease_and_answers(tenant, lease):
    with tenancy.tenant_scope(tenant.organization.pk):
        return Assignment.objects.get(pk=lease.pk).state, Annotation.objects.count()


def _draft(tenant, lease) -> dict:
    with tenancy.tenant_scope(tenant.organization.pk):
        draft = ReviewDraft.objects.filter(assignment_id=lease.pk).first()
        return draft.data if draft else {}


def test_each_turn_has_its_rating_and_comment_controls_and_the_final_outcome(tenant, page):
    _talk, _lease, client, item, _valid, ids = page
    html = client.get(item).content.decode()
    for n, turn_id in enumerate(ids, 1):
        assert f'name="{TURN_RATING}{turn_id}"' in html
        assert f'name="{TURN_NOTE}{turn_id}"' in html
        assert f'name="{TURN_COMMENT}{turn_id}"' in html
        assert f"Comment on turn {n}" in html
    # Tied to the review form from beside the conversation; no inline script or style.
    assert 'form="review-form"' in html and "style=" not in html and "onclick" not in html
    # The expected output of a conversation is its final outcome, from its last answer.
    assert "Expected final outcome" in html
    response = client.get(item, {"turn": ids[0]})
    assert "Yes." in response.context["expected_output"]


def test_the_submit_keeps_each_turn_rating_and_sends_unsent_turn_comments(tenant, page):
    talk, _lease, client, item, valid, ids = page
    data = {
        **valid,
        TURN_RATING + ids[0]: "good",
        TURN_RATING + ids[1]: "bad",
        TURN_NOTE + ids[1]: "Ten times the adult dose.",
        TURN_RATING + ids[2]: "",
        TURN_COMMENT + ids[2]: "Agreeing with a wrong dose is worse.",
    }
    response = send(client, "post", item + "submit/", data)
    assert response.status_code == 302 and response.url != item
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation = Annotation.objects.get()
        assert annotation.turns == {
            ids[0]: {"turn": 1, "rating": "good"},
            ids[1]: {"turn": 2, "rating": "bad", "note": "Ten times the adult dose."},
        }
        assert Score.objects.filter(name="turn_rating").count() == 2
        (comment,) = Comment.objects.all()
        assert comment.trace.external_id == ids[2] and comment.item_id == talk.items[0].pk
    # The lead's page of this review says them turn by turn.
    lead = Client()
    lead.force_login(tenant.owner)
    url = reverse(
        "lead-annotation",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "annotation_pk": annotation.pk,
        },
    )
    html = lead.get(url).content.decode()
    assert "Turn by turn" in html and "Ten times the adult dose." in html
    assert html.index("Turn 1") < html.index("good") < html.index("Turn 2")
    # And the lead's page of the item, review by review.
    item_url = reverse(
        "lead-item",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "queue_pk": talk.queue.pk,
            "item_pk": talk.items[0].pk,
        },
    )
    said = "Turn by turn:</strong> turn 1 good; turn 2 bad: “Ten times the adult dose.”"
    assert said in lead.get(item_url).content.decode()


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        (TURN_RATING + "{t2}", "terrible", "Turn 2: a rating is good or bad (or none)."),
        (TURN_NOTE + "{t2}", "x" * 2001, "Turn 2 note: Ensure this value has at most 2000"),
        (TURN_COMMENT + "{t2}", "x" * 20_001, "Turn 2 comment: Ensure this value has at most"),
        (TURN_RATING + "chat-of-someone-else", "bad", "Not a turn of this conversation"),
    ],
)
def test_a_refused_turn_says_why_beside_it_and_keeps_what_was_typed(
    tenant, page, name, value, reason
):
    _talk, lease, client, item, valid, ids = page
    name = name.replace("{t2}", ids[1])
    data = {**valid, TURN_NOTE + ids[0]: "kept while refused", name: value}
    response = send(client, "post", item + "submit/", data)
    assert (response.status_code, response.url) == (302, item)
    html = client.get(item).content.decode()
    assert reason in html
    assert _lease_and_answers(tenant, lease) == (AssignmentState.LEASED, 0)
    # What was typed is the draft, shown again (the huge comment too: under the draft's
    # own bound, 20,000 characters, only the submit's is exceeded).
    draft = _draft(tenant, lease)
    assert draft[TURN_NOTE + ids[0]] == "kept while refused"
    assert draft["explanation"] == valid["explanation"]
    assert "kept while refused" in html


def test_nul_is_refused_before_the_page_and_no_bytes_make_a_5xx(tenant, page):
    _talk, lease, client, item, valid, ids = page
    for name in (TURN_RATING + ids[0], TURN_NOTE + ids[0], TURN_COMMENT + ids[0]):
        response = send(client, "post", item + "submit/", {**valid, name: NUL})
        assert response.status_code == 400, name
        assert b"NUL characters" in response.content
        with_turn = {**valid, name: NUL, "comment_turn": ids[0]}
        assert send(client, "post", item + "turn-comment/", with_turn).status_code == 400
    assert _lease_and_answers(tenant, lease) == (AssignmentState.LEASED, 0)
    for name in (TURN_RATING + ids[0], TURN_COMMENT + ids[0], "comment_turn"):
        with_turn = {**valid, "comment_turn": ids[0], name: BAD_UTF8}
        assert send(client, "post", item + "turn-comment/", with_turn).status_code < 500
    assert (
        send(
            client, "post", item + "submit/", {**valid, TURN_RATING + ids[0]: BAD_UTF8}
        ).status_code
        == 302
    )
    assert _lease_and_answers(tenant, lease) == (AssignmentState.LEASED, 0)


def test_a_comment_on_a_turn_works_without_the_script_and_keeps_the_answers(tenant, page):
    talk, lease, client, item, valid, ids = page
    data = {
        **valid,
        TURN_RATING + ids[1]: "bad",
        TURN_COMMENT + ids[1]: f"@{tenant.admin.email} is this dose right?",
        "comment_turn": ids[1],
    }
    response = send(client, "post", item + "turn-comment/", data)
    assert (response.status_code, response.url) == (302, item + "#turn-2")
    with tenancy.tenant_scope(tenant.organization.pk):
        (comment,) = Comment.objects.all()
        assert (comment.item_id, comment.trace.external_id) == (talk.items[0].pk, ids[1])
        assert comment.mentions == [tenant.admin.pk]
    # The answers typed so far are the draft; the comment sent is not.
    draft = _draft(tenant, lease)
    assert draft[f"q-{talk.config.pk}"] == "Unresolved"
    assert draft[TURN_RATING + ids[1]] == "bad" and draft[TURN_COMMENT + ids[1]] == ""
    html = client.get(item).content.decode()
    assert "is this dose right?" in html and "Comment added on turn 2." in html
    assert _lease_and_answers(tenant, lease) == (AssignmentState.LEASED, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"comment_turn": "{t1}"}, "Turn 1: a comment needs text."),
        ({"comment_turn": "{t1}", TURN_COMMENT + "{t1}": "   "}, "Turn 1: a comment needs text."),
        ({"comment_turn": "not-a-turn"}, "Not a turn of this conversation"),
        ({"comment_turn": "t" * 300}, "at most 200 characters"),
        ({}, "This field is required."),
    ],
)
def test_a_refused_turn_comment_says_why_and_writes_nothing(tenant, page, data, reason):
    _talk, lease, client, item, valid, ids = page
    data = {k.replace("{t1}", ids[0]): v.replace("{t1}", ids[0]) for k, v in data.items()}
    response = send(client, "post", item + "turn-comment/", {**valid, **data})
    assert (response.status_code, response.url) == (302, item)
    assert reason in client.get(item).content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Comment.objects.exists()
    assert _draft(tenant, lease)["explanation"] == valid["explanation"]


def test_a_trace_item_has_no_turn_comment_address(tenant, page):
    _talk, _lease, _client, item, _valid, ids = page
    from tests.review.helpers import add_traces, make_queue

    queue = make_queue(tenant, overlap=1, reviewers=[tenant.reviewer])
    add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    other = Client()
    other.force_login(tenant.reviewer)
    url = item.replace(f"/review/{_lease.pk}/", f"/review/{lease.pk}/")
    response = send(other, "post", url + "turn-comment/", {"comment_turn": ids[0]})
    assert response.status_code == 404
    # Nor another reviewer's lease.
    assert send(other, "post", item + "turn-comment/", {"comment_turn": ids[0]}).status_code == 404


def test_a_second_tab_with_other_turn_ratings_is_shown_and_may_replace_them(tenant, page):
    _talk, lease, client, item, valid, ids = page
    first = {**valid, TURN_RATING + ids[0]: "good"}
    assert send(client, "post", item + "submit/", first).status_code == 302
    # The same form again goes where it went; other turn ratings are another tab's.
    assert send(client, "post", item + "submit/", first).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not ReviewDraft.objects.filter(assignment_id=lease.pk).exists()
    other = {**valid, TURN_RATING + ids[0]: "bad", TURN_NOTE + ids[0]: "on second thought"}
    assert send(client, "post", item + "submit/", other).status_code == 302
    conflict = client.get(item)
    rows = {row["name"]: row for row in conflict.context["rows"]}
    assert rows["Turn ratings"]["stored"] == "turn 1 good"
    assert rows["Turn ratings"]["mine"] == "turn 1 bad: “on second thought”"
    assert rows["Turn ratings"]["differs"]
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation = Annotation.objects.get()
    resolve = send(
        client, "post", item + "resolve/", {"choice": "replace", "version": annotation.version}
    )
    assert resolve.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation.refresh_from_db()
        assert annotation.turns == {
            ids[0]: {"turn": 1, "rating": "bad", "note": "on second thought"}
        }
        labels = list(Score.objects.filter(name="turn_rating").values_list("label", flat=True))
    assert labels == ["bad"]


def test_the_decision_page_and_my_history_say_the_turn_ratings(tenant):
    from tests.review.thread_helpers import submit

    talk = make_conversations(tenant, reviewers=2, include_expected_output=True)
    alice, bob = talk.reviewers
    first, second, _third = talk.turns[0]
    mine = submit(
        tenant, talk, alice, "Resolved",
        turns={first.external_id: {"rating": "good"}, second.external_id: {"rating": "bad"}},
    )  # fmt: skip
    submit(tenant, talk, bob, "Unresolved", turns={second.external_id: {"note": "unsure"}})
    base = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    lead = Client()
    lead.force_login(tenant.owner)
    decide = lead.get(reverse("review-adjudicate", kwargs={**base, "item_pk": talk.items[0].pk}))
    html = decide.content.decode()
    assert decide.status_code == 200 and 'id="row-turns"' in html
    assert "turn 1 good; turn 2 bad" in html and "turn 2 not rated: “unsure”" in html
    assert "Expected final outcome" in html
    reviewer = Client()
    reviewer.force_login(alice)
    history = reviewer.get(
        reverse("review-history-item", kwargs={**base, "annotation_pk": mine.pk})
    ).content.decode()
    assert "Turn by turn:</strong> turn 1 good; turn 2 bad" in history
    listed = reviewer.get(reverse("review-history", kwargs={"org_slug": base["org_slug"]}))
    assert 'class="turn-ratings">Turn by turn: turn 1 good; turn 2 bad' in listed.content.decode()


def test_the_board_names_a_conversation_by_its_turns_and_first_message(tenant):
    """A conversation's card on the board says how many turns it has and starts with
    its first user message, as a trace's card starts with its input."""
    conversation = make_conversations(tenant, count=1, reviewers=1)
    board = signed_in(tenant.owner).get(
        project_url(tenant, "lead-queue-board", queue_pk=conversation.queue.pk)
    )
    assert board.status_code == 200
    body = board.content.decode()
    thread = conversation.turns[0][0].thread.external_id
    assert f">thread {thread}</a>" in body
    assert "conversation of 3 turns" in body
    assert "What dose of amoxicillin for a child of 20 kg?" in body
