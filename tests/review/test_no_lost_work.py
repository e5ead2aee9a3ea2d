"""Nothing a reviewer writes is lost: Post/Redirect/Get on the review flow, the same form
sent twice, drafts kept as they type, an ended session, a lapsed lease, and two tabs on
one item. Django's client on real rows; the browser side is tests/browser/test_mishaps.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, Assignment, QueueItem, ReviewDraft
from tests.factories import PASSWORD
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue

CATEGORIES = [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}]


@pytest.fixture
def setup(tenant):
    config = make_config(
        tenant, name="Accuracy", data_type="categorical", options=CATEGORIES, required=True
    )
    queue = make_queue(tenant, configs=[config], name="Answers", overlap=1)
    add_traces(tenant, queue, 3)
    return queue, config


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(name: str, tenant, pk: int) -> str:
    kwargs = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    return reverse(name, kwargs={**kwargs, "assignment_pk": pk})


def _claim(tenant, queue, user=None) -> Assignment:
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.queue_claim_next(actor=Actor(user=user or tenant.reviewer), queue=queue)


def _rows(tenant, model, **filters) -> list:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(model.objects.filter(**filters).order_by("pk"))


# --- Post/Redirect/Get -------------------------------------------------------------------------


def test_every_post_only_review_address_redirects_a_get_to_the_item(tenant, setup):
    queue, _config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    item_url = _url("review-item", tenant, lease.pk)
    for name in ("submit", "skip", "release", "next", "span-comment", "draft", "renew"):
        path = item_url + ("next/" if name == "next" else f"{name}/")
        response = client.get(path)
        assert (response.status_code, response.url) == (302, item_url), name
    page = client.get(item_url).content.decode()
    assert "That address only sends a form; here is the item." in page
    start = reverse(
        "review-queue-start",
        kwargs={
            "org_slug": tenant.organization.slug,
            "project_slug": tenant.project.slug,
            "queue_pk": queue.pk,
        },
    )
    assert client.get(start).url == reverse(
        "review-my-work", kwargs={"org_slug": tenant.organization.slug}
    )
    # Someone else's lease stays a 404, GET or POST.
    other = _client(tenant.admin)
    assert other.get(_url("review-submit", tenant, lease.pk)).status_code == 404


def test_a_refused_submit_redirects_to_the_item_with_its_errors_and_answers(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    response = client.post(
        _url("review-submit", tenant, lease.pk), {f"q-{config.pk}": "", "explanation": "why"}
    )
    assert response.url == _url("review-item", tenant, lease.pk)
    page = client.get(response.url).content.decode()
    assert "an answer is required" in page and ">why</textarea>" in page
    # Shown once: a reload shows the draft but not the stale error.
    again = client.get(response.url).content.decode()
    assert "an answer is required" not in again and ">why</textarea>" in again


# --- the same form twice -----------------------------------------------------------------------


def test_the_same_submit_twice_goes_where_the_first_went_and_touches_nothing_else(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    form = {f"q-{config.pk}": "Wrong", "explanation": "Too high.", "comment": "look"}
    first = client.post(_url("review-submit", tenant, lease.pk), form)
    second = client.post(_url("review-submit", tenant, lease.pk), form)
    assert first.status_code == second.status_code == 302
    assert second.url == first.url != _url("review-item", tenant, lease.pk)
    assert len(_rows(tenant, Annotation)) == 1
    leases = _rows(tenant, Assignment, reviewer=tenant.reviewer)
    assert [a.state for a in leases] == ["submitted", "leased"]
    # The fast path (the page held the next item) is remembered the same way.
    held = leases[1]
    fast = client.post(
        _url("review-submit", tenant, held.pk),
        {f"q-{config.pk}": "Correct"},
        headers={"X-Review-Buffered": "0"},
    )
    assert fast.status_code == 302
    again = client.post(_url("review-submit", tenant, held.pk), {f"q-{config.pk}": "Correct"})
    assert again.url == fast.url
    assert len(_rows(tenant, Annotation)) == 2


def test_the_same_skip_twice_skips_once(tenant, setup):
    queue, _config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    first = client.post(_url("review-skip", tenant, lease.pk), {"reason": "Outside my expertise"})
    second = client.post(_url("review-skip", tenant, lease.pk), {"reason": "Outside my expertise"})
    assert second.url == first.url
    assert [a.state for a in _rows(tenant, Assignment)] == ["skipped", "leased"]


# --- drafts ------------------------------------------------------------------------------------


def test_a_draft_is_kept_restored_and_dropped_on_submit(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    draft_url = _url("review-draft", tenant, lease.pk)
    saved = client.post(
        draft_url,
        {
            f"q-{config.pk}": "Wrong",
            "explanation": "Half written <b>",
            "failure_mode": ["wrong dose"],
            "comment": "ask @lead",
        },
    )
    assert saved.status_code == 200 and saved.json()["saved_at"] > 0
    (draft,) = _rows(tenant, ReviewDraft)
    assert draft.data["explanation"] == "Half written <b>"
    assert draft.data["picked_failure_modes"] == ["wrong dose"]
    page = client.get(_url("review-item", tenant, lease.pk)).content.decode()
    assert ">Half written &lt;b&gt;</textarea>" in page and ">ask @lead</textarea>" in page
    assert 'value="Wrong" data-key="2" checked' in page
    assert 'value="wrong dose" checked' in page
    assert "not yet submitted on this item are restored" in page
    # Too long for a draft: refused with the reason, nothing kept.
    assert client.post(draft_url, {"explanation": "x" * 20_001}).status_code == 422
    # Another reviewer cannot write it.
    assert _client(tenant.admin).post(draft_url, {"explanation": "mine"}).status_code == 404
    client.post(_url("review-submit", tenant, lease.pk), {f"q-{config.pk}": "Wrong"})
    assert _rows(tenant, ReviewDraft) == []
    # The item is submitted: a late draft is refused, never kept.
    late = client.post(draft_url, {"explanation": "late"})
    assert late.status_code == 409 and late.json()["code"] == "already_submitted"
    assert _rows(tenant, ReviewDraft) == []


# --- the session ends --------------------------------------------------------------------------


def test_a_submit_after_the_session_ended_signs_in_back_to_the_item(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    client = Client()
    item_url = _url("review-item", tenant, lease.pk)
    response = client.post(_url("review-submit", tenant, lease.pk), {f"q-{config.pk}": "Wrong"})
    assert response.status_code == 302
    login = response.url
    assert login.startswith("/accounts/login/") and "submit" not in login
    assert login.endswith("?next=" + item_url)
    shown = client.get(login).content.decode()
    assert "Your session ended. Sign in again to go back to your item" in shown
    signed_in = client.post(
        login, {"login": tenant.reviewer.email, "password": PASSWORD}, follow=False
    )
    assert signed_in.status_code == 302 and signed_in.url == item_url
    assert client.get(item_url).status_code == 200
    # The page's script is told, not sent to the sign-in page.
    anonymous = Client()
    for name in ("review-draft", "review-renew"):
        refused = anonymous.post(_url(name, tenant, lease.pk), {"explanation": "x"})
        assert refused.status_code == 401 and refused.json()["signed_out"] is True


def test_a_form_sent_without_cookies_gets_the_sign_in_page_not_the_debug_page(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    item_url = _url("review-item", tenant, lease.pk)
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        _url("review-submit", tenant, lease.pk),
        {f"q-{config.pk}": "Wrong"},
        headers={"Accept": "text/html", "Referer": f"http://testserver{item_url}"},
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "CSRF verification failed" not in page
    assert "Your session ended: sign in again" in page
    assert f'href="/accounts/login/?next={item_url.replace("/", "%2F")}"' in page
    # A script (or an API client) gets the API's error shape.
    scripted = client.post(_url("review-draft", tenant, lease.pk), {})
    assert scripted.status_code == 403
    assert json.loads(scripted.content)["error"]["code"] == "csrf_failed"


# --- the lease ends ----------------------------------------------------------------------------


def _expire(tenant, lease: Assignment, *, sweep: bool) -> None:
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=lease.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        if sweep:
            services.leases_expire(queue_id=lease.queue_id)


def _counters(tenant, item_id: int) -> tuple[int, int, int]:
    with tenancy.tenant_scope(tenant.organization.pk):
        item = QueueItem.objects.get(pk=item_id)
    return item.live_leases, item.submissions, item.open_slots


def test_renewing_extends_the_lease_and_takes_back_an_expired_one_nobody_took(tenant, setup):
    queue, _config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    renew = _url("review-renew", tenant, lease.pk)
    with tenancy.tenant_scope(tenant.organization.pk):
        Assignment.objects.filter(pk=lease.pk).update(
            expires_at=timezone.now() + timedelta(seconds=30)
        )
    response = client.post(renew)
    assert response.status_code == 200
    (renewed,) = _rows(tenant, Assignment)
    assert renewed.expires_at > timezone.now() + timedelta(seconds=queue.lease_ttl_seconds - 60)
    _expire(tenant, lease, sweep=True)
    assert _rows(tenant, Assignment)[0].state == "expired"
    assert _counters(tenant, lease.item_id) == (0, 0, 1)
    page = client.get(_url("review-item", tenant, lease.pk)).content.decode()
    assert "nobody else has taken it" in page and 'id="review-form"' in page
    assert client.post(renew).status_code == 200
    assert _rows(tenant, Assignment)[0].state == "leased"
    assert _counters(tenant, lease.item_id) == (1, 0, 0)


def test_a_lapsed_lease_someone_else_took_keeps_the_draft_to_copy(tenant, setup):
    _queue, config = setup
    (other,) = add_reviewers(tenant, 1)
    queue = make_queue(tenant, configs=[config], reviewers=[tenant.reviewer, other], overlap=1)
    add_traces(tenant, queue, 1)
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    client.post(_url("review-draft", tenant, lease.pk), {"explanation": "My careful notes"})
    _expire(tenant, lease, sweep=True)
    taken = _claim(tenant, queue, other)
    assert taken.item_id == lease.item_id  # the freed slot went to the other reviewer
    response = client.post(
        _url("review-submit", tenant, lease.pk),
        {f"q-{config.pk}": "Wrong", "explanation": "My careful notes, finished"},
    )
    assert response.url == _url("review-item", tenant, lease.pk)
    page = client.get(response.url).content.decode()
    assert "Taken by another reviewer: copy your notes" in page
    assert "My careful notes, finished" in page and "Accuracy: Wrong" in page
    assert _rows(tenant, Annotation) == []
    renew = client.post(_url("review-renew", tenant, lease.pk))
    assert renew.status_code == 409 and renew.json()["code"] == "lease_taken"
    assert _counters(tenant, lease.item_id) == (1, 0, 0)


# --- two tabs ----------------------------------------------------------------------------------


def test_other_answers_from_a_second_tab_are_shown_beside_the_stored_ones(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    first_tab, second_tab = _client(tenant.reviewer), _client(tenant.reviewer)
    submit = _url("review-submit", tenant, lease.pk)
    first_tab.post(submit, {f"q-{config.pk}": "Wrong", "explanation": "first tab"})
    second = second_tab.post(submit, {f"q-{config.pk}": "Correct", "explanation": "second tab"})
    assert second.url == _url("review-item", tenant, lease.pk)
    page = second_tab.get(second.url).content.decode()
    assert "You already submitted this item, with other answers" in page
    assert "first tab" in page and "second tab" in page
    (annotation,) = _rows(tenant, Annotation)
    assert annotation.explanation == "first tab"  # nothing saved over it silently
    resolve = _url("review-resolve", tenant, lease.pk)
    stale = second_tab.post(resolve, {"choice": "replace", "version": 7})
    assert stale.url == _url("review-item", tenant, lease.pk)
    assert _rows(tenant, Annotation)[0].version == 1
    done = second_tab.post(resolve, {"choice": "replace", "version": 1})
    assert done.status_code == 302 and done.url != _url("review-item", tenant, lease.pk)
    (annotation,) = _rows(tenant, Annotation)
    assert (annotation.values, annotation.explanation, annotation.version) == (
        {str(config.pk): "Correct"},
        "second tab",
        2,
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        latest = annotation.history.order_by("-history_id").first()
    assert latest.history_change_reason == "Replaced by the answers sent from another tab"
    assert latest.history_user_id == tenant.reviewer.pk
    assert _rows(tenant, ReviewDraft) == []


def test_keeping_the_stored_answer_drops_the_other_one(tenant, setup):
    queue, config = setup
    lease = _claim(tenant, queue)
    client = _client(tenant.reviewer)
    submit = _url("review-submit", tenant, lease.pk)
    client.post(submit, {f"q-{config.pk}": "Wrong"})
    client.post(submit, {f"q-{config.pk}": "Correct"})
    assert _rows(tenant, ReviewDraft)[0].conflict is True
    kept = client.post(_url("review-resolve", tenant, lease.pk), {"choice": "keep", "version": 1})
    assert kept.status_code == 302
    assert _rows(tenant, ReviewDraft) == []
    assert _rows(tenant, Annotation)[0].values == {str(config.pk): "Wrong"}
    page = client.get(_url("review-item", tenant, lease.pk)).content.decode()
    assert "Already submitted" in page


def test_skipping_a_lapsed_lease_moves_on(tenant, setup):
    queue, _config = setup
    lease = _claim(tenant, queue)
    _expire(tenant, lease, sweep=False)
    client = _client(tenant.reviewer)
    response = client.post(_url("review-skip", tenant, lease.pk), {"reason": "Not mine"})
    assert response.status_code == 302 and response.url != _url("review-item", tenant, lease.pk)
    assert [a.state for a in _rows(tenant, Assignment)] == ["expired", "leased"]
