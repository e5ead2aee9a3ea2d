"""Two tabs' submits of one item reaching the server together: the one that waits for
the item's lock while the other is stored finds the item submitted, and its answers are
kept beside the stored ones to choose from (never lost behind "already submitted").
Real threads on their own PostgreSQL connections; the wait is seen in pg_stat_activity,
so the order is the same on every run."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, ReviewDraft
from tests.review.helpers import add_traces, make_config, make_queue

CATEGORIES = [{"label": "Correct", "value": 1.0}, {"label": "Wrong", "value": 0.0}]
WAITING_ON_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def _url(name: str, tenant, pk: int) -> str:
    kwargs = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    return reverse(name, kwargs={**kwargs, "assignment_pk": pk})


@pytest.mark.django_db(transaction=True)
def test_a_submit_that_waited_while_another_tab_stored_the_item_keeps_its_answers(tenant):
    config = make_config(
        tenant, name="Accuracy", data_type="categorical", options=CATEGORIES, required=True
    )
    queue = make_queue(tenant, configs=[config], name="Answers", overlap=1)
    add_traces(tenant, queue, 2)
    organization_id = tenant.organization.pk
    with tenancy.tenant_scope(organization_id):
        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    stored, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_tab() -> None:
        """Stores its answers and holds the transaction open until the other waits."""
        try:
            with tenancy.tenant_scope(organization_id), transaction.atomic():
                services.assignment_submit(
                    actor=Actor(user=tenant.reviewer),
                    assignment_id=lease.pk,
                    values={str(config.pk): "Wrong"},
                    explanation="first tab",
                )
                stored.set()
                release.wait(30)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            stored.set()
            connection.close()

    def watch() -> None:
        """Lets the first tab commit once the second tab's request waits on its lock."""
        try:
            for _ in range(1000):
                with connection.cursor() as cursor:
                    cursor.execute(WAITING_ON_A_LOCK)
                    if cursor.fetchone()[0]:
                        break
                threading.Event().wait(0.01)
        finally:
            release.set()
            connection.close()

    first = threading.Thread(target=first_tab)
    first.start()
    stored.wait(30)
    watcher = threading.Thread(target=watch)
    watcher.start()
    second_tab = Client()
    second_tab.force_login(tenant.reviewer)
    response = second_tab.post(
        _url("review-submit", tenant, lease.pk),
        {f"q-{config.pk}": "Correct", "explanation": "second tab"},
    )
    first.join(30)
    watcher.join(30)
    assert not errors, errors
    assert response.status_code == 302
    assert response.url == _url("review-item", tenant, lease.pk)
    with tenancy.tenant_scope(organization_id):
        (annotation,) = Annotation.objects.all()
        (draft,) = ReviewDraft.objects.all()
    assert annotation.explanation == "first tab"
    assert draft.conflict is True and draft.data["explanation"] == "second tab"
    page = second_tab.get(response.url).content.decode()
    assert "You already submitted this item, with other answers" in page
    assert "first tab" in page and "second tab" in page
