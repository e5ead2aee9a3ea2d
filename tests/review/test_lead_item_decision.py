"""The adjudicated decision on the lead's item page: labelled as the decision, with who
decided and its answers, beside the reviews it settled."""

from __future__ import annotations

import re

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects.models import Membership
from review import services
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_config, make_queue, make_trace


def test_the_lead_item_page_shows_the_decision_with_who_decided(tenant):
    config = make_config(tenant, name="Accuracy")
    queue = make_queue(
        tenant, configs=[config], reviewers=[tenant.reviewer, tenant.owner], overlap=2,
        blind_mode=False,
    )  # fmt: skip
    trace = make_trace(tenant)
    with tenant_scope(tenant.organization.pk):
        item = services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        for user, value in ((tenant.reviewer, 0.5), (tenant.owner, 1.0)):
            actor = Actor(user=user)
            services.assignment_submit(
                actor=actor,
                assignment_id=services.queue_claim_next(actor=actor, queue=queue).pk,
                values={str(config.pk): value},
            )
    lead = signed_in(tenant.admin)
    url = project_url(tenant, "lead-item", queue_pk=queue.pk, item_pk=item.pk)
    assert 'id="decision"' not in lead.get(url).content.decode()
    with tenant_scope(tenant.organization.pk):
        services.item_adjudicate(
            actor=Actor(user=tenant.admin),
            item=item,
            membership=Membership.objects.get(user=tenant.admin),
            values={str(config.pk): 0.75},
        )
    page = lead.get(url).content.decode()
    section = re.search(r'<section[^>]*id="decision">.*?</section>', page, re.S)
    assert section, page
    text = " ".join(re.sub(r"<[^>]+>", " ", section.group(0)).split())
    assert f"Decision by {tenant.admin.email}" in text
    assert "reviews disagreed" in text and "Accuracy: 0.75" in text
    # The reviews it settled are still there.
    assert tenant.reviewer.email in page and tenant.owner.email in page
