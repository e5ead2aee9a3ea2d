"""The dataset CSV export runs nothing in a spreadsheet (``hitl.csv_safe``), and what
it writes imports back exact."""

from __future__ import annotations

import io

from datasets import services
from datasets.content import COLUMNS
from datasets.models import DatasetItem, DatasetVersion
from hitl import tenancy
from hitl.audit import Actor
from tests.csv_checks import HOSTILE, assert_runs_nothing
from tests.datasets.helpers import import_rows, make_dataset

TEXT_COLUMNS = ("id", "expected_outcome", "failure_reason", "explanation")
COMPARED = ("input", "expected_output", "expected_outcome", "metadata", "tags",
            "failure_reason", "failure_modes", "explanation")  # fmt: skip

ROWS = [
    {
        "id": text,
        "input": {"q": text},
        "expected_output": text,
        "expected_outcome": text,
        "metadata": {"note": text},
        "tags": [text],
        "failure_reason": text,
        "failure_modes": [text],
        "explanation": text,
    }
    for text in HOSTILE
] + [
    # JSON numbers and a JSON string: JSON text that starts with "-" is prefixed too.
    {"id": "numbers", "input": -3, "expected_output": -0.5, "metadata": {"n": -1}},
    {"id": "json text", "input": "=1+1", "expected_output": ["-x"], "explanation": "-"},
]


def _items(tenant, dataset) -> dict[str, dict]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return {
            item.key: {name: getattr(item, name) for name in COMPARED}
            for item in DatasetItem.objects.filter(dataset=dataset)
        }


def _export_csv(tenant, dataset) -> str:
    out = io.BytesIO()
    with tenancy.tenant_scope(tenant.organization.pk):
        version = DatasetVersion.objects.get(dataset=dataset, number=dataset.current_version or 1)
        services.export_version(version, "csv", out)
    return out.getvalue().decode("utf-8")


def test_formula_cells_are_neutralised_and_their_text_kept(tenant):
    dataset = make_dataset(tenant)
    report = import_rows(tenant, dataset, ROWS)
    assert report.created == len(ROWS), report.errors
    records = assert_runs_nothing(_export_csv(tenant, dataset))
    header, rows = records[0], records[1:]
    assert header[: len(COLUMNS)] == list(COLUMNS)
    by_id = {}
    for record in rows:
        cells = dict(zip(header, record, strict=True))
        by_id[cells["id"]] = cells
    for text in HOSTILE:
        # One quote before a formula start, or before quotes that precede one.
        written = "'" + text if text.lstrip("'")[:1] in "=+-@\t\r" else text
        cells = by_id[written]  # the id column is neutralised too
        for column in TEXT_COLUMNS:
            assert cells[column] == written, (column, text)
    numbers = by_id["numbers"]
    assert (numbers["input"], numbers["expected_output"]) == ("'-3", "'-0.5")
    assert by_id["json text"]["input"] == '"=1+1"'  # JSON text: starts with a quote mark
    assert by_id["json text"]["explanation"] == "'-"


def test_an_exported_csv_imports_back_exact(tenant):
    source = make_dataset(tenant)
    import_rows(tenant, source, ROWS)
    exported = _export_csv(tenant, source).encode("utf-8")
    copy = make_dataset(tenant, name="copy")
    with tenancy.tenant_scope(tenant.organization.pk):
        report = services.dataset_import(
            actor=Actor(user=tenant.owner),
            dataset=copy,
            stream=io.BytesIO(exported),
            file_format="csv",
        )
    assert report.errors == [] and report.created == len(ROWS)
    original, back = _items(tenant, source), _items(tenant, copy)
    assert set(back) == {row["id"] for row in ROWS}
    assert back == original
    assert back["numbers"]["input"] == -3 and back["numbers"]["expected_output"] == -0.5


def test_a_hand_written_quote_is_kept_unless_a_formula_follows(tenant):
    dataset = make_dataset(tenant)
    data = b"id,input,failure_reason,explanation\na,1,'tis wrong,'=SUM(1)\nb,2,'',''-2\n"
    with tenancy.tenant_scope(tenant.organization.pk):
        services.dataset_import(
            actor=Actor(user=tenant.owner), dataset=dataset, stream=io.BytesIO(data),
            file_format="csv",
        )  # fmt: skip
    items = _items(tenant, dataset)
    assert items["a"]["failure_reason"] == "'tis wrong"
    assert items["a"]["explanation"] == "=SUM(1)"  # a spreadsheet's text marker, read off
    assert items["b"]["failure_reason"] == "''"
    assert items["b"]["explanation"] == "'-2"
