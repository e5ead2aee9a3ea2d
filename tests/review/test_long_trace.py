"""The review page on a long trace: the span tree with only the selected span's body,
another span by ``?span=`` (no script needed), and the span detail endpoint the page's
script calls, under the page's blind rule and tenancy."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, ItemStatus, QueueItem
from tests.factories import add_member, make_user
from tests.review.helpers import make_config, make_queue, make_span, make_trace
from tests.review.long_trace import ERROR_SPANS, add_long_trace, body_marker
from traces.models import Score, Span

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _kwargs(tenant, assignment_pk: int) -> dict:
    return {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "assignment_pk": assignment_pk,
    }


def _long_item(tenant, **queue_fields):
    config = make_config(tenant, name="Accuracy", required=True)
    queue = make_queue(tenant, configs=[config], **queue_fields)
    trace = add_long_trace(organization_id=tenant.organization.pk, project=tenant.project)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
    return queue, config, trace


def _claim(tenant, queue, user):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.queue_claim_next(actor=Actor(user=user), queue=queue)


def test_the_page_carries_the_tree_and_the_selected_span_body_only(tenant):
    queue, _config, _trace = _long_item(tenant)
    lease = _claim(tenant, queue, tenant.reviewer)
    client = _client(tenant.reviewer)
    url = reverse("review-item", kwargs=_kwargs(tenant, lease.pk))
    page = client.get(url).content.decode()
    assert page.count('class="span-row"') == 300
    assert page.count("data-error") == len(ERROR_SPANS)
    assert body_marker(0) in page  # the first span, selected
    assert body_marker(1) not in page and body_marker(299) not in page
    assert reverse("review-span", kwargs=_kwargs(tenant, lease.pk)) in page
    assert "Show all (238592 characters" in page  # the 233 KB answer, folded
    # Without the script a row is a link to the page with that span selected.
    assert 'href="?span=s143#span-split"' in page
    chosen = client.get(url, {"span": "s143"}).content.decode()
    assert body_marker(143) in chosen and "timed out after 400 ms (span 143)" in chosen
    assert body_marker(0) not in chosen
    # A span id the trace does not have selects the first span.
    assert body_marker(0) in client.get(url, {"span": "nope"}).content.decode()


def test_a_short_trace_carries_every_span_body(tenant):
    config = make_config(tenant, name="Accuracy", required=True)
    queue = make_queue(tenant, configs=[config])
    trace = make_trace(tenant, output="fine")
    for n in range(3):
        make_span(trace, external_id=f"short-{n}", name=f"step {n}", output=f"short-body-{n}")
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
    lease = _claim(tenant, queue, tenant.reviewer)
    page = _client(tenant.reviewer).get(reverse("review-item", kwargs=_kwargs(tenant, lease.pk)))
    text = page.content.decode()
    assert all(f"short-body-{n}" in text for n in range(3))
    assert "data-detail-url" not in text


@pytest.mark.parametrize("blind", [True, False])
def test_the_span_detail_follows_the_page_blind_rule(tenant, blind):
    second = make_user(f"second-{blind}@example.com")
    add_member(tenant.organization, second, "reviewer")
    queue, config, trace = _long_item(
        tenant, reviewers=[tenant.reviewer, second], overlap=2, blind_mode=blind
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        span = Span.objects.get(trace=trace, external_id="s057")
        Score.objects.create(
            project=tenant.project,
            trace=trace,
            span=span,
            name="judge-faithfulness",
            data_type="numeric",
            value=0.123,
            source="llm_judge",
            source_name="judge-gpt",
        )
    first = _claim(tenant, queue, second)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.comment_create(
            actor=Actor(user=second),
            project=tenant.project,
            body="second-reviewer-marker on the tool",
            item_id=first.item_id,
            span_id=span.pk,
        )
        services.assignment_submit(
            actor=Actor(user=second), assignment_id=first.pk, values={str(config.pk): 1.0}
        )
    lease = _claim(tenant, queue, tenant.reviewer)
    url = reverse("review-span", kwargs=_kwargs(tenant, lease.pk))
    client = _client(tenant.reviewer)
    response = client.get(url, {"span": "s057"})
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.startswith("<section") or "<section" in fragment[:400]
    assert 'id="span-panel-57"' in fragment and body_marker(57) in fragment
    assert "timed out after 400 ms (span 57)" in fragment
    assert body_marker(58) not in fragment
    # The page itself, with that span selected, shows exactly the same of others' work.
    page = client.get(
        reverse("review-item", kwargs=_kwargs(tenant, lease.pk)), {"span": "s057"}
    ).content.decode()
    for marker in ("judge-faithfulness", "0.123", "second-reviewer-marker"):
        assert (marker in fragment) is (not blind), marker
        assert (marker in page) is (not blind), marker


def test_the_span_detail_is_only_for_the_lease_holder_and_the_trace(tenant, other_tenant):
    queue, config, _trace = _long_item(tenant)
    lease = _claim(tenant, queue, tenant.reviewer)
    url = reverse("review-span", kwargs=_kwargs(tenant, lease.pk))
    assert _client(tenant.reviewer).get(url, {"span": "s010"}).status_code == 200
    # Another organization's span id, a span of no trace, no span: not found.
    foreign = make_trace(other_tenant, external_id="foreign-trace")
    make_span(foreign, external_id="foreign-span", output="foreign-body")
    for query in ({"span": "foreign-span"}, {"span": "nope"}, {}):
        assert _client(tenant.reviewer).get(url, query).status_code == 404, query
    # Another organization's owner, another reviewer of this one: 404, as a missing lease.
    assert _client(other_tenant.owner).get(url, {"span": "s010"}).status_code == 404
    assert _client(tenant.admin).get(url, {"span": "s010"}).status_code == 404
    # Signed out: 401 for the page's script, not the sign-in page.
    assert Client().get(url, {"span": "s010"}).status_code == 401
    # Once the answer is in, the lease shows no trace any more.
    with tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_submit(
            actor=Actor(user=tenant.reviewer), assignment_id=lease.pk, values={str(config.pk): 1.0}
        )
    assert _client(tenant.reviewer).get(url, {"span": "s010"}).status_code == 404


def test_an_output_too_long_for_the_form_is_not_prefilled_as_expected_output(tenant):
    queue, config, _trace = _long_item(tenant, include_expected_output=True)
    lease = _claim(tenant, queue, tenant.reviewer)
    client = _client(tenant.reviewer)
    kwargs = _kwargs(tenant, lease.pk)
    page = client.get(reverse("review-item", kwargs=kwargs)).content.decode()
    assert '<textarea id="expected-output" name="expected_output" rows="4"></textarea>' in page
    assert "The trace's output (238592 characters) is longer than" in page
    # The form as shown is accepted.
    response = client.post(
        reverse("review-submit", kwargs=kwargs),
        {f"q-{config.pk}": "1", "expected_output": ""},
    )
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        lease.refresh_from_db()
    assert lease.state == "submitted"


# --- My history's item page and the decision page: the same lazy span bodies -------------------


def _submit(tenant, queue, user, value: float):
    lease = _claim(tenant, queue, user)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.assignment_submit(
            actor=Actor(user=user), assignment_id=lease.pk, values={str(queue_config(queue)): value}
        )
        return Annotation.objects.get(assignment_id=lease.pk)


def queue_config(queue) -> int:
    with tenancy.tenant_scope(queue.organization_id):
        return queue.form_fields.values_list("config_id", flat=True).first()


def _history_urls(tenant, annotation) -> tuple[str, str]:
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "annotation_pk": annotation.pk,
    }
    return reverse("review-history-item", kwargs=kwargs), reverse(
        "review-history-span", kwargs=kwargs
    )


def _decision_urls(tenant, item_pk: int) -> tuple[str, str]:
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "item_pk": item_pk,
    }
    return reverse("review-adjudicate", kwargs=kwargs), reverse(
        "review-adjudicate-span", kwargs=kwargs
    )


def _disputed_long_item(tenant):
    """A 300-span item two reviewers answered differently, awaiting a senior's decision."""
    second = make_user("second-opinion@example.com")
    senior = make_user("senior@example.com")
    add_member(tenant.organization, second, "reviewer")
    add_member(tenant.organization, senior, "reviewer")
    queue, _config, trace = _long_item(
        tenant, reviewers=[tenant.reviewer, second, senior], seniors=(senior,), overlap=2
    )
    first = _submit(tenant, queue, tenant.reviewer, 1.0)
    _submit(tenant, queue, second, 0.0)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = QueueItem.objects.get(pk=first.item_id)
    assert item.status == ItemStatus.NEEDS_ADJUDICATION
    return item, senior, second, trace


