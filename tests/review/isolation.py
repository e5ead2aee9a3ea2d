"""Review rows of the victim organization for the route-walking isolation test."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.services import agreement
from tests.factories import Tenant
from tests.isolation import IsolationData
from tests.review.helpers import make_config, make_queue, make_trace


def populate(tenant: Tenant) -> IsolationData:
    slug = tenant.organization.slug
    config = make_config(tenant, name=f"rubric-only-{slug}")
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=[tenant.reviewer, tenant.admin],
        seniors=(tenant.admin,),
        name=f"queue-only-{slug}",
        overlap=1,
        audit_sample_rate=1.0,
    )
    reviewer = Actor(user=tenant.reviewer)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        _first, second = (
            services.queue_item_add(actor=owner, queue=queue, trace_id=make_trace(tenant).pk)
            for _ in range(2)
        )
        submitted = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer,
            assignment_id=submitted.pk,
            values={str(config.pk): 0.5},
            explanation=f"explanation-only-{slug}",
        )
        # A live lease, so lease routes have something of the victim's to aim at.
        live = services.queue_claim_next(actor=reviewer, queue=queue)
        services.item_adjudicate(
            actor=Actor(user=tenant.admin),
            item=annotation.item,
            membership=tenant.admin.memberships.get(),
            values={str(config.pk): 0.75},
            explanation=f"decision-only-{slug}",
        )
        comment = services.comment_create(
            actor=reviewer,
            project=tenant.project,
            body=f"comment-only-{slug}",
            trace_id=second.trace_id,
        )
        rule = services.routing_rule_create(
            actor=owner,
            project=tenant.project,
            queue_id=queue.pk,
            name=f"rule-only-{slug}",
            signal="error",
            filter_params={"status": "error"},
        )
        failing = make_trace(tenant, status="error")
        services.routing_apply(project_id=tenant.project.pk, trace_ids=[failing.pk])
        # An agreement report (one reviewer: its figures say why there are none).
        agreement.agreement_refresh(queue_id=queue.pk, force=True, resamples=0)
    return IsolationData(
        kwargs={
            "queue_pk": queue.pk,
            "assignment_pk": live.pk,
            "annotation_pk": annotation.pk,
            "item_pk": annotation.item_id,
            "config_pk": config.pk,
            "rule_pk": rule.pk,
        },
        markers=[
            config.name,
            queue.name,
            annotation.explanation,
            f"decision-only-{slug}",
            comment.body,
            rule.name,
        ],
    )
