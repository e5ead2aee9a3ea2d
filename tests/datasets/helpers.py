"""Builders for datasets tests, through the services."""

from __future__ import annotations

import io
from typing import Any

import orjson

from datasets import services
from datasets.models import Dataset
from hitl import tenancy
from hitl.audit import Actor
from tests.factories import Tenant


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
