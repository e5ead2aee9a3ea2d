"""A conversation (a thread item) reviewed turn by turn, through the services: each
turn's rating and note kept on the annotation and written as a human score on the
turn's trace, bad input refused with its reason, comments on a turn under the blind
rule, edits, promotion to a dataset, the dataset export's columns, agreement over
thread items, and the history in words."""

from __future__ import annotations

import csv
import io

import pytest

from datasets import services as dataset_services
from datasets.models import DatasetItemRevision
from datasets.selectors import version_get
from datasets.services.exports import export_version
from hitl import tenancy
from hitl.audit import Actor, history_for_display
from hitl.exceptions import DomainError
from review import services
from review.models import Annotation, Assignment, AssignmentState, Comment
from review.pages.turn_selectors import turn_comments, turn_ratings_for_display
from review.quality.models import AgreementReport
from review.quality.services import agreement
from review.services.turns import MAX_TURN_NOTE, TURN_SCORE_NAME, turns_in_words
from tests.datasets.helpers import make_dataset
from tests.review.helpers import add_traces, make_queue
from tests.review.thread_helpers import make_conversations, make_thread, submit
from traces.models import Score


def test_turn_ratings_are_kept_on_the_annotation_and_as_human_scores(tenant):
    talk = make_conversations(tenant, reviewers=1)
    first, second, third = talk.turns[0]
    reviewer = talk.reviewers[0]
    annotation = submit(
        tenant, talk, reviewer, "Unresolved",
        turns={
            first.external_id: {"rating": "good", "note": ""},
            second.external_id: {"rating": "bad", "note": "  5 g is ten times the dose. "},
            third.external_id: {"rating": "", "note": ""},  # nothing said: not kept
        },
    )  # fmt: skip
    assert annotation.turns == {
        first.external_id: {"turn": 1, "rating": "good"},
        second.external_id: {"turn": 2, "rating": "bad", "note": "5 g is ten times the dose."},
    }
    with tenancy.tenant_scope(tenant.organization.pk):
        scores = {
            s.trace_id: s for s in Score.objects.filter(name=TURN_SCORE_NAME).order_by("trace_id")
        }
        assert set(scores) == {first.pk, second.pk}
        bad = scores[second.pk]
        assert (bad.source, bad.author_id, bad.data_type) == ("human", reviewer.pk, "categorical")
        assert (bad.label, bad.value, bad.rationale) == ("bad", 0.0, "5 g is ten times the dose.")
        assert bad.metadata["annotation_id"] == annotation.pk and bad.metadata["turn"] == 2
        assert (scores[first.pk].label, scores[first.pk].value) == ("good", 1.0)
        # The conversation's own answer stays a score on the thread, as before.
        verdict = Score.objects.get(name="Resolved")
        assert verdict.thread_id == first.thread_id and verdict.trace_id is None
        # Scores keep history like every score.
        assert bad.history.count() == 1
    assert turns_in_words(annotation.turns) == (
        "turn 1 good; turn 2 bad: “5 g is ten times the dose.”"
    )


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        ({"chat-x": {"rating": "good"}}, "Not a turn of this conversation."),
        ({"{t2}": {"rating": "terrible"}}, "Turn 2: a rating is good or bad (or none)."),
        ({"{t2}": {"rating": "bad", "note": "nul \x00 here"}}, "NUL characters"),
        ({"{t2}": {"rating": "bad", "note": "x" * (MAX_TURN_NOTE + 1)}}, "at most 2000"),
        ({"{t2}": {"rating": "bad", "note": 5}}, "Turn 2: a note is text."),
        ({"{t2}": "bad"}, "A turn's rating and note are expected."),
        ({"{t2}": {"rating": "bad", "score": 1}}, "Unknown field 'score'."),
    ],
)
def test_bad_turn_ratings_are_refused_with_their_reason_and_nothing_is_written(
    tenant, turns, reason
):
    talk = make_conversations(tenant, reviewers=1)
    second = talk.turns[0][1].external_id
    turns = {key.replace("{t2}", second): value for key, value in turns.items()}
    with pytest.raises(DomainError) as refused:
        submit(tenant, talk, talk.reviewers[0], "Resolved", turns=turns)
    (said,) = refused.value.details["turns"].values()
    assert reason in said
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Annotation.objects.exists()
        assert not Score.objects.exists()
        (lease,) = Assignment.objects.all()
        assert lease.state == AssignmentState.LEASED


def test_turns_are_refused_on_an_item_that_is_not_a_conversation(tenant):
    queue = make_queue(tenant, overlap=1)
    add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        with pytest.raises(DomainError) as refused:
            services.assignment_submit(
                actor=Actor(user=tenant.reviewer),
                assignment_id=lease.pk,
                values={},
                turns={"trace-1": {"rating": "good"}},
            )
    assert "not a conversation" in str(refused.value.details["turns"])


