"""The trace page: add this trace to a review queue or a dataset (through review's and
datasets' services), the expected output left empty unless the person accepts the
output, refused choices beside the form, and the span tree beside the selected span."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from datasets.models import DatasetItem
from hitl import tenancy
from review.models import QueueItem
from tests.datasets.helpers import make_dataset
from tests.review.helpers import make_queue, make_span, make_trace


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(tenant, trace, action: str = "") -> str:
    kwargs = {
        "org_slug": tenant.organization.slug,
        "project_slug": tenant.project.slug,
        "trace_external_id": trace.external_id,
    }
    if action:
        return reverse("traces-detail-action", kwargs={**kwargs, "action_key": action})
    return reverse("traces-detail", kwargs=kwargs)


@pytest.fixture
def trace(tenant):
    made = make_trace(tenant, name="refund", input={"q": "refund?"}, output={"a": "Yes."})
    make_span(made, external_id="llm-1", kind="llm", name="compose", input={"m": "hi"})
    return made


def test_a_manager_adds_the_trace_to_a_queue_once(tenant, trace):
    queue = make_queue(tenant, name="Refunds")
    client = _client(tenant.admin)
    page = client.get(_url(tenant, trace))
    assert 'id="action-queue"' in page.content.decode() and "Refunds" in page.content.decode()
    answer = client.post(_url(tenant, trace, "queue"), {"choice": str(queue.pk)}, follow=True)
    assert answer.redirect_chain[-1][0] == _url(tenant, trace)
    assert "Added this trace to “Refunds”." in answer.content.decode()
    again = client.post(_url(tenant, trace, "queue"), {"choice": str(queue.pk)}, follow=True)
    assert "already in “Refunds”" in again.content.decode()
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QueueItem.objects.filter(queue=queue, trace=trace).count() == 1


def test_a_queue_of_another_project_is_refused_beside_the_form(tenant, other_tenant, trace):
    make_queue(tenant, name="Ours")
    foreign = make_queue(other_tenant, name="Theirs", reviewers=[other_tenant.reviewer])
    answer = _client(tenant.admin).post(_url(tenant, trace, "queue"), {"choice": str(foreign.pk)})
    assert answer.status_code == 422
    body = answer.content.decode()
    assert "Choose one of this project" in body and 'aria-invalid="true"' in body
    empty = _client(tenant.admin).post(_url(tenant, trace, "queue"), {})
    assert empty.status_code == 422 and "Choose one." in empty.content.decode()


def test_dataset_promotion_keeps_the_expected_output_empty_unless_accepted(tenant, trace):
    golden = make_dataset(tenant, name="golden")
    accepted = make_dataset(tenant, name="accepted")
    client = _client(tenant.admin)
    plain = client.post(_url(tenant, trace, "dataset"), {"choice": str(golden.pk)}, follow=True)
    assert "Added this trace to “golden”" in plain.content.decode()
    assert "no expected output yet" in plain.content.decode()
    client.post(_url(tenant, trace, "dataset"), {"choice": str(accepted.pk), "accept_output": "on"})
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetItem.objects.get(dataset=golden).expected_output is None
        assert DatasetItem.objects.get(dataset=accepted).expected_output == {"a": "Yes."}
    again = client.post(_url(tenant, trace, "dataset"), {"choice": str(golden.pk)}, follow=True)
    assert "already has this trace" in again.content.decode()


def test_readers_who_do_not_manage_get_no_actions(tenant, trace):
    queue = make_queue(tenant, name="Refunds")
    page = _client(tenant.reviewer).get(_url(tenant, trace))
    assert page.status_code == 200 and 'id="action-queue"' not in page.content.decode()
    refused = _client(tenant.reviewer).post(_url(tenant, trace, "queue"), {"choice": queue.pk})
    assert refused.status_code == 404
    unknown = _client(tenant.admin).post(_url(tenant, trace, "nothing"), {"choice": queue.pk})
    assert unknown.status_code == 404


def test_another_projects_trace_answers_404(tenant, other_tenant, trace):
    theirs = make_trace(other_tenant, name="theirs")
    answer = _client(tenant.admin).post(_url(tenant, theirs, "queue"), {"choice": "1"})
    assert answer.status_code == 404


def test_the_span_tree_links_to_the_pane_beside_it(tenant, trace):
    body = _client(tenant.admin).get(_url(tenant, trace)).content.decode()
    assert 'href="?span=llm-1#span-split"' in body  # without the script: the page, selected
    pane = body[body.index('id="span-pane"') :]
    assert 'id="span-panel-0"' in pane and "compose" in pane
    assert "data-detail-url" not in body  # a short trace carries every span's body
