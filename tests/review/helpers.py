"""Builders for review tests: traces, configs and queues through the services."""

from __future__ import annotations

import itertools
from typing import Any

from hitl import tenancy
from hitl.audit import Actor
from projects.models import Membership, Role
from review import services
from review.models import ReviewQueue, RoutingRule, ScoreConfig
from tests.factories import Tenant, add_member, make_user
from traces.models import Span, Trace

_n = itertools.count(1)

RUBRIC = [
    {"label": "Bad", "definition": "Wrong or unsafe.", "examples": ["Cites a fake statute."]},
    {"label": "Good", "definition": "Correct and complete.", "examples": ["Right dosage."]},
]


def make_trace(tenant: Tenant, **fields: Any) -> Trace:
    with tenancy.tenant_scope(tenant.organization.pk):
        n = next(_n)
        return Trace.objects.create(
            project=tenant.project,
            external_id=fields.pop("external_id", f"trace-{n}"),
            name=fields.pop("name", f"run {n}"),
            **fields,
        )


def make_span(trace: Trace, **fields: Any) -> Span:
    with tenancy.tenant_scope(trace.organization_id):
        return Span.objects.create(
            project_id=trace.project_id,
            trace=trace,
            external_id=fields.pop("external_id", f"span-{next(_n)}"),
            **fields,
        )


def make_config(tenant: Tenant, **fields: Any) -> ScoreConfig:
    defaults: dict[str, Any] = {
        "name": f"accuracy-{next(_n)}",
        "data_type": "numeric",
        "min_value": 0.0,
        "max_value": 1.0,
        "step": 0.25,
        "rubric": RUBRIC,
    }
    defaults.update(fields)
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.score_config_create(
            actor=Actor(user=tenant.owner), project=tenant.project, **defaults
        )


def membership_of(tenant: Tenant, user) -> Membership:
    with tenancy.tenant_scope(tenant.organization.pk):
        return Membership.objects.get(user=user)


def add_reviewers(tenant: Tenant, count: int) -> list:
    users = [make_user() for _ in range(count)]
    for user in users:
        add_member(tenant.organization, user, Role.REVIEWER)
    return users


def _form_entry(config: ScoreConfig, tolerance: float | None) -> dict[str, Any]:
    """A form question; ``tolerance`` is the numeric spread or the categorical dissent
    share tolerated (None: the default, any disagreement adjudicates)."""
    if tolerance is None:
        return {"config_id": config.pk}
    name = "numeric_tolerance" if config.data_type == "numeric" else "max_dissent_share"
    return {"config_id": config.pk, name: tolerance}


def make_queue(
    tenant: Tenant,
    *,
    configs: list[ScoreConfig] | None = None,
    reviewers: list | None = None,
    thresholds: dict[int, float] | None = None,
    seniors: tuple = (),
    **fields: Any,
) -> ReviewQueue:
    configs = configs if configs is not None else [make_config(tenant)]
    reviewers = reviewers if reviewers is not None else [tenant.reviewer]
    thresholds = thresholds or {}
    fields.setdefault("name", f"queue-{next(_n)}")
    with tenancy.tenant_scope(tenant.organization.pk):
        pool = [
            {
                "membership_id": Membership.objects.get(user=user).pk,
                "is_senior": user in seniors,
                **(
                    {"skills": fields.pop(f"skills_{user.pk}")}
                    if f"skills_{user.pk}" in fields
                    else {}
                ),
            }
            for user in reviewers
        ]
        return services.queue_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            form=[_form_entry(c, thresholds.get(c.pk)) for c in configs],
            reviewers=pool,
            **fields,
        )


def add_traces(tenant: Tenant, queue: ReviewQueue, count: int) -> list:
    items = []
    with tenancy.tenant_scope(tenant.organization.pk):
        for _ in range(count):
            trace = make_trace(tenant)
            items.append(
                services.queue_item_add(
                    actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
                )
            )
    return items


def make_rule(tenant: Tenant, queue: ReviewQueue, **fields: Any) -> RoutingRule:
    """A routing rule of ``queue`` made by the owner: errors, everything sampled."""
    data = {"name": "Errors", "signal": "error", "filter_params": {"status": "error"}}
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            **(data | fields),
        )