def _assert_lazy_page(client, page_url: str, span_url: str) -> None:
    """The page carries the tree and the selected span's body only; ``?span=`` selects
    another server-side (no script); the span endpoint gives another span's body."""
    page = client.get(page_url).content.decode()
    assert page.count('class="span-row"') == 300
    assert page.count('class="span-panel"') == 1
    assert body_marker(0) in page
    assert body_marker(1) not in page and body_marker(299) not in page
    assert f'data-detail-url="{span_url}"' in page
    assert 'href="?span=s143#span-split"' in page
    chosen = client.get(page_url, {"span": "s143"}).content.decode()
    assert body_marker(143) in chosen and "timed out after 400 ms (span 143)" in chosen
    assert body_marker(0) not in chosen and chosen.count('class="span-panel"') == 1
    response = client.get(span_url, {"span": "s262"})
    assert response.status_code == 200
    fragment = response.content.decode()
    assert 'id="span-panel-262"' in fragment and body_marker(262) in fragment
    assert body_marker(0) not in fragment and body_marker(263) not in fragment
    assert "span-comment-form" not in fragment  # these pages take no span comments
    for query in ({"span": "nope"}, {}):
        assert client.get(span_url, query).status_code == 404, query


def test_my_history_item_carries_the_selected_span_body_only(tenant, other_tenant):
    queue, _config, _trace = _long_item(tenant)
    annotation = _submit(tenant, queue, tenant.reviewer, 1.0)
    page_url, span_url = _history_urls(tenant, annotation)
    client = _client(tenant.reviewer)
    _assert_lazy_page(client, page_url, span_url)
    # Another organization's span id, another reviewer's answer, another organization's
    # member: not found. Signed out: 401 for the page's script.
    foreign = make_trace(other_tenant, external_id="foreign-trace")
    make_span(foreign, external_id="foreign-span", output="foreign-body")
    assert client.get(span_url, {"span": "foreign-span"}).status_code == 404
    assert _client(tenant.admin).get(span_url, {"span": "s010"}).status_code == 404
    assert _client(other_tenant.owner).get(span_url, {"span": "s010"}).status_code == 404
    assert Client().get(span_url, {"span": "s010"}).status_code == 401


