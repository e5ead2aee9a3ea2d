"""Hand-written SQL on hot paths: model rows read by it, and prepared statements.

A hot path whose statement has a fixed shape (a claim, the lock a submit takes) is
written once as SQL: on two cores, compiling an ORM query costs several times the Python
that running the SQL does (``bench/README.md``, "Review queue claims"). These helpers
keep such SQL in step with the models: :func:`columns` lists a model's every concrete
column from the model itself, and :func:`instance` builds the instance from those
columns of a row as the ORM would, through each field's own from-database conversion
(a JSON field decodes its text). :func:`prepared_cursor` runs such statements prepared
on the connection, so PostgreSQL parses and plans each once per connection rather than
on every call. The SQL still filters by the organization in scope itself
(``hitl.tenancy.scope_sql``): the tenant manager does not see it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]
# Per column that needs converting: its index in the row, its expression, converters.
Converting = tuple[tuple[int, Any, tuple[Converter, ...]], ...]


@cache
def _layout(model: type[Model]) -> tuple[tuple[str, ...], Converting]:
    """The model's attribute names in column order, and per column that needs one,
    its expression and converters (the ORM's ``get_converters``)."""
    fields = model._meta.concrete_fields
    converting = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        )
        if found:
            converting.append((index, expression, tuple(found)))
    return tuple(field.attname for field in fields), tuple(converting)


@cache
def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of ``model`` qualified by ``alias``, comma-separated, in the
    order :func:`instance` reads them."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


@cache
def statement(template: str, **aliased: tuple[type[Model], str]) -> str:
    """``template`` with each ``{name}`` given as ``name=(model, alias)`` replaced by
    that model's :func:`columns` under that alias: the SQL of a hot path, built once."""
    return template.format(**{name: columns(*model_alias) for name, model_alias in aliased.items()})


def width(model: type[Model]) -> int:
    """How many values of a row :func:`columns` selects for ``model``."""
    return len(model._meta.concrete_fields)


def instance(
    model: type[M], row: Sequence[Any], start: int = 0, *, using: str = DEFAULT_DB_ALIAS
) -> M:
    """``model``'s instance from ``row[start:start + width(model)]``, selected with
    :func:`columns`, as a saved row (``_state.adding`` false) read from the database
    ``using`` (an alias: a replica's, when the SQL ran on ``hitl.replica``'s
    ``read_connection()``)."""
    names, converting = _layout(model)
    values = list(row[start : start + len(names)])
    for index, expression, converters in converting:
        value = values[index]
        for convert in converters:
            value = convert(value, expression, connection)
        values[index] = value
    return model.from_db(using, names, values)


class _PreparingCursor(psycopg.Cursor):
    """Binds parameters on the server and prepares every statement it runs (psycopg
    keeps each connection's prepared statements, up to ``prepared_max``)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("prepare", True)
        return super().execute(query, params, **kwargs)


class _PreparedDebugCursor(CursorDebugWrapper):
    """Logs a prepared statement's run as Django logs a statement bound on the server:
    composed with its parameters (psycopg keeps no text of it on the cursor)."""

    def execute(self, sql: str, params: Any = None) -> Any:
        try:
            shown = self.db.ops.compose_sql(sql, params)
        except psycopg.DataError:
            shown = sql
        with self.debug_sql(shown, params):
            return CursorWrapper.execute(self, sql, params)


def prepared_cursor(database: BaseDatabaseWrapper | None = None) -> CursorWrapper:
    """A cursor of ``database`` (the primary by default) as ``connection.cursor()``
    gives one (the same error wrapping, query log and execute wrappers), whose
    statements are prepared on the connection: PostgreSQL parses each once per
    connection and, after five runs, reuses its plan when a generic plan costs no more
    (``hitl.settings`` lets psycopg prepare when asked). The statement's parameters are
    bound on the server, so each needs a type PostgreSQL can infer or a cast."""
    if database is None:
        database = connections[DEFAULT_DB_ALIAS]
    database.close_if_health_check_failed()
    database.ensure_connection()
    database.validate_thread_sharing()
    with database.wrap_database_errors:
        cursor = _PreparingCursor(database.connection)
    if database.queries_logged:
        return _PreparedDebugCursor(cursor, database)
    return database.make_cursor(cursor)
