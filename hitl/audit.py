"""Who did it: the acting user or API key, recorded on every history row.

Services run inside :func:`acting_as`. django-simple-history reads the user through
:func:`history_user`, and :func:`connect_signals` stamps the API key and the source on
each historical row. Bulk writes go through :func:`bulk_create_with_history` and
:func:`bulk_update_with_history`, which record the same fields, so no write path
escapes the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models
from simple_history import utils as history_utils
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

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
    actor = _current_actor.get()
    if actor is None:
        return {"history_source": "system"}
    return {
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


def history(**kwargs: Any) -> HistoricalRecords:
    """Edit history for a model, with the acting user, API key and source on every row."""
    return HistoricalRecords(bases=[HistoricalActorFields], get_user=history_user, **kwargs)


def history_for_display(
    records: Any, *, key_labels: dict[str, dict[str, str]] | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """A record's edit history for a page, newest first: when, who (user or API key, and
    the source), what kind of change, and one line per changed field, related objects
    named (one query per related model) and JSON dicts shown entry by entry
    (``key_labels``: field name -> {key: label}, e.g. config ids -> question names).

    ``records`` is a history queryset (``obj.history.all()``); read inside the tenant
    scope, so related names come through the scoped managers."""
    rows = list(
        records.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1]
    )
    key_labels = key_labels or {}
    if not rows:
        return []
    historical = type(rows[0])
    pk_name = historical.instance_type._meta.pk.attname
    foreign_keys = {
        f.name: f
        for f in historical.instance_type._meta.concrete_fields
        if isinstance(f, models.ForeignKey) and f.name not in ("organization", "project")
    }
    raw: list[tuple[Any, list[tuple[str, Any, Any, bool]]]] = []
    wanted: dict[type[models.Model], set[Any]] = {}
    for index, record in enumerate(rows[:limit]):
        # The version before this one of the same row (a queryset may hold several rows).
        previous = next(
            (r for r in rows[index + 1 :] if getattr(r, pk_name) == getattr(record, pk_name)),
            None,
        )
        if previous is None or record.history_type == "-":
            # Created (or deleted): name what it points at.
            changes: list[tuple[str, Any, Any, bool]] = [
                (name, None, getattr(record, f.attname), True)
                for name, f in foreign_keys.items()
                if getattr(record, f.attname, None) is not None
            ]
        else:
            delta = record.diff_against(previous)
            changes = [(c.field, c.old, c.new, False) for c in delta.changes]
        for name, old, new, _created in changes:
            if name in foreign_keys:
                related = foreign_keys[name].related_model
                wanted.setdefault(related, set()).update(v for v in (old, new) if v is not None)
        raw.append((record, changes))
    names = {
        model: {row.pk: str(row) for row in model._default_manager.filter(pk__in=pks)}
        for model, pks in wanted.items()
    }
    entries = []
    for record, changes in raw:
        lines = []
        for name, old, new, created in changes:
            title = str(historical.instance_type._meta.get_field(name).verbose_name)
            if name in foreign_keys:
                labels = names[foreign_keys[name].related_model]
                old, new = (None if v is None else labels.get(v, f"#{v}") for v in (old, new))
            if isinstance(new, dict) and isinstance(old or {}, dict) and name in key_labels:
                old = old or {}
                for key in sorted({str(k) for k in (*old, *new)}):
                    if old.get(key) != new.get(key):
                        label = key_labels[name].get(key, key)
                        lines.append(
                            {
                                "field": f"{title}: {label}",
                                "old": None if created else _shown(old.get(key)),
                                "new": _shown(new.get(key)),
                            }
                        )
                continue
            lines.append(
                {"field": title, "old": None if created else _shown(old), "new": _shown(new)}
            )
        user = record.history_user
        prefix = getattr(record, "history_api_key_prefix", "")
        if user is not None:
            who = user.email or user.get_username()
        else:
            who = f"API key {prefix}…" if prefix else ""
        entries.append(
            {
                "when": record.history_date,
                "who": who or "system",
                "source": getattr(record, "history_source", "") or "",
                "kind": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
                "lines": lines,
            }
        )
    return entries


def _shown(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
