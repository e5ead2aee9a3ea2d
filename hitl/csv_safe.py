"""Every CSV file the product writes, safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and some skip a leading tab or carriage
return before such a character ("CSV Injection", OWASP). Our CSV cells hold what
reviewers, API clients and traces wrote (a rubric's name, a failure reason, an id), so
each CSV writer of the product is built here, and writes every cell quoted
(``csv.QUOTE_ALL``) and a text cell that starts with one of those characters with a
single quote in front of it: the spreadsheet shows the text, and runs nothing.

Numbers (``int``, ``float``, ``Decimal``; not ``bool``) are written as they are: ``-0.5``
stays a number a spreadsheet can add up. Text is prefixed even when it looks like a
number (``"-5"``): the writer cannot tell a number from text that starts like one.

The quote comes off on the way back: ``unescape_cell`` is the inverse of
``safe_cell`` for every text. The quote is added to a text that is zero or more single
quotes followed by a dangerous character (``=x`` -> ``'=x``, ``'=x`` -> ``''=x``), and
``unescape_cell`` removes one from a cell that is one or more single quotes followed by
one (so a text such as ``'tis`` passes both ways unchanged). The dataset import applies
it, so an exported CSV imports back with its text exact.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

# OWASP's list: formula starts, and the tab and carriage return some programs skip.
FORMULA_STARTS = frozenset("=+-@\t\r")
PREFIX = "'"
_MAY_NEED = FORMULA_STARTS | {PREFIX}
_NEEDS_PREFIX = re.compile(r"'*[=+\-@\t\r]")
_PREFIXED = re.compile(r"'+[=+\-@\t\r]")
_NUMBERS = (int, float, Decimal)


class _Stream(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet shows as written: None and numbers as they
    are, anything else as text, with a single quote in front if it would start a
    formula."""
    kind = value.__class__
    if value is None or kind is int or kind is float:
        return value
    if kind is not str:
        if isinstance(value, _NUMBERS) and not isinstance(value, bool):
            return value
        value = str(value)
    if value[:1] in _MAY_NEED and _NEEDS_PREFIX.match(value):
        return PREFIX + value
    return value


_PLAIN = frozenset({int, float, type(None)})


def safe_row(
    row: Iterable[Any], _plain: frozenset = _PLAIN, _may: frozenset = _MAY_NEED
) -> list[Any]:
    """Each cell of ``row`` through ``safe_cell`` (the common cells, plain numbers and
    text that starts with none of the characters, pass without a call: a dataset
    export writes a million rows)."""
    return [
        value
        if value.__class__ in _plain or (value.__class__ is str and value[:1] not in _may)
        else safe_cell(value)
        for value in row
    ]


def unescape_cell(text: str) -> str:
    """The text ``safe_cell`` was given, from the cell it wrote (a cell read back from
    a CSV file)."""
    if text[:1] == PREFIX and _PREFIXED.match(text):
        return text[1:]
    return text


class SafeWriter:
    """``csv.writer``'s interface; every cell through ``safe_cell``, every cell
    quoted."""

    def __init__(self, stream: _Stream, **options: Any) -> None:
        options.setdefault("quoting", csv.QUOTE_ALL)
        self._writer = csv.writer(stream, **options)

    @property
    def dialect(self) -> Any:
        return self._writer.dialect

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows(map(safe_row, rows))


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` writing through ``SafeWriter`` (the header too)."""

    def __init__(
        self,
        stream: _Stream,
        fieldnames: Collection[str],
        restval: Any = "",
        extrasaction: str = "raise",
        **options: Any,
    ) -> None:
        super().__init__(stream, fieldnames, restval, extrasaction)
        self.writer = SafeWriter(stream, **options)


def writer(stream: _Stream, **options: Any) -> SafeWriter:
    """A ``csv.writer`` for a CSV the product writes (see the module)."""
    return SafeWriter(stream, **options)


def dict_writer(stream: _Stream, fieldnames: Collection[str], **options: Any) -> SafeDictWriter:
    """A ``csv.DictWriter`` for a CSV the product writes (see the module)."""
    return SafeDictWriter(stream, fieldnames, **options)


def rows_text(rows: Iterable[Mapping[str, Any]], columns: Collection[str]) -> str:
    """Rows as the text of a CSV file with a header, through ``dict_writer``; keys
    outside ``columns`` are left out."""
    buffer = io.StringIO()
    out = dict_writer(buffer, fieldnames=columns, extrasaction="ignore")
    out.writeheader()
    out.writerows(rows)
    return buffer.getvalue()
