"""Builders for datasets tests, through the services."""

from __future__ import annotations

import io
from typing import Any

import orjson

from datasets import services
from datasets.models import Dataset
from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from tests.factories import Tenant
from tests.review.helpers import add_reviewers, make_config, make_queue, make_trace


def make_dataset(tenant: Tenant, **fields: Any) -> Dataset:
    fields.setdefault("name", "golden set")
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.dataset_create(
            actor=Actor(user=tenant.owner), project=tenant.project, **fields
        )


def jsonl(rows: list[Any]) -> io.BytesIO:
    return io.BytesIO(b"".join(orjson.dumps(row) + b"\n" for row in rows))


def import_rows(tenant: Tenant, dataset: Dataset, rows: list[dict[str, Any]], **kwargs: Any):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.dataset_import(
            actor=Actor(user=tenant.owner),
            dataset=dataset,
            stream=jsonl(rows),
            file_format="jsonl",
            **kwargs,
        )


def make_reviewed_item(tenant: Tenant, *, disagree: bool) -> tuple[Any, Any, tuple[Any, Any]]:
    """A trace reviewed by two reviewers (and adjudicated when they disagree)."""
    accuracy = make_config(tenant, name="accuracy")
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, configs=[accuracy], reviewers=[first, second, tenant.admin],
        seniors=(tenant.admin,), overlap=2, name="clinical answers",
    )  # fmt: skip
    trace = make_trace(
        tenant, external_id="consult-7", input={"q": "dose of amoxicillin?"}, output={"a": "20 g"}
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        answers = [(first, 0.0, {"a": "2 g"}), (second, 0.75 if disagree else 0.0, {"a": "2 g"})]
        for reviewer, value, expected in answers:
            lease = review_services.queue_claim_next(actor=Actor(user=reviewer), queue=queue)
            review_services.assignment_submit(
                actor=Actor(user=reviewer),
                assignment_id=lease.pk,
                values={str(accuracy.pk): value},
                explanation=f"{reviewer.email} says 20 g is a tenfold overdose",
                expected_output=expected,
                failure_modes=["wrong_dose"],
            )
        item.refresh_from_db()
        if disagree:
            review_services.item_adjudicate(
                actor=Actor(user=tenant.admin),
                item=item,
                membership=tenant.admin.memberships.get(),
                values={str(accuracy.pk): 0.0},
                explanation="Overdose: fails.",
                expected_output={"a": "2 g, every 8 hours"},
            )
            item.refresh_from_db()
    return item, trace, (first, second)


def expected_config(tenant: Tenant, **fields: Any):
    """A text question that writes a dataset item's expected output."""
    fields.setdefault("name", "expected answer")
    return make_config(
        tenant,
        data_type="text",
        min_value=None,
        max_value=None,
        step=None,
        target="dataset_item",
        writes_expected_output=True,
        **fields,
    )