def test_an_edit_replaces_the_turn_ratings_and_their_scores_with_history_in_words(tenant):
    talk = make_conversations(tenant, reviewers=1)
    first, second, _third = talk.turns[0]
    reviewer = talk.reviewers[0]
    annotation = submit(
        tenant, talk, reviewer, "Resolved", turns={first.external_id: {"rating": "good"}}
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        edited = services.annotation_update(
            actor=Actor(user=reviewer),
            annotation_id=annotation.pk,
            expected_version=annotation.version,
            turns={
                first.external_id: {"rating": "bad", "note": "too confident"},
                second.external_id: {"rating": "good"},
            },
        )
        assert edited.turns[first.external_id] == {
            "turn": 1, "rating": "bad", "note": "too confident",
        }  # fmt: skip
        labels = dict(Score.objects.filter(name=TURN_SCORE_NAME).values_list("trace_id", "label"))
        assert labels == {first.pk: "bad", second.pk: "good"}
        lines = [
            (line["field"], line["old"], line["new"])
            for entry in history_for_display(Annotation.history.filter(id=annotation.pk))
            for line in entry["lines"]
            if line["field"].startswith("turns")
        ]
    assert (
        f"turns: turn “{first.external_id}”",
        "turn 1: good",
        "turn 1: bad: “too confident”",
    ) in lines
    assert (f"turns: turn “{second.external_id}”", "not rated", "turn 2: good") in lines
    # The lead's page of the review reads them turn by turn.
    assert [(t["turn"], t["rating"], t["note"]) for t in turn_ratings_for_display(edited)] == [
        (1, "bad", "too confident"),
        (2, "good", ""),
    ]


def test_a_comment_on_a_turn_belongs_to_the_item_and_follows_the_blind_rule(tenant):
    talk = make_conversations(tenant, reviewers=2, blind_mode=True)
    item = talk.items[0]
    first, second, _third = talk.turns[0]
    author, other = talk.reviewers
    with tenancy.tenant_scope(tenant.organization.pk):
        comment = services.comment_create(
            actor=Actor(user=author),
            project=tenant.project,
            body=f"Turn 2 doubles the dose, @{tenant.admin.email}",
            item_id=item.pk,
            trace_id=second.pk,
        )
        assert (comment.item_id, comment.trace_id, comment.span_id) == (item.pk, second.pk, None)
        assert comment.mentions == [tenant.admin.pk]
        assert comment.history.count() == 1
        # A trace that is not a turn of this conversation is refused.
        stranger = make_thread(tenant, "elsewhere")[0]
        with pytest.raises(DomainError):
            services.comment_create(
                actor=Actor(user=author),
                project=tenant.project,
                body="elsewhere",
                item_id=item.pk,
                trace_id=stranger.pk,
            )
        turns = talk.turns[0]
        # The author reads it; the other reviewer of the blind queue does not until
        # they have answered; the manager does.
        assert turn_comments(item=item, turns=turns, user=author)[second.pk][0]["id"] == comment.pk
        assert turn_comments(item=item, turns=turns, user=other) == {}
        assert second.pk in turn_comments(item=item, turns=turns, user=tenant.admin)
    submit(tenant, talk, other, "Resolved")
    with tenancy.tenant_scope(tenant.organization.pk):
        assert second.pk in turn_comments(item=item, turns=turns, user=other)
        assert first.pk not in turn_comments(item=item, turns=turns, user=other)
        assert Comment.objects.count() == 1


def test_a_reviewed_conversation_promotes_with_its_outcome_and_turn_ratings(tenant):
    talk = make_conversations(tenant, reviewers=2, include_expected_output=True)
    first, second, third = talk.turns[0]
    alice, bob = talk.reviewers
    outcome = {"answer": "500 mg three times a day for the child; 500 mg for an adult."}
    submit(
        tenant, talk, alice, "Unresolved", expected_output=outcome,
        turns={
            second.external_id: {"rating": "bad", "note": "=HYPERLINK(\"x\") tenfold"},
            first.external_id: {"rating": "good"},
        },
    )  # fmt: skip
    submit(
        tenant, talk, bob, "Unresolved", expected_output=outcome,
        turns={second.external_id: {"rating": "bad"}, third.external_id: {"rating": "bad"}},
    )  # fmt: skip
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        row = dataset_services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, queue_item_id=talk.items[0].pk
        ).item
        assert row.key == f"thread:{first.thread.external_id}"
        # The agreed expected final outcome is the item's expected output.
        assert row.expected_output == outcome
        ratings = row.metadata["turn_ratings"]
        assert [(t["turn"], t["trace_id"], t["good"], t["bad"]) for t in ratings] == [
            (1, first.external_id, 1, 0),
            (2, second.external_id, 0, 2),
            (3, third.external_id, 0, 1),
        ]
        assert ratings[1]["reviews"][0] == {
            "reviewer": alice.email, "rating": "bad", "note": "=HYPERLINK(\"x\") tenfold",
        }  # fmt: skip
        assert row.reviews[0]["turns"][second.external_id]["rating"] == "bad"
        record = DatasetItemRevision.objects.get(dataset=dataset, key=row.key).content
        assert record["answers"][f"{alice.email}/turn 2 rating"] == "bad"
        assert record["answers"][f"{alice.email}/turn 2 note"] == '=HYPERLINK("x") tenfold'
        assert record["answers"][f"{bob.email}/turn 3 rating"] == "bad"
        out = io.BytesIO()
        export_version(version_get(dataset=dataset, number=1), "csv", out)
    (header, line) = list(csv.reader(io.StringIO(out.getvalue().decode())))
    cells = dict(zip(header, line, strict=True))
    assert cells[f"answer:{alice.email}/turn 1 rating"] == '"good"'
    assert cells[f"answer:{bob.email}/turn 2 rating"] == '"bad"'
    # A note that would run as a formula in a spreadsheet is written as JSON text
    # (answer cells are JSON), and no cell starts a formula (hitl.csv_safe).
    assert cells[f"answer:{alice.email}/turn 2 note"] == '"=HYPERLINK(\\"x\\") tenfold"'
    assert not [cell for cell in [*header, *line] if cell.startswith(tuple("=+-@\t\r"))]
    assert "turn_ratings" in cells["metadata"]


