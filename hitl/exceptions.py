"""Errors raised by services; the API turns them into the one error shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.db import IntegrityError
from django.db.models import F, Model, ProtectedError, RestrictedError, UniqueConstraint


class DomainError(Exception):
    """A refused operation, phrased for the caller."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Gone(DomainError):
    status_code = 410
    code = "gone"


# --- unique violations ---------------------------------------------------------------------

UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE for a duplicate key
# Columns that place a row in its tenant; a caller never sends them, so a conflict is
# reported on the other columns of the key.
_SCOPE_FIELDS = frozenset({"organization", "project"})
_KEY_COLUMNS = re.compile(r"Key \((?P<columns>.+?)\)=\(")


def conflict_from_integrity_error(
    exc: IntegrityError, *, code: str | None = None
) -> Conflict | None:
    """The ``Conflict`` a unique violation means, naming the model and the fields of the
    key that was taken; None for any other integrity error (those stay server errors).

    One rule for every write: two requests racing for the same name both pass the
    friendly "is it taken?" check, the database refuses the second insert, and the
    caller hears 409 with the field, not 500."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) != UNIQUE_VIOLATION:
        return None
    diag = cause.diag
    model = _model_for_table(diag.table_name or "")
    fields = _key_fields(model, diag.constraint_name or "", diag.message_detail or "")
    named = [f for f in fields if f not in _SCOPE_FIELDS] or fields or ["value"]
    what = model._meta.verbose_name if model is not None else "record"
    article = "An" if what[:1].lower() in "aeiou" else "A"
    return Conflict(
        f"{article} {what} with this {' and '.join(named)} already exists.",
        code=code,
        details={name: ["taken"] for name in named},
    )


@contextmanager
def conflict_on_duplicate(*, code: str | None = None) -> Iterator[None]:
    """Runs the block; a unique violation inside it becomes ``Conflict`` (409).

    Wrap it around the service's ``transaction.atomic()`` so the transaction (or
    savepoint) is rolled back before the conflict is raised."""
    try:
        yield
    except IntegrityError as exc:
        conflict = conflict_from_integrity_error(exc, code=code)
        if conflict is None:
            raise
        raise conflict from exc


# --- deletes refused by PROTECT / RESTRICT references -----------------------------------------


def conflict_from_protected(exc: ProtectedError | RestrictedError) -> Conflict:
    """The ``Conflict`` a delete refused by a PROTECT or RESTRICT reference means: what
    still points at the object, counted by kind (the kept records are the audit trail:
    reviews, a dataset item's provenance), so the caller hears 409 with the reason."""
    counts: dict[str, int] = {}
    for obj in exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects:
        name = str(obj._meta.verbose_name_plural)
        counts[name] = counts.get(name, 0) + 1
    kept = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return Conflict(
        f"It cannot be deleted while records that must be kept point at it ({kept}).",
        code="protected",
        details={"protected": counts},
    )


@contextmanager
def conflict_on_protected() -> Iterator[None]:
    """Runs the block; a delete refused by a PROTECT/RESTRICT reference becomes
    ``Conflict`` (409). Wrap it around the service's ``transaction.atomic()``."""
    try:
        yield
    except (ProtectedError, RestrictedError) as exc:
        raise conflict_from_protected(exc) from exc


def _model_for_table(table: str) -> type[Model] | None:
    for model in apps.get_models():
        if model._meta.db_table == table:
            return model
    return None


def _key_fields(model: type[Model] | None, constraint_name: str, detail: str) -> list[str]:
    if model is None:
        return []
    for constraint in model._meta.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.name == constraint_name:
            if constraint.fields:
                return list(constraint.fields)
            return [name for expression in constraint.expressions for name in _names(expression)]
    # A field declared unique=True: its constraint name is generated, so read the
    # columns from PostgreSQL's detail ("Key (slug)=(acme) already exists.").
    match = _KEY_COLUMNS.search(detail)
    columns = {c.strip() for c in match["columns"].split(",")} if match else set()
    return [f.name for f in model._meta.concrete_fields if f.column in columns]


def _names(expression: Any) -> Iterator[str]:
    """The field names an expression of a functional unique constraint reads
    (``Lower("email")`` reads ``email``)."""
    if isinstance(expression, F):
        yield expression.name
        return
    for source in getattr(expression, "get_source_expressions", list)():
        yield from _names(source)
