"""Who did it: the acting user or API key, recorded on every history row.

Services run inside :func:`acting_as`. django-simple-history reads the user through
:func:`history_user`, and :func:`connect_signals` stamps the API key and the source on
each historical row. Bulk writes go through :func:`bulk_create_with_history` and
:func:`bulk_update_with_history`, which record the same fields, so no write path
escapes the audit trail.
"""

from __future__ import annotations

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


def history_for_display(records: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """A history queryset (``obj.history.all()``, or one model's rows of several
    objects) as a page shows it, newest first: when, who (user or API key, and the
    source), created / changed / deleted, and one line per change, worded exactly as
    the admin's history (``hitl.admin.describe_history``: related objects by name, JSON
    answers entry by entry with the model admin's key labels). Read inside the tenant
    scope."""
    from django.contrib import admin as django_admin

    from hitl.admin import HistoryDescriptionMixin, describe_actor, describe_history

    rows = list(
        records.select_related("history_user").order_by("-history_date", "-history_id")[:limit]
    )
    if not rows:
        return []
    model = type(rows[0]).instance_type
    model_admin = django_admin.site._registry.get(model) or HistoryDescriptionMixin()
    described = describe_history(model_admin, rows)
    kinds = {"+": "created", "~": "changed", "-": "deleted"}
    return [
        {
            "when": record.history_date,
            "who": describe_actor(record),
            "kind": kinds[record.history_type],
            "lines": [
                {"field": line.field, "old": line.old, "new": line.new}
                for line in described.get(record.history_id, [])
            ],
        }
        for record in rows
    ]
