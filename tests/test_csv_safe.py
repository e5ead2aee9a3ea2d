"""hitl.csv_safe: the one writer of every CSV file we produce (OWASP "CSV Injection"),
and a guard that no module writes CSV around it."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from hitl import csv_safe
from tests.csv_checks import HOSTILE, assert_runs_nothing, read_csv

ROOT = Path(__file__).resolve().parents[1]
APPS = ("hitl", "projects", "traces", "review", "datasets")


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_text_is_written_inert_and_read_back_exact(text):
    buffer = io.StringIO(newline="")
    out = csv_safe.writer(buffer)
    out.writerow(["id", "text"])
    out.writerow(["row-1", text])
    records = assert_runs_nothing(buffer.getvalue())
    cell = records[1][1]
    assert csv_safe.unescape_cell(cell) == text
    if text[:1] in csv_safe.FORMULA_STARTS:
        assert cell == "'" + text


def test_every_cell_is_quoted_and_numbers_stay_numbers():
    buffer = io.StringIO(newline="")
    csv_safe.writer(buffer).writerow([-0.5, -3, Decimal("-1.25"), "-0.5", None, True, "ok"])
    assert buffer.getvalue() == '"-0.5","-3","-1.25","\'-0.5","","True","ok"\r\n'


def test_dict_writer_neutralises_the_header_too():
    text = csv_safe.rows_text([{"=name": "@x", "n": -1, "extra": "dropped"}], ["=name", "n"])
    assert read_csv(text) == [["'=name", "n"], ["'@x", "-1"]]


def test_unescape_is_the_inverse_of_safe_cell_for_every_text():
    starts = ["", "'", "''", "a", *sorted(csv_safe.FORMULA_STARTS)]
    samples = {a + b + "x" for a in starts for b in starts} | {
        a + b for a in starts for b in starts
    }
    for text in samples:
        assert csv_safe.unescape_cell(csv_safe.safe_cell(text)) == text, repr(text)
    # Text nobody escaped passes unchanged unless it is quote(s) before a formula start.
    assert csv_safe.unescape_cell("'tis") == "'tis"
    assert csv_safe.unescape_cell("'") == "'"


def test_non_text_values_are_written_as_their_text():
    class Label:
        def __str__(self) -> str:
            return "=evil()"

    assert csv_safe.safe_cell(Label()) == "'=evil()"
    assert csv_safe.safe_row([None, 1, 2.5, "-"]) == [None, 1, 2.5, "'-"]


# --- guard: every CSV writer goes through hitl.csv_safe ------------------------------------

_RAW_WRITER = re.compile(
    r"\bcsv\s*\.\s*(writer|DictWriter)\s*\(|from\s+csv\s+import\b[^\n]*\b(writer|DictWriter)\b"
)


def test_no_module_writes_csv_but_through_csv_safe():
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if path == ROOT / "hitl" / "csv_safe.py" or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if _RAW_WRITER.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, (
        "Write CSV with hitl.csv_safe.writer()/dict_writer()/rows_text(), which neutralise "
        "formula cells:\n" + "\n".join(offenders)
    )


def test_the_guard_sees_a_raw_writer():
    assert _RAW_WRITER.search("    out = csv.writer(stream)")
    assert _RAW_WRITER.search("w = csv.DictWriter(buffer, fieldnames=cols)")
    assert _RAW_WRITER.search("from csv import DictWriter")
    assert not _RAW_WRITER.search("reader = csv.reader(text)")
