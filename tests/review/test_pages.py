"""The reviewer's pages: My work, focused review (submit, skip, release, expiry), the
blind rule on the page, escaping of payloads, and the demo queue."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Membership, Project, Role
from review import services
from review.models import Annotation, Assignment, Comment, ReviewQueue
from tests.factories import add_member, make_user
from tests.review.helpers import add_traces, make_config, make_queue, make_span, make_trace

CATEGORIES = [
    {"label": "Correct", "value": 1.0},
    {"label": "Wrong", "value": 0.0},
]
CATEGORY_RUBRIC = [
    {"label": "Correct", "definition": "Right for this patient.", "examples": ["2 g a day."]},
    {"label": "Wrong", "definition": "Unsafe advice.", "examples": ["Warfarin in pregnancy."]},
]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def queue_setup(tenant):
    config = make_config(
        tenant,
        name="Accuracy",
        data_type="categorical",
        options=CATEGORIES,
        rubric=CATEGORY_RUBRIC,
        required=True,
    )
    queue = make_queue(tenant, configs=[config], name="Answers", overlap=1)
    return queue, config


def _urls(tenant, assignment_pk: int) -> dict[str, str]:
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "assignment_pk": assignment_pk,
    }
    return {
        name: reverse(f"review-{name}", kwargs=kwargs)
        for name in ("item", "submit", "skip", "release")
    }


def _start(client, tenant, queue):
    url = reverse(
        "review-queue-start",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "queue_pk": queue.pk,
        },
    )
    return client.post(url)


def _assignments(tenant, **filters):
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(Assignment.objects.filter(**filters).order_by("pk"))


def test_my_work_lists_my_queues_with_what_waits_and_my_pace(tenant, queue_setup):
    queue, config = queue_setup
    add_traces(tenant, queue, 3)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        services.assignment_submit(
            actor=Actor(user=tenant.reviewer),
            assignment_id=lease.pk,
            values={str(config.pk): "Correct"},
        )
    other = make_queue(tenant, name="Not mine", reviewers=[tenant.admin])
    response = _client(tenant.reviewer).get(
        reverse("review-my-work", kwargs={"org_slug": tenant.organization.slug})
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Answers" in page and other.name not in page
    work = response.context["queues"]
    assert [(w.queue.pk, w.waiting, w.done_today, w.done_week) for w in work] == [
        (queue.pk, 2, 1, 1)
    ]
    assert response.context["totals"]["done_today"] == 1
    assert response.context["totals"]["average_seconds"] is not None
    assert "Start reviewing" in page
    assert response.context["team"] is None  # reviewers do not see the team table


def test_managers_see_backlog_and_who_is_working(tenant, queue_setup):
    queue, _config = queue_setup
    add_traces(tenant, queue, 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    response = _client(tenant.admin).get(
        reverse("review-my-work", kwargs={"org_slug": tenant.organization.slug})
    )
    team = {row.queue.pk: row for row in response.context["team"]}
    assert team[queue.pk].columns["waiting"] == 1
    assert team[queue.pk].columns["in_review"] == 1
    assert team[queue.pk].working == [tenant.reviewer.email]
    assert tenant.reviewer.email in response.content.decode()


def test_start_claims_then_resumes_the_same_lease(tenant, queue_setup):
    queue, _config = queue_setup
    add_traces(tenant, queue, 2)
    client = _client(tenant.reviewer)
    first = _start(client, tenant, queue)
    assert first.status_code == 302
    leases = _assignments(tenant, reviewer=tenant.reviewer)
    assert len(leases) == 1
    assert first.url == _urls(tenant, leases[0].pk)["item"]
    again = _start(client, tenant, queue)
    assert again.url == first.url
    assert len(_assignments(tenant, reviewer=tenant.reviewer)) == 1


def test_review_page_shows_the_span_tree_and_renders_payloads_safely(tenant, queue_setup):
    queue, _config = queue_setup
    trace = make_trace(
        tenant,
        name="clinical question",
        input={"question": "<script>alert('x')</script>dose?"},
        output={"answer": "2 g"},
    )
    start = timezone.now()
    root = make_span(
        trace,
        external_id="agent",
        kind="agent",
        name="answer question",
        start_time=start,
        end_time=start + timedelta(seconds=4),
    )
    make_span(
        trace,
        external_id="search",
        parent_external_id=root.external_id,
        kind="retrieval",
        name="formulary search",
        start_time=start,
        end_time=start + timedelta(seconds=1),
        output={
            "documents": [
                {"id": "doc-a", "score": 0.91, "content": "Limit to 2 g."},
                {"id": "doc-b", "score": 0.5, "content": "<img src=x>"},
            ]
        },
    )
    make_span(
        trace,
        external_id="llm",
        parent_external_id=root.external_id,
        kind="llm",
        name="compose",
        start_time=start + timedelta(seconds=1),
        end_time=start + timedelta(seconds=4),
        input=[
            {"role": "system", "content": "Answer from the formulary."},
            {"role": "user", "content": "dose?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call-1",
                        "type": "function",
                        "function": {"name": "dose_calculator", "arguments": '{"mg": 2000}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call-1", "content": "2000 mg"},
        ],
        output=[{"role": "assistant", "content": "x" * 2000}],
    )
    make_span(
        trace,
        external_id="tool",
        parent_external_id=root.external_id,
        kind="tool",
        name="dose_calculator",
        status="error",
        error_message="timed out after 400 ms",
        start_time=start,
        end_time=start + timedelta(seconds=2),
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
    client = _client(tenant.reviewer)
    response = client.get(_start(client, tenant, queue).url)
    assert response.status_code == 200
    page = response.content.decode()
    # Escaped, never markup: no script and no remote image from a payload.
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page
    # The tree, in order, with the error marked and the duration bars.
    spans = response.context["page"]["spans"]
    assert [s["span_id"] for s in spans] == ["agent", "search", "tool", "llm"]
    assert [s["depth"] for s in spans] == [0, 1, 1, 1]
    assert [s["is_error"] for s in spans] == [False, False, True, False]
    assert spans[0]["bar_width"] == 100.0 and spans[3]["bar_left"] == 25.0
    assert "timed out after 400 ms" in page
    # Chat as a conversation with the tool call and result; documents as numbered cards.
    assert 'class="msg system"' in page and 'class="msg tool"' in page
    assert "Tool call: dose_calculator" in page and "Tool result" in page
    assert '<span class="doc-num">#2</span>' in page and "score 0.91" in page
    # Long text folded; the rubric beside the question.
    assert "Show all (2000 characters" in page
    assert "Right for this patient." in page and "Warfarin in pregnancy." in page


def test_submit_stores_the_answers_and_a_comment_and_opens_the_next_item(tenant, queue_setup):
    queue, config = queue_setup
    add_traces(tenant, queue, 2)
    client = _client(tenant.reviewer)
    first_url = _start(client, tenant, queue).url
    (lease,) = _assignments(tenant, reviewer=tenant.reviewer)
    response = client.post(
        _urls(tenant, lease.pk)["submit"],
        {
            f"q-{config.pk}": "Wrong",
            "explanation": "Dose too high for cirrhosis.",
            "comment": f"@{tenant.admin.email} please look",
            "failure_modes": "wrong dose, missing caveat",
        },
    )
    assert response.status_code == 302 and response.url != first_url
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation = Annotation.objects.get(reviewer=tenant.reviewer)
        comment = Comment.objects.get(item_id=lease.item_id)
    assert annotation.values == {str(config.pk): "Wrong"}
    assert annotation.explanation == "Dose too high for cirrhosis."
    assert annotation.failure_modes == ["wrong dose", "missing caveat"]
    assert comment.mentions == [tenant.admin.pk]
    states = [a.state for a in _assignments(tenant, reviewer=tenant.reviewer)]
    assert states == ["submitted", "leased"]
    assert response.url == _urls(tenant, _assignments(tenant, state="leased")[0].pk)["item"]


def test_a_missing_required_answer_is_shown_and_nothing_is_stored(tenant, queue_setup):
    queue, _config = queue_setup
    add_traces(tenant, queue, 1)
    client = _client(tenant.reviewer)
    _start(client, tenant, queue)
    (lease,) = _assignments(tenant, reviewer=tenant.reviewer)
    response = client.post(_urls(tenant, lease.pk)["submit"], {"explanation": "kept"})
    # Post/Redirect/Get: the item's page shows the refusal, the answers kept as a draft.
    assert response.status_code == 302 and response.url == _urls(tenant, lease.pk)["item"]
    page = client.get(response.url).content.decode()
    assert "an answer is required" in page and ">kept</textarea>" in page
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not Annotation.objects.exists()


def test_skip_needs_a_reason_then_moves_on(tenant, queue_setup):
    queue, _config = queue_setup
    add_traces(tenant, queue, 2)
    client = _client(tenant.reviewer)
    _start(client, tenant, queue)
    (lease,) = _assignments(tenant, reviewer=tenant.reviewer)
    urls = _urls(tenant, lease.pk)
    refused = client.post(urls["skip"], {"reason": " "})
    assert refused.status_code == 302 and refused.url == urls["item"]
    assert "Say why you skip this item." in client.get(urls["item"]).content.decode()
    response = client.post(urls["skip"], {"reason": "Outside my expertise"})
    assert response.status_code == 302
    skipped, leased = _assignments(tenant, reviewer=tenant.reviewer)
    assert (skipped.state, skipped.skip_reason) == ("skipped", "Outside my expertise")
    assert leased.state == "leased" and response.url == _urls(tenant, leased.pk)["item"]


def test_release_gives_the_item_back(tenant, queue_setup):
    queue, _config = queue_setup
    add_traces(tenant, queue, 1)
    client = _client(tenant.reviewer)
    _start(client, tenant, queue)
    (lease,) = _assignments(tenant, reviewer=tenant.reviewer)
    response = client.post(_urls(tenant, lease.pk)["release"])
    assert response.status_code == 302
    assert response.url == reverse("review-my-work", kwargs={"org_slug": tenant.organization.slug})
    assert _assignments(tenant, reviewer=tenant.reviewer)[0].state == "released"


def test_an_expired_lease_nobody_took_still_takes_the_submit(tenant, queue_setup):
    queue, config = queue_setup
    add_traces(tenant, queue, 1)
    client = _client(tenant.reviewer)
    _start(client, tenant, queue)
    (lease,) = _assignments(tenant, reviewer=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=lease.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    urls = _urls(tenant, lease.pk)
    page = client.get(urls["item"])
    assert page.status_code == 200
    assert "nobody else has taken it" in page.content.decode()
    response = client.post(urls["submit"], {f"q-{config.pk}": "Correct"})
    assert response.status_code == 302 and response.url != urls["item"]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Annotation.objects.get().values == {str(config.pk): "Correct"}


@pytest.mark.parametrize("blind", [True, False])
def test_the_second_reviewer_sees_the_first_answer_only_outside_blind_mode(tenant, blind):
    config = make_config(
        tenant, name="Accuracy", data_type="categorical", options=CATEGORIES, rubric=CATEGORY_RUBRIC
    )
    second = make_user()
    add_member(tenant.organization, second, Role.REVIEWER)
    queue = make_queue(
        tenant, configs=[config], reviewers=[tenant.reviewer, second], overlap=2, blind_mode=blind
    )
    add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        services.assignment_submit(
            actor=Actor(user=tenant.reviewer),
            assignment_id=lease.pk,
            values={str(config.pk): "Wrong"},
            explanation="first-reviewer-explanation",
        )
    client = _client(second)
    page = client.get(_start(client, tenant, queue).url).content.decode()
    assert ("first-reviewer-explanation" in page) is not blind
    assert ("Blind review:" in page) is blind


def test_pages_answer_404_outside_the_member_s_reach(tenant, queue_setup):
    queue, _config = queue_setup
    add_traces(tenant, queue, 1)
    client = _client(tenant.reviewer)
    _start(client, tenant, queue)
    (lease,) = _assignments(tenant, reviewer=tenant.reviewer)
    # Another reviewer's lease is not a page of mine.
    assert _client(tenant.admin).get(_urls(tenant, lease.pk)["item"]).status_code == 404
    # A project the reviewer is not narrowed to.
    with tenancy.tenant_scope(tenant.organization.pk):
        hidden = Project.objects.create(name="Hidden", slug="hidden")
        membership = Membership.objects.get(user=tenant.reviewer)
        membership.projects.add(tenant.project)
    url = reverse(
        "review-queue-start",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": hidden.slug,
            "queue_pk": queue.pk,
        },
    )
    assert client.post(url).status_code == 404


def test_the_demo_queue_is_ready_for_both_demo_reviewers_and_seeding_twice_changes_nothing(db):
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "review queue “Clinical answers”: 0 items added" in out.getvalue()
    queue = ReviewQueue.unscoped_across_tenants.get(name="Clinical answers")
    with tenancy.tenant_scope(queue.organization_id):
        assert queue.items.count() == 24
        pool = set(queue.reviewers.values_list("membership__user__email", flat=True))
        assert pool == {"reviewer1@demo.hitl.local", "reviewer2@demo.hitl.local"}
        reviewer = Membership.objects.get(user__email="reviewer1@demo.hitl.local").user
    client = _client(reviewer)
    response = client.get(reverse("review-my-work", kwargs={"org_slug": "northwind-health"}))
    waiting = {w.queue.name: w.waiting for w in response.context["queues"]}
    assert waiting == {"Clinical answers": 24, "Whole conversations": 5}
    project = Project.unscoped_across_tenants.get(pk=queue.project_id)
    start = client.post(
        reverse(
            "review-queue-start",
            kwargs={
                "org_slug": "northwind-health",
                "project_slug": project.slug,
                "queue_pk": queue.pk,
            },
        )
    )
    page = client.get(start.url)
    assert page.status_code == 200
    assert "Clinical accuracy" in page.content.decode()


def test_a_thread_item_shows_the_conversation_turn_by_turn(tenant, queue_setup):
    queue, _config = queue_setup
    from traces.models import Thread

    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id="session-7")
    start = timezone.now()
    for n, (question, answer) in enumerate(
        [("first question", "first answer"), ("second question", "second answer")]
    ):
        make_trace(
            tenant,
            thread=thread,
            external_id=f"turn-{n}",
            input={"question": question},
            output={"answer": answer},
            start_time=start + timedelta(minutes=n),
        )
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, thread_id=thread.pk)
    client = _client(tenant.reviewer)
    url = _start(client, tenant, queue).url
    page = client.get(url).content.decode()
    assert (
        page.index("first question")
        < page.index("first answer")
        < page.index("second question")
        < page.index("second answer")
    )
    # The last turn's spans by default; another turn on request.
    assert client.get(url).context["trace"]["trace_id"] == "turn-1"
    assert client.get(url, {"turn": "turn-0"}).context["trace"]["trace_id"] == "turn-0"


def test_each_answer_shape_renders_its_own_input(tenant):
    """The question template asks the score kind: a free number is a number field, a
    stepped one its levels, free text a text area; the rubrics list marks a labelled
    question's scale."""
    free_number = make_config(tenant, name="dose mg", min_value=0.0, max_value=500.0, step=None)
    text = make_config(
        tenant, name="what went wrong", data_type="text", min_value=None, max_value=None, step=None
    )
    labelled = make_config(
        tenant,
        name="verdict",
        data_type="categorical",
        options=[{"label": "Correct", "value": 1}, {"label": "Wrong", "value": 0}],
        rubric=CATEGORY_RUBRIC,
        min_value=None,
        max_value=None,
        step=None,
    )
    queue = make_queue(tenant, configs=[free_number, text, labelled])
    add_traces(tenant, queue, 1)
    client = _client(tenant.reviewer)
    page = client.get(_start(client, tenant, queue).url, follow=True).content.decode()
    assert f'type="number" id="q-{free_number.pk}"' in page
    assert f'<textarea id="q-{text.pk}"' in page
    assert f'name="q-{labelled.pk}" value="Correct"' in page
    rubrics = _client(tenant.owner).get(
        reverse(
            "lead-rubrics",
            kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
        )
    )
    assert "(unordered)" in rubrics.content.decode()