def test_agreement_covers_the_questions_of_thread_items(tenant):
    talk = make_conversations(tenant, count=3, reviewers=2)
    alice, bob = talk.reviewers
    for verdicts in (
        ("Resolved", "Resolved"),
        ("Unresolved", "Unresolved"),
        ("Resolved", "Unresolved"),
    ):
        submit(tenant, talk, alice, verdicts[0], turns={})
        submit(tenant, talk, bob, verdicts[1])
    with tenancy.tenant_scope(tenant.organization.pk):
        assert agreement.agreement_refresh(queue_id=talk.queue.pk, resamples=20) == "computed"
        report = AgreementReport.objects.get(queue=talk.queue, config=talk.config)
    assert (report.n_items, report.n_answers) == (3, 6)
    assert report.value is not None and report.value < 1


def test_the_api_submit_takes_turn_ratings_and_refuses_bad_ones_with_reasons(tenant, client_for):
    talk = make_conversations(tenant, reviewers=1)
    reviewer = talk.reviewers[0]
    first, second, _third = talk.turns[0]
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=reviewer), queue=talk.queue)
    url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/assignments/{lease.pk}/submit/"
    )
    api = client_for(reviewer)
    body = {"values": {str(talk.config.pk): "Resolved"}}
    refused = api.post(url, {**body, "turns": {"nope": {"rating": "good"}}}, format="json")
    assert refused.status_code == 400
    assert "Not a turn of this conversation." in str(refused.json())
    turns = {first.external_id: {"rating": "good"}, second.external_id: {"note": "slow"}}
    answered = api.post(url, {**body, "turns": turns}, format="json")
    assert answered.status_code == 201
    assert answered.json()["turns"] == {
        first.external_id: {"turn": 1, "rating": "good"},
        second.external_id: {"turn": 2, "note": "slow"},
    }


def test_the_api_edit_replaces_the_turn_ratings(tenant, client_for):
    talk = make_conversations(tenant, reviewers=1)
    reviewer = talk.reviewers[0]
    first = talk.turns[0][0]
    annotation = submit(tenant, talk, reviewer, "Resolved")
    url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/annotations/{annotation.pk}/"
    )
    api = client_for(reviewer)
    turns = {first.external_id: {"rating": "bad", "note": "wrong"}}
    edited = api.patch(url, {"version": annotation.version, "turns": turns}, format="json")
    assert edited.status_code == 200
    assert edited.json()["turns"] == {
        first.external_id: {"turn": 1, "rating": "bad", "note": "wrong"}
    }
    bad = {"version": annotation.version + 1, "turns": {first.external_id: {"rating": "meh"}}}
    refused = api.patch(url, bad, format="json")
    assert refused.status_code == 400 and "Turn 1: a rating is good or bad" in str(refused.json())
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Score.objects.get(name=TURN_SCORE_NAME).label == "bad"
