"""Who did it: the acting user or API key, recorded on every history row.

Services run inside :func:`acting_as`. django-simple-history reads the user through
:func:`history_user`, and :func:`connect_signals` stamps the API key, the source and the
request id (``hitl.middleware``'s ``X-Request-Id``) on each historical row. Bulk writes
go through :func:`bulk_create_with_history` and :func:`bulk_update_with_history`, which
record the same fields, and writers that use set-based SQL copy the rows they wrote into
the history table with :func:`bulk_record_from_table`, so no write path escapes the
audit trail. Hot paths insert new rows with :func:`insert_recorded`, which records them
the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils.functional import cached_property
from simple_history import utils as history_utils
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from hitl import history as _history
from hitl import sql_rows
from hitl.request_context import current_request_id

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Actor:
    """The person or machine behind a write."""

    user: AbstractBaseUser | None = None
    api_key_id: int | None = None
    api_key_prefix: str = ""
    source: str = "web"  # web, api, task, command

    @classmethod
    def system(cls, source: str = "task") -> Actor:
        return cls(source=source)


_current_actor: ContextVar[Actor | None] = ContextVar("hitl_current_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _current_actor.set(actor)
    try:
        yield actor
    finally:
        _current_actor.reset(token)


def current_actor() -> Actor | None:
    return _current_actor.get()


class HistoricalActorFields(models.Model):
    """Extra columns on every historical table: which key, from where."""

    history_api_key_id = models.BigIntegerField(null=True, blank=True)
    history_api_key_prefix = models.CharField(max_length=32, blank=True, default="")
    history_source = models.CharField(max_length=16, blank=True, default="")
    # The request that wrote the row (its X-Request-Id, as in the logs); empty outside one.
    history_request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        abstract = True


def history_user(instance: Any, request: Any = None, **kwargs: Any) -> Any:
    """simple-history ``get_user`` hook: the actor in context, else the request user."""
    actor = _current_actor.get()
    if actor is not None:
        return actor.user
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _actor_columns() -> dict[str, Any]:
    request_id = current_request_id()
    # "-" is the request id outside a request (a task, a command).
    columns = {"history_request_id": "" if request_id == "-" else request_id}
    actor = _current_actor.get()
    if actor is None:
        return {**columns, "history_source": "system"}
    return {
        **columns,
        "history_api_key_id": actor.api_key_id,
        "history_api_key_prefix": actor.api_key_prefix,
        "history_source": actor.source,
    }


def _stamp_actor(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    for name, value in _actor_columns().items():
        if hasattr(history_instance, name):
            setattr(history_instance, name, value)


def connect_signals() -> None:
    pre_create_historical_record.connect(_stamp_actor, dispatch_uid="hitl_stamp_actor")


def bulk_create_with_history(
    objs: Sequence[models.Model], model: type[models.Model], **kwargs: Any
) -> list[models.Model]:
    actor = _current_actor.get()
    return history_utils.bulk_create_with_history(
        objs,
        model,
        default_user=actor.user if actor else None,
        custom_historical_attrs=_actor_columns(),
        **kwargs,
    )


def bulk_update_with_history(
    objs: Iterable[models.Model], model: type[models.Model], fields: list[str], **kwargs: Any
) -> int:
    actor = _current_actor.get()
    return history_utils.bulk_update_with_history(
        list(objs),
        model,
        fields,
        default_user=actor.user if actor else None,
        custom_historical_attrs=_actor_columns(),
        **kwargs,
    )


def bulk_record_created(objs: Sequence[models.Model], model: type[models.Model]) -> None:
    """Creation history ("+") for rows inserted outside the ORM, such as
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, with the same actor columns."""
    actor = _current_actor.get()
    history_utils.get_history_manager_for_model(model).bulk_history_create(
        list(objs),
        default_user=actor.user if actor else None,
        custom_historical_attrs=_actor_columns(),
    )


def insert_recorded(objs: Sequence[models.Model]) -> None:
    """Inserts new rows of one model, each by its ``save()`` (with every check that
    makes), and records their creation ("+") in one statement that copies them from
    the table (:func:`bulk_record_from_table`): the history rows django-simple-history
    would write, with the acting user, key and source, for a fraction of its Python (it
    builds and inserts each history row through the ORM; a submit writes three:
    ``bench/README.md``, "Review queue claims"). Outside :func:`acting_as` each row is
    saved with django-simple-history's own record, which then names the request's user.
    """
    if not objs:
        return
    if _current_actor.get() is None:
        for obj in objs:
            obj.save(force_insert=True)
        return
    (model,) = {type(obj) for obj in objs}
    for obj in objs:
        obj.save_without_historical_record(force_insert=True)
    bulk_record_from_table(model, [obj.pk for obj in objs], "+")


def bulk_record_from_table(
    model: type[models.Model], ids: Sequence[int], history_type: str, *, date: Any = None
) -> int:
    """History rows for rows written by set-based SQL (``INSERT ... SELECT FROM
    unnest``, ``UPDATE ... FROM unnest``): one ``INSERT ... SELECT`` copies each row of
    ``ids`` as it now is in the model's table into its history table, with the acting
    user, API key and source, the rows django-simple-history writes on ``save()``
    (``history_type`` "+" created, "~" changed, "-" before a delete). Tenant-owned rows
    are copied only from the organization in scope (raises outside a single scope).
    Returns the number of history rows written."""
    from django.utils import timezone

    from hitl import tenancy

    if not ids:
        return 0
    sql, filled, tenant_owned = _copy_statement(model)
    actor = _current_actor.get()
    values: dict[str, Any] = {
        "history_date": date or timezone.now(),
        "history_change_reason": None,
        "history_type": history_type,
        "history_user_id": getattr(actor.user, "pk", None) if actor else None,
        **_actor_columns(),
    }
    params = [values.get(field.column, field.get_default()) for field in filled]
    params.append(list(ids))
    if tenant_owned:
        params.append(tenancy.current_organization_id())
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@functools.cache
def _copy_statement(model: type[models.Model]) -> tuple[str, tuple[models.Field, ...], bool]:
    """:func:`bulk_record_from_table`'s statement for ``model``, built once: the SQL,
    the history fields the table has no column for (the statement takes a parameter for
    each, in order: the actor's, or the field's default) and whether rows are
    tenant-owned."""
    from django.db import connection

    history_model = history_utils.get_history_manager_for_model(model).model
    table_columns = {f.column for f in model._meta.concrete_fields}
    quote = connection.ops.quote_name
    columns, selected, filled = [], [], []
    for item in history_model._meta.concrete_fields:
        if item.primary_key:  # history_id
            continue
        columns.append(quote(item.column))
        if item.column in table_columns:
            selected.append(f"t.{quote(item.column)}")
        else:
            selected.append(f"CAST(%s AS {item.db_type(connection)})")
            filled.append(item)
    pk = model._meta.pk
    where = f"t.{quote(pk.column)} = ANY(CAST(%s AS {pk.db_type(connection)}[]))"
    tenant_owned = "organization_id" in table_columns
    if tenant_owned:
        where += " AND t.organization_id = %s"
    sql = (
        f"INSERT INTO {quote(history_model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(selected)} FROM {quote(model._meta.db_table)} t WHERE {where} "
        f"ORDER BY t.{quote(pk.column)}"
    )
    return sql, tuple(filled), tenant_owned


class _HistoryDescriptor(HistoryDescriptor):
    """django-simple-history's ``Model.history``, its manager class built once: upstream
    builds a new class (``Manager.from_queryset``, an ``inspect.getmembers`` walk) on
    every access, and every history row written asks for it (0.1 ms each, a tenth of
    writing the row: ``bench/README.md``, "Review queue claims")."""

    @cached_property
    def _manager_class(self) -> type:
        return self.manager_class.from_queryset(self.queryset_class)

    def __get__(self, instance: Any, owner: Any) -> Any:
        return self._manager_class(self.model, instance)


class _HistoricalRecords(HistoricalRecords):
    def finalize(self, sender: Any, **kwargs: Any) -> None:
        super().finalize(sender, **kwargs)
        built = sender.__dict__.get(self.manager_name)
        if type(built) is HistoryDescriptor:  # registered on this model just now
            setattr(
                sender,
                self.manager_name,
                _HistoryDescriptor(
                    built.model, manager=built.manager_class, queryset=built.queryset_class
                ),
            )


def history(**kwargs: Any) -> HistoricalRecords:
    """Edit history for a model, with the acting user, API key and source on every row."""
    return _HistoricalRecords(bases=[HistoricalActorFields], get_user=history_user, **kwargs)


def history_entries(records: Any, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every version in ``records``, newest first, as the admin, the pages and the API
    read it (:func:`hitl.history.history_entries`)."""
    return _history.history_entries(records, limit=limit)


def history_for_display(records: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """:func:`history_entries` as a page shows it: the newest ``limit`` versions."""
    return _history.history_entries(records, limit=limit)
