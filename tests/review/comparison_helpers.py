"""Builders for comparison tests: a comparison queue and its items, through the services."""

from __future__ import annotations

import itertools
from typing import Any

from hitl import tenancy
from hitl.audit import Actor
from review import services as core
from review.comparison import services
from review.comparison.models import ComparisonItem
from review.models import QueueItem, ReviewQueue
from tests.factories import Tenant
from tests.review.helpers import make_queue

_n = itertools.count(1)


def make_comparison_queue(
    tenant: Tenant,
    *,
    criteria: tuple[str, ...] = ("helpfulness",),
    reviewers: list | None = None,
    allow_strength: bool = False,
    n_way: str = "best",
    **fields: Any,
) -> ReviewQueue:
    queue = make_queue(tenant, configs=[], reviewers=reviewers, **fields)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.comparison_setup(
            actor=Actor(user=tenant.owner),
            queue=queue,
            criteria=[{"name": c, "question": f"Which is better for {c}?"} for c in criteria],
            allow_strength=allow_strength,
            n_way=n_way,
        )
    return queue


def make_comparison(
    tenant: Tenant, labels: tuple[str, ...] = ("baseline", "candidate"), **fields: Any
) -> ComparisonItem:
    n = next(_n)
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.comparison_item_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            input=fields.pop("input", {"question": f"question {n}"}),
            outputs=[
                services.OutputSpec(label=label, content=f"{label} answer {n}") for label in labels
            ],
            **fields,
        )


def enqueue(tenant: Tenant, queue: ReviewQueue, comparisons: list[ComparisonItem]) -> list:
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.comparison_items_enqueue(
            actor=Actor(user=tenant.owner), queue=queue, comparison_ids=[c.pk for c in comparisons]
        )


def claim(tenant: Tenant, user, queue: ReviewQueue):
    with tenancy.tenant_scope(tenant.organization.pk):
        return core.queue_claim_next(actor=Actor(user=user), queue=queue)


def submit(tenant: Tenant, user, assignment, answers: dict, **extra: Any):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.comparison_submit(
            actor=Actor(user=user), assignment_id=assignment.pk, answers=answers, **extra
        )


def item_of(tenant: Tenant, assignment) -> QueueItem:
    with tenancy.tenant_scope(tenant.organization.pk):
        return QueueItem.objects.get(pk=assignment.item_id)


def comparison_rows(tenant: Tenant) -> list[str]:
    """A comparison queue with a reviewed comparison item (for the isolation and admin
    walkers); returns the marker strings that must not leak."""
    slug = tenant.organization.slug
    queue = make_comparison_queue(
        tenant, criteria=(f"criterion-only-{slug}",), name=f"comparison-queue-{slug}"
    )
    comparison = make_comparison(
        tenant, input={"question": f"comparison-only-{slug}"}, group_key=f"group-only-{slug}"
    )
    enqueue(tenant, queue, [comparison])
    lease = claim(tenant, tenant.reviewer, queue)
    submit(tenant, tenant.reviewer, lease, {f"criterion-only-{slug}": {"choice": "a"}})
    return [f"comparison-only-{slug}", f"group-only-{slug}", f"criterion-only-{slug}"]


def disputed_comparison(tenant: Tenant) -> tuple[ReviewQueue, QueueItem, dict[str, int], list]:
    """A comparison queue (helpfulness, safety; the admin its senior) whose one item two
    reviewers split on: helpfulness one each way, safety both the candidate. Returns
    the queue, the disputed item, the output ids by system and the two reviewers."""
    from review.comparison.models import ComparisonOutput
    from review.comparison.ordering import shown_order
    from tests.review.helpers import add_reviewers

    first, second = add_reviewers(tenant, 2)
    queue = make_comparison_queue(
        tenant,
        criteria=("helpfulness", "safety"),
        reviewers=[first, second, tenant.admin],
        seniors=(tenant.admin,),
        overlap=2,
        name="A/B",
    )
    comparison = make_comparison(tenant, input={"question": "Max dose in cirrhosis?"})
    enqueue(tenant, queue, [comparison])
    with tenancy.tenant_scope(tenant.organization.pk):
        outputs = ComparisonOutput.objects.filter(comparison=comparison)
        by_label = {o.label: o.pk for o in outputs}
    for user, helpful in ((first, "baseline"), (second, "candidate")):
        lease = claim(tenant, user, queue)
        order = shown_order(lease.pk, comparison.pk, list(by_label.values()))
        letter = {pk: "ab"[i] for i, pk in enumerate(order)}
        answers = {
            "helpfulness": {"choice": letter[by_label[helpful]]},
            "safety": {"choice": letter[by_label["candidate"]]},
        }
        submit(tenant, user, lease, answers)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = QueueItem.objects.get(queue=queue)
    return queue, item, by_label, [first, second]
