"""The trace explorer: the filter form (and its errors), columns, pages, saved views, the
trace detail with the blind rule, and review's "add all matching to a queue" action."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from review.models import QueueItem
from tests.review.helpers import make_config, make_queue, make_span, make_trace
from traces import views as trace_views
from traces.models import Feedback, SavedView, Score


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _explorer(tenant, **params) -> str:
    url = reverse(
        "traces-explorer",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


@pytest.fixture
def traces(tenant):
    failing = make_trace(tenant, name="billing failure", status="error", tags=["billing"])
    fine = make_trace(tenant, name="greeting", status="ok", tags=["chat"])
    return failing, fine


def test_the_filter_form_narrows_the_list(tenant, traces):
    page = _client(tenant.admin).get(_explorer(tenant, status="error", tags="billing"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "billing failure" in body
    assert "greeting" not in body
    # The form keeps what was typed.
    assert 'value="billing"' in body


def test_invalid_input_shows_the_form_errors_and_no_results(tenant, traces):
    page = _client(tenant.admin).get(_explorer(tenant, score="correctness<abc", q="ab"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "The filter has errors" in body
    assert "needs a number" in body  # the score condition's reason, beside its field
    assert "at least 3" in body.lower()
    assert "billing failure" not in body


def test_columns_are_chosen(tenant, traces):
    body = _client(tenant.admin).get(_explorer(tenant, col=["name", "tags"])).content.decode()
    assert "<th>Tags</th>" in body
    assert "<th>Status</th>" not in body
    default = _client(tenant.admin).get(_explorer(tenant)).content.decode()
    assert "<th>Status</th>" in default and "<th>Tags</th>" not in default


def test_pages_follow_on_newest_first(tenant, monkeypatch):
    monkeypatch.setattr(trace_views, "PAGE_SIZE", 2)
    for n in range(5):
        make_trace(tenant, name=f"page trace {n}")
    client = _client(tenant.admin)
    seen = []
    url = _explorer(tenant)
    for _ in range(3):
        page = client.get(url)
        body = page.content.decode()
        found = [f"page trace {n}" for n in range(5) if f"page trace {n}" in body]
        seen += sorted(found, key=body.index)
        url = page.context["next_url"]
        if not url:
            break
    assert seen == [f"page trace {n}" for n in (4, 3, 2, 1, 0)]


def test_saved_views_are_shared_in_the_project(tenant, traces):
    client = _client(tenant.admin)
    url = reverse(
        "traces-saved-view-create",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    response = client.post(url, {"name": "Failures", "query": "status=error", "col": ["name"]})
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        view = SavedView.objects.get(project=tenant.project)
        assert view.filter_params == {"status": "error"} and view.columns == ["name"]
        assert view.history.count() == 1
    # Another member sees it; following it filters.
    page = _client(tenant.viewer).get(_explorer(tenant))
    entry = page.context["saved_views"][0]
    assert entry["view"].name == "Failures"
    body = _client(tenant.viewer).get(entry["url"]).content.decode()
    assert "billing failure" in body and "greeting" not in body
    # A bad filter is refused with its reason.
    bad = client.post(url, {"name": "Bad", "query": "status=bogus"}, follow=True)
    assert "not saved" in bad.content.decode()
    # Viewers do not save or delete views.
    assert _client(tenant.viewer).post(url, {"name": "X", "query": ""}).status_code == 403


def test_deleting_a_saved_view_asks_first_and_says_what_is_lost(tenant, traces):
    with tenancy.tenant_scope(tenant.organization.pk):
        view = SavedView.objects.create(
            project=tenant.project, name="Failures", filter_params={"status": "error"}
        )
    client = _client(tenant.admin)
    lost = "It is gone for everyone in the project"
    assert f'data-confirm="Delete the view “Failures”? {lost}' in (
        client.get(_explorer(tenant)).content.decode()
    )
    url = reverse(
        "traces-saved-view-delete",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "saved_view_pk": view.pk,
        },
    )
    asked = client.post(url)
    assert asked.status_code == 200
    assert 'id="confirm-page"' in asked.content.decode() and lost in asked.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert SavedView.objects.filter(pk=view.pk).exists()
    assert client.post(url, {"confirm": "1"}).status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not SavedView.objects.filter(pk=view.pk).exists()


def test_a_view_on_a_score_name_the_project_has_not_is_refused(tenant, traces):
    failing, _fine = traces
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project,
            trace=failing,
            name="faithfulness",
            data_type="numeric",
            value=0.2,
            source="llm_judge",
        )
    url = reverse(
        "traces-saved-view-create",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    client = _client(tenant.admin)
    refused = client.post(url, {"name": "Typo", "query": "score=faithfulnes<0.5"})
    assert refused.status_code == 400
    assert "no score named “faithfulnes”" in refused.content.decode()
    saved = client.post(url, {"name": "Unfaithful", "query": "score=faithfulness<0.5"})
    assert saved.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        assert list(SavedView.objects.values_list("name", flat=True)) == ["Unfaithful"]


def test_trace_detail_shows_scores_side_by_side_and_the_blind_rule(tenant):
    config = make_config(tenant, name="Accuracy")
    other = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer], overlap=2)
    trace = make_trace(tenant, name="judged", input={"q": "<b>dose?</b>"})
    make_span(trace, external_id="llm-1", kind="llm", name="compose", model="gpt-4o")
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project,
            trace=trace,
            name="Accuracy",
            data_type="numeric",
            value=0.25,
            source="llm_judge",
            source_name="judge-v1",
        )
        Score.objects.create(  # a judge with no name: its kind in words
            project=tenant.project,
            trace=trace,
            name="Tone",
            data_type="numeric",
            value=0.5,
            source="llm_judge",
        )
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=other, trace_id=trace.pk
        )
    url = reverse(
        "traces-detail",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "trace_external_id": trace.external_id,
        },
    )
    body = _client(tenant.admin).get(url).content.decode()
    assert "compose" in body and "gpt-4o" in body
    assert "judge-v1" in body and "0.25" in body
    assert '<span class="muted">LLM judge</span>' in body and ">llm_judge<" not in body
    assert "&lt;b&gt;dose?&lt;/b&gt;" in body  # payloads escaped
    # A reviewer of the blind queue who has not answered sees no judge score.
    blind = _client(tenant.reviewer).get(url).content.decode()
    assert "judge-v1" not in blind and "No scores you may see." in blind


def test_bulk_add_counts_all_pages_then_adds_exactly_the_matches(tenant, traces):
    failing, _fine = traces
    more = [make_trace(tenant, status="error") for _ in range(3)]
    queue = make_queue(tenant)
    client = _client(tenant.admin)
    explorer = client.get(_explorer(tenant, status="error"))
    action = explorer.context["actions"][0]
    assert action["label"].startswith("Add all matching")
    confirm = client.get(action["url"])
    assert confirm.status_code == 200
    assert confirm.context["matched"] == 4
    assert 'id="matched-count">4<' in confirm.content.decode()
    added = client.post(action["url"].split("?")[0], {"filter": "status=error", "queue": queue.pk})
    assert added.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        queued = set(QueueItem.objects.filter(queue=queue).values_list("trace_id", flat=True))
    assert queued == {failing.pk, *(t.pk for t in more)}
    # Again: nothing new, and the page says so.
    again = client.post(
        action["url"].split("?")[0], {"filter": "status=error", "queue": queue.pk}, follow=True
    )
    assert "Added 0 of 4" in again.content.decode()


def test_bulk_add_is_for_managers(tenant, traces):
    assert _client(tenant.reviewer).get(_explorer(tenant)).context["actions"] == []
    url = reverse(
        "lead-bulk-add",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug},
    )
    assert _client(tenant.reviewer).get(url).status_code == 403
    assert _client(tenant.viewer).get(url).status_code == 403


def test_cells_are_escaped(tenant):
    make_trace(tenant, name="<i>named</i>", tags=["<b>tag</b>"], status="error")
    body = _client(tenant.admin).get(_explorer(tenant, col=["name", "tags", "status"]))
    text = body.content.decode()
    assert "&lt;i&gt;named&lt;/i&gt;" in text and "&lt;b&gt;tag&lt;/b&gt;" in text
    assert "<i>named</i>" not in text and '<span class="badge bad">error</span>' in text


def test_feedback_reads_as_words(tenant):
    """The feedback column says what people said in words (no glyph that a browser
    without an emoji font draws as a box)."""
    trace = make_trace(tenant, name="rated answer")
    with tenancy.tenant_scope(tenant.organization.pk):
        for kind, value in (("thumbs", 1.0), ("thumbs", 1.0), ("thumbs", -1.0), ("rating", 4.0)):
            Feedback.objects.create(project=tenant.project, trace=trace, kind=kind, value=value)
    body = _client(tenant.admin).get(_explorer(tenant, col=["name", "feedback"])).content.decode()
    assert "2 up, 1 down, rated 4.0" in body