def test_the_decision_page_carries_the_selected_span_body_only(tenant, other_tenant):
    item, senior, second, _trace = _disputed_long_item(tenant)
    page_url, span_url = _decision_urls(tenant, item.pk)
    _assert_lazy_page(_client(senior), page_url, span_url)
    # A manager decides in every queue too; a reviewer who is not a senior of the queue,
    # another organization's owner: not found, as the page.
    assert _client(tenant.owner).get(span_url, {"span": "s010"}).status_code == 200
    assert _client(second).get(span_url, {"span": "s010"}).status_code == 404
    assert _client(other_tenant.owner).get(span_url, {"span": "s010"}).status_code == 404
    foreign = make_trace(other_tenant, external_id="foreign-trace")
    make_span(foreign, external_id="foreign-span", output="foreign-body")
    assert _client(senior).get(span_url, {"span": "foreign-span"}).status_code == 404
    assert Client().get(span_url, {"span": "s010"}).status_code == 401


def _others_on_span_57(tenant, trace, queue, author):
    """A judge's score on span s057 and ``author``'s comment on it in ``queue``."""
    lease = _claim(tenant, queue, author)
    with tenancy.tenant_scope(tenant.organization.pk):
        span = Span.objects.get(trace=trace, external_id="s057")
        Score.objects.create(
            project=tenant.project,
            trace=trace,
            span=span,
            name="judge-faithfulness",
            data_type="numeric",
            value=0.123,
            source="llm_judge",
            source_name="judge-gpt",
        )
        services.comment_create(
            actor=Actor(user=author),
            project=tenant.project,
            body="second-reviewer-marker on the tool",
            item_id=lease.item_id,
            span_id=span.pk,
        )
    return lease


@pytest.mark.parametrize("blind", [True, False])
def test_my_history_span_detail_follows_the_blind_rule(tenant, blind):
    """My answer is in, but the same trace waits for me in a blind queue where another
    reviewer has answered and commented on a span: my history item hides their comment
    and the judge's score on it, on the page and through the span endpoint alike."""
    second = make_user(f"second-{blind}@example.com")
    add_member(tenant.organization, second, "reviewer")
    queue, _config, trace = _long_item(tenant)
    other_queue = make_queue(
        tenant,
        configs=[make_config(tenant, name="Safety")],
        reviewers=[tenant.reviewer, second],
        overlap=2,
        blind_mode=blind,
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=other_queue, trace_id=trace.pk
        )
    _others_on_span_57(tenant, trace, other_queue, second)
    annotation = _submit(tenant, queue, tenant.reviewer, 1.0)
    page_url, span_url = _history_urls(tenant, annotation)
    client = _client(tenant.reviewer)
    fragment = client.get(span_url, {"span": "s057"}).content.decode()
    assert body_marker(57) in fragment
    page = client.get(page_url, {"span": "s057"}).content.decode()
    assert body_marker(57) in page
    for marker in ("judge-faithfulness", "0.123", "second-reviewer-marker"):
        assert (marker in fragment) is (not blind), marker
        assert (marker in page) is (not blind), marker


def test_the_senior_sees_on_the_span_what_the_decision_page_shows(tenant):
    item, senior, second, trace = _disputed_long_item(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        span = Span.objects.get(trace=trace, external_id="s057")
        services.comment_create(
            actor=Actor(user=second),
            project=tenant.project,
            body="second-reviewer-marker on the tool",
            item_id=item.pk,
            span_id=span.pk,
        )
    page_url, span_url = _decision_urls(tenant, item.pk)
    fragment = _client(senior).get(span_url, {"span": "s057"}).content.decode()
    page = _client(senior).get(page_url, {"span": "s057"}).content.decode()
    assert "second-reviewer-marker" in fragment and "second-reviewer-marker" in page
