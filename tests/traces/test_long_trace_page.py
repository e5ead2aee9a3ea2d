"""The trace page on a long trace (300 spans, a 233 KB answer): the span tree with only
the selected span's body, another span by ``?span=`` (no script needed), and the span
endpoint the page's script calls, under the page's blind rule and tenancy."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from tests.review.helpers import make_config, make_queue
from tests.review.long_trace import ERROR_SPANS, add_long_trace, body_marker
from traces.models import Score, Span

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _kwargs(tenant, trace) -> dict:
    return {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "trace_external_id": trace.external_id,
    }


@pytest.fixture
def long_trace(tenant):
    return add_long_trace(organization_id=tenant.organization.pk, project=tenant.project)


def test_the_page_carries_the_tree_and_the_selected_span_body_only(tenant, long_trace):
    client = _client(tenant.admin)
    url = reverse("traces-detail", kwargs=_kwargs(tenant, long_trace))
    page = client.get(url).content.decode()
    assert page.count('class="span-row"') == 300
    assert page.count("data-error") == len(ERROR_SPANS)
    assert page.count('class="span-panel"') == 1
    assert body_marker(0) in page  # the first span, selected
    assert body_marker(1) not in page and body_marker(299) not in page
    span_url = reverse("traces-detail-span", kwargs=_kwargs(tenant, long_trace))
    assert f'data-detail-url="{span_url}"' in page
    # Without the script a row is a link to the page with that span selected.
    assert 'href="?span=s143#span-split"' in page
    chosen = client.get(url, {"span": "s143"}).content.decode()
    assert body_marker(143) in chosen and "timed out after 400 ms (span 143)" in chosen
    assert body_marker(0) not in chosen
    assert 'id="span-panel-143"' in chosen and 'data-span="s143" data-index="143"' in chosen
    # A span id the trace does not have selects the first span.
    assert body_marker(0) in client.get(url, {"span": "nope"}).content.decode()


def test_the_span_endpoint_returns_the_pane_fragment(tenant, other_tenant, long_trace):
    client = _client(tenant.admin)
    url = reverse("traces-detail-span", kwargs=_kwargs(tenant, long_trace))
    response = client.get(url, {"span": "s057"})
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<section" in fragment[:400] and 'id="span-panel-57"' in fragment
    assert body_marker(57) in fragment and "timed out after 400 ms (span 57)" in fragment
    assert body_marker(58) not in fragment and "<html" not in fragment
    # A span the trace does not have, no span, a span id too long: 404.
    assert client.get(url, {"span": "s999"}).status_code == 404
    assert client.get(url).status_code == 404
    assert client.get(url, {"span": "s" * 500}).status_code == 404
    # Another organization's trace: 404 for its members' neighbours, as a missing one.
    theirs = add_long_trace(
        organization_id=other_tenant.organization.pk,
        project=other_tenant.project,
        spans=41,
        external_id="their-long-trace",
    )
    foreign = reverse("traces-detail-span", kwargs=_kwargs(tenant, theirs))
    assert client.get(foreign, {"span": "s001"}).status_code == 404
    across = reverse("traces-detail-span", kwargs=_kwargs(other_tenant, theirs))
    assert client.get(across, {"span": "s001"}).status_code == 404
    assert _client(other_tenant.admin).get(across, {"span": "s001"}).status_code == 200
    # Signed out: 401 with where to sign in (the page's script says so).
    signed_out = Client().get(url, {"span": "s057"})
    assert signed_out.status_code == 401 and signed_out.json()["signed_out"] is True


@pytest.mark.parametrize("answered", [False, True])
def test_the_span_endpoint_follows_the_page_blind_rule(tenant, long_trace, answered):
    config = make_config(tenant, name="Accuracy", required=True)
    queue = make_queue(
        tenant, configs=[config], reviewers=[tenant.reviewer], overlap=2, blind_mode=True
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        span = Span.objects.get(trace=long_trace, external_id="s057")
        Score.objects.create(
            project=tenant.project,
            trace=long_trace,
            span=span,
            name="judge-faithfulness",
            data_type="numeric",
            value=0.123,
            source="llm_judge",
            source_name="judge-gpt",
        )
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=long_trace.pk
        )
        if answered:
            lease = review_services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
            review_services.assignment_submit(
                actor=Actor(user=tenant.reviewer),
                assignment_id=lease.pk,
                values={str(config.pk): 1.0},
            )
    kwargs = _kwargs(tenant, long_trace)
    for user, sees in ((tenant.admin, True), (tenant.reviewer, answered)):
        client = _client(user)
        fragment = client.get(
            reverse("traces-detail-span", kwargs=kwargs), {"span": "s057"}
        ).content.decode()
        page = client.get(
            reverse("traces-detail", kwargs=kwargs), {"span": "s057"}
        ).content.decode()
        pane = page[page.index('id="span-pane"') :]
        assert body_marker(57) in fragment and body_marker(57) in pane
        for marker in ("judge-faithfulness", "0.123"):
            assert (marker in fragment) is sees, (user.email, marker)
            assert (marker in pane) is sees, (user.email, marker)
