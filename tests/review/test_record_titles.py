"""Record titles name people: a comment names its author and a decision its
adjudicator, as an annotation names its reviewer, so the admin's lists, history pages
and change log say whose record each is."""

from __future__ import annotations

from django.test import Client

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Role
from review import services
from review.models import Adjudication
from tests.datasets.helpers import make_reviewed_item
from tests.factories import add_member, make_user
from tests.review.helpers import make_trace


def test_comments_and_decisions_name_their_people(tenant):
    item, _trace, _reviewers = make_reviewed_item(tenant, disagree=True)
    trace = make_trace(tenant, external_id="remarked")
    with tenancy.tenant_scope(tenant.organization.pk):
        comment = services.comment_create(
            actor=Actor(user=tenant.reviewer), project=tenant.project, body="Odd", trace_id=trace.pk
        )
        decision = Adjudication.objects.get(item=item)
        assert str(comment) == f"comment {comment.pk} by {tenant.reviewer.email}"
        assert str(decision) == (
            f"{decision.kind} decision by {decision.adjudicator.email} on item {item.pk}"
        )

    auditor = make_user("titles-auditor@example.com", is_staff=True)
    add_member(tenant.organization, auditor, Role.AUDITOR)
    client = Client()
    client.force_login(auditor)
    log = client.get("/admin/changelog/", {"model": "review.comment"}).content.decode()
    assert f"comment {comment.pk} by {tenant.reviewer.email}" in log
