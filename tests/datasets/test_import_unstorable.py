"""Imports refuse, line by line, what PostgreSQL cannot store (hitl.text): a NUL escape
in JSONL, a raw NUL byte in a CSV cell, a lone surrogate; and an item over the per-item
size limit. The other lines land."""

from __future__ import annotations

import io

from datasets import services
from datasets.models import DatasetItem
from hitl import tenancy
from hitl.audit import Actor
from tests.datasets.helpers import make_dataset


def _import(tenant, dataset, data: bytes, file_format: str):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.dataset_import(
            actor=Actor(user=tenant.owner),
            dataset=dataset,
            stream=io.BytesIO(data),
            file_format=file_format,
        )


def _keys(tenant, dataset) -> list[str]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return sorted(DatasetItem.objects.filter(dataset=dataset).values_list("key", flat=True))


def test_jsonl_lines_with_nul_or_a_lone_surrogate_are_refused_alone(tenant):
    dataset = make_dataset(tenant)
    data = b"\n".join(
        [
            b'{"id": "a", "input": {"q": "fine"}}',
            b'{"id": "b", "input": {"q": "x\\u0000y"}}',
            b'{"id": "c", "input": {"q": "x\\ud800y"}}',
            b'{"id": "d", "input": {"q\\u0000": 1}}',
            b'{"id": "e", "input": {"q": "also fine"}}',
        ]
    )
    report = _import(tenant, dataset, data, "jsonl")
    reasons = {e["line"]: e["reason"] for e in report.errors}
    assert sorted(reasons) == [2, 3, 4]
    assert reasons[2].startswith("input.q: NUL")
    assert "not valid JSON" in reasons[3] or "surrogate" in reasons[3]
    assert reasons[4].startswith("input: A key: NUL")
    assert report.created == 2
    assert _keys(tenant, dataset) == ["a", "e"]


def test_a_csv_cell_with_a_raw_nul_byte_refuses_its_row(tenant):
    dataset = make_dataset(tenant)
    data = b'id,input\nok,"{""q"": 1}"\nbad,"x\x00y"\nok2,"{""q"": 2}"\n'
    report = _import(tenant, dataset, data, "csv")
    assert [(e["line"], e["reason"].split(":")[0]) for e in report.errors] == [(3, "input")]
    assert "NUL" in report.errors[0]["reason"]
    assert _keys(tenant, dataset) == ["ok", "ok2"]


def test_an_item_over_the_size_limit_is_refused_alone(tenant):
    from datasets.services.imports import MAX_ITEM_BYTES

    dataset = make_dataset(tenant)
    big = "x" * MAX_ITEM_BYTES
    jsonl = (
        b'{"id": "big", "input": {"q": "%s"}}\n{"id": "small", "input": {"q": 1}}' % big.encode()
    )
    report = _import(tenant, dataset, jsonl, "jsonl")
    assert [e["line"] for e in report.errors] == [1]
    assert f"over the limit of {MAX_ITEM_BYTES} bytes per item" in report.errors[0]["reason"]
    csv_data = b'id,input\nbig,"%s"\nsmall,1\n' % big.encode()
    report = _import(tenant, make_dataset(tenant, name="csv"), csv_data, "csv")
    assert [e["line"] for e in report.errors] == [2]
    assert "bytes per item" in report.errors[0]["reason"]
    assert _keys(tenant, dataset) == ["small"]
