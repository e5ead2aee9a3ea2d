"""The reviewer's pages (focused review, skip, span comments, My history, adjudication)
read their input through ``review.pages.reviewer_forms``: what people (and scripts) send wrong
(words or overflowing numbers for numbers, unknown yes/no, a lost version, a missing
reason, ids too long, NUL and bytes that are no UTF-8) answers the page with the field's
reason and writes nothing; none a 5xx."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from hitl.forms import TextField
from review import services
from review.models import Annotation, Assignment, AssignmentState
from review.pages.reviewer_forms import LOST_VERSION, AnswersForm, SkipForm, SpanCommentForm
from tests.page_input import BAD_UTF8, HUGE, NUL, UNSTORABLE, send
from tests.review.helpers import add_traces, make_config, make_queue


@pytest.fixture
def setup(tenant):
    number = make_config(tenant, name="Score", min_value=0.0, max_value=10.0, step=None)
    yes_no = make_config(
        tenant, name="Helpful", data_type="boolean", min_value=None, max_value=None, step=None
    )
    queue = make_queue(tenant, configs=[number, yes_no], name="Answers", overlap=1)
    add_traces(tenant, queue, 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    client = Client()
    client.force_login(tenant.reviewer)
    valid = {f"q-{number.pk}": "3", f"q-{yes_no.pk}": "true", "explanation": "why"}
    return client, lease, number, yes_no, valid


def _url(name: str, tenant, **kwargs: int) -> str:
    base = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    return reverse(name, kwargs={**base, **kwargs})


def _state(tenant, lease) -> tuple[str, int]:
    with tenancy.tenant_scope(tenant.organization.pk):
        state = Assignment.objects.get(pk=lease.pk).state
        return state, Annotation.objects.count()


def test_a_refused_answer_comes_back_beside_its_question(tenant, setup):
    client, lease, number, yes_no, valid = setup
    item = _url("review-item", tenant, assignment_pk=lease.pk)
    wrong = [
        (f"q-{number.pk}", "nine", "Score: a number is expected."),
        (f"q-{number.pk}", "1e999", "Score: a number is expected."),
        (f"q-{number.pk}", "nan", "Score: a number is expected."),
        (f"q-{yes_no.pk}", "maybe", "Helpful: yes or no is expected."),
        ("explanation", "x" * 20_001, "Explanation: "),
        ("comment", "x" * 20_001, "Comment: "),
    ]
    for name, value, reason in wrong:
        response = send(client, "post", item + "submit/", {**valid, name: value})
        assert (response.status_code, response.url) == (302, item), name
        assert reason in client.get(item).content.decode(), name
    for name, value in [
        (f"q-{number.pk}", NUL),
        (f"q-{number.pk}", BAD_UTF8),
        (f"q-{number.pk}", HUGE),
    ]:
        assert send(client, "post", item + "submit/", {**valid, name: value}).status_code < 500
    assert _state(tenant, lease) == (AssignmentState.LEASED, 0)
    done = send(client, "post", item + "submit/", valid)
    assert done.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        saved = Annotation.objects.get()
    assert saved.values == {str(number.pk): 3.0, str(yes_no.pk): True}


def test_a_skip_without_a_reason_says_why_and_skips_nothing(tenant, setup):
    client, lease, *_ = setup
    item = _url("review-item", tenant, assignment_pk=lease.pk)
    for data, reason in (
        ({}, "Say why you skip this item."),
        ({"reason": "   "}, "Say why you skip this item."),
        ({"reason": "x" * 20_001}, "at most 20000 characters"),
    ):
        response = send(client, "post", item + "skip/", data)
        assert (response.status_code, response.url) == (302, item)
        assert reason in client.get(item).content.decode()
    assert _state(tenant, lease)[0] == AssignmentState.LEASED
    response = send(client, "post", item + "skip/", {"reason": " Outside my expertise "})
    assert response.status_code == 302 and response.url != item
    with tenancy.tenant_scope(tenant.organization.pk):
        skipped = Assignment.objects.get(pk=lease.pk)
    assert (skipped.state, skipped.skip_reason) == ("skipped", "Outside my expertise")


def test_span_comments_and_queries_refuse_what_is_wrong_without_a_5xx(tenant, setup):
    client, lease, *_ = setup
    item = _url("review-item", tenant, assignment_pk=lease.pk)
    for data in (
        {"trace": "t" * 300, "span": "s", "body": "hi"},
        {"trace": "t", "span": "s", "body": "hi", "index": HUGE},
        {"trace": BAD_UTF8, "span": "s", "body": "hi"},
    ):
        assert send(client, "post", item + "span-comment/", data).status_code in (400, 404)
    for query in ({"turn": "t" * 300, "buffered": HUGE}, {"turn": BAD_UTF8}):
        assert send(client, "get", item, query).status_code in (200, 400)
    history = reverse("review-history", kwargs={"org_slug": tenant.organization.slug})
    for page in (HUGE, "-1", "two", BAD_UTF8):
        assert send(client, "get", history, {"page": page}).status_code in (200, 400)


def test_an_edit_that_lost_its_version_or_a_number_is_refused_on_the_page(tenant, setup):
    client, lease, number, _yes_no, valid = setup
    item = _url("review-item", tenant, assignment_pk=lease.pk)
    assert send(client, "post", item + "submit/", valid).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation = Annotation.objects.get()
    url = _url("review-history-item", tenant, annotation_pk=annotation.pk)
    for version in (None, "", "one", HUGE):
        data = {**valid, "explanation": "changed"}
        if version is not None:
            data["version"] = version
        response = send(client, "post", url, data)
        assert response.status_code == 422, version
        assert LOST_VERSION in response.content.decode()
    response = send(client, "post", url, {**valid, f"q-{number.pk}": "lots", "version": "1"})
    assert response.status_code == 422
    assert "Score: a number is expected." in response.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        annotation.refresh_from_db()
    assert (annotation.version, annotation.explanation) == (1, "why")


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_the_review_forms_refuse_unstorable_text_without_the_middleware(bad):
    questions = [
        {"config_id": 1, "name": "Score", "data_type": "numeric"},
        {"config_id": 2, "name": "Helpful", "data_type": "boolean"},
        {"config_id": 3, "name": "Verdict", "data_type": "categorical"},
        {"config_id": 4, "name": "Note", "data_type": "text"},
    ]
    for make in (
        lambda data: AnswersForm(data, questions=questions, with_version=True),
        SkipForm,
        SpanCommentForm,
    ):
        text_fields = [n for n, f in make({}).fields.items() if isinstance(f, TextField)]
        form = make({name: bad for name in text_fields})
        assert text_fields and not form.is_valid()
        for name in text_fields:
            assert name in form.errors, name
    answers = AnswersForm({"q-1": bad, "q-2": bad}, questions=questions)
    assert not answers.is_valid()
    assert set(answers.errors_by_question()) >= {"1", "2"}
