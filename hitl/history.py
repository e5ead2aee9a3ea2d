"""How history reads: one wording of what each version changed, for the admin, the
pages and the API alike.

:func:`history_changes` finds what each historical row changed from the version before
it (stored values); :func:`describe_history` words those changes as people read them
(related objects by name, JSON answers entry by entry, with the model admin's key
labels); :func:`history_entries` gives both, with who and when, for a queryset of
historical rows. ``hitl.admin`` shows them on its history pages, ``hitl.audit``'s
``history_for_display`` on the product's pages, ``hitl.api.history`` over the API.
Reads run inside the tenant scope.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import ForeignKey, JSONField, Model, OuterRef, Q, Subquery
from simple_history.utils import get_m2m_reverse_field_name


def _format_value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def describe_actor(record: Any) -> str:
    """Who made a historical change: the user's email, else the API key, and the source."""
    source = getattr(record, "history_source", "") or ""
    user = record.history_user
    prefix = getattr(record, "history_api_key_prefix", "")
    if user is not None:
        who = user.email or user.get_username()
    elif prefix:
        who = f"API key {prefix}…"
    else:
        return source or "system"
    return f"{who} ({source})" if source else who


@dataclass
class ChangeLine:
    field: str
    old: str | None  # None: the row was created with this value
    new: str

    def __str__(self) -> str:
        if self.old is None:
            return f"{self.field}: {self.new}"
        return f"{self.field}: {self.old} → {self.new}"


def _previous_versions(records: list[Any]) -> dict[int, Any]:
    """history_id -> the version before it of the same object, in two queries."""
    if not records:
        return {}
    historical = type(records[0])
    pk_name = historical.instance_type._meta.pk.attname
    earlier = historical._default_manager.filter(**{pk_name: OuterRef(pk_name)}).filter(
        Q(history_date__lt=OuterRef("history_date"))
        | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
    )
    pairs = dict(
        historical._default_manager.filter(history_id__in=[r.history_id for r in records])
        .annotate(
            previous_id=Subquery(
                earlier.order_by("-history_date", "-history_id").values("history_id")[:1]
            )
        )
        .values_list("history_id", "previous_id")
    )
    previous = historical._default_manager.in_bulk(
        [p for p in pairs.values() if p is not None], field_name="history_id"
    )
    return {hid: previous.get(pid) for hid, pid in pairs.items() if pid is not None}


def _labels_of(model: type[Model], pks: Iterable[Any]) -> dict[Any, str]:
    """pk -> str(row), without loading the large JSON columns; reads in scope."""
    heavy = [f.name for f in model._meta.concrete_fields if isinstance(f, JSONField)]
    rows = model._default_manager.filter(pk__in=set(pks)).defer(*heavy)
    return {row.pk: str(row) for row in rows}


CREATED = object()  # the "before" of a row's first version


def _m2m_targets(field: Any, rows: Any) -> list[Any]:
    """The related pks in a many-to-many diff value (rows of the history's through table)."""
    reverse = get_m2m_reverse_field_name(field)
    return [row[reverse] for row in rows or []]


def history_changes(records: list[Any]) -> dict[int, list[tuple[str, Any, Any]]]:
    """history_id -> (field name, old, new) of what each version changed from the
    version before it of the same object, stored values (ids, JSON), for historical rows
    of one model. A created row lists its related objects and JSON dicts with ``old``
    :data:`CREATED`; a deletion lists nothing. :func:`describe_history` words them."""
    if not records:
        return {}
    historical = type(records[0])
    previous = _previous_versions(records)
    tracked = [f for f in historical.tracked_fields if f.editable]
    foreign_keys = {f.name: f for f in tracked if isinstance(f, ForeignKey)}
    json_fields = [f.name for f in tracked if isinstance(f, JSONField)]

    raw: dict[int, list[tuple[str, Any, Any]]] = {}
    for record in records:
        before = previous.get(record.history_id)
        if record.history_type == "-":
            raw[record.history_id] = []
            continue
        if before is None:
            changes = [
                (name, CREATED, getattr(record, f.attname))
                for name, f in foreign_keys.items()
                if getattr(record, f.attname) is not None
            ]
            changes += [
                (name, CREATED, getattr(record, name))
                for name in json_fields
                if isinstance(getattr(record, name), dict) and getattr(record, name)
            ]
        else:
            delta = record.diff_against(before)
            changes = [(c.field, c.old, c.new) for c in delta.changes]
        raw[record.history_id] = changes
    return raw


def describe_history(
    model_admin: Any,
    records: list[Any],
    *,
    changes: dict[int, list[tuple[str, Any, Any]]] | None = None,
) -> dict[int, list[ChangeLine]]:
    """history_id -> the lines that say what each version changed, for a page of
    historical rows of one model: the one wording of history, shared by the admin, the
    pages and the API (:func:`history_entries`). A created row names its related
    objects and its JSON answers; a change names what changed, related objects by name;
    a JSON dict (an annotation's answers) shows each entry before and after, its key
    named by ``model_admin.history_key_labels`` and worded by
    ``model_admin.history_entry_words`` where it words one; a field the admin words itself
    (``model_admin.history_value_words``: field name -> function of a stored value, as
    a trace filter reads in words) is shown so. ``changes`` is
    :func:`history_changes` of ``records`` when the caller has it already."""
    if not records:
        return {}
    historical = type(records[0])
    model = historical.instance_type
    raw = history_changes(records) if changes is None else changes
    tracked = [f for f in historical.tracked_fields if f.editable]
    foreign_keys = {f.name: f for f in tracked if isinstance(f, ForeignKey)}
    many = {f.name: f for f in getattr(historical, "_history_m2m_fields", [])}
    json_fields = [f.name for f in tracked if isinstance(f, JSONField)]

    # Name related objects and JSON keys with one query per related model and field.
    wanted: dict[type[Model], set[Any]] = defaultdict(set)
    keys: dict[str, set[str]] = defaultdict(set)
    for changes in raw.values():
        for name, old, new in changes:
            if old is CREATED:
                old = None
            if name in foreign_keys:
                wanted[foreign_keys[name].related_model].update(
                    v for v in (old, new) if v is not None
                )
            elif name in many:
                wanted[many[name].related_model].update(
                    _m2m_targets(many[name], old) + _m2m_targets(many[name], new)
                )
            elif name in json_fields and isinstance(old or {}, dict) and isinstance(new, dict):
                keys[name].update(str(k) for k in (old or {}))
                keys[name].update(str(k) for k in new)
    labels = {related: _labels_of(related, pks) for related, pks in wanted.items()}
    key_labels = {name: model_admin.history_key_labels(name, ks) for name, ks in keys.items()}

    described: dict[int, list[ChangeLine]] = {}
    for history_id, changes in raw.items():
        lines: list[ChangeLine] = []
        for name, old, new in changes:
            created = old is CREATED
            if created:
                old = None
            field = model._meta.get_field(name)
            title = str(field.verbose_name)
            words = getattr(model_admin, "history_value_words", {}).get(name)
            if words is not None:
                lines.append(ChangeLine(title, None if created else words(old), words(new)))
            elif name in foreign_keys:
                names = labels[field.related_model]

                def named(pk: Any, names: dict = names) -> str:
                    return "—" if pk is None else names.get(pk, f"#{pk} (not found)")

                lines.append(ChangeLine(title, None if created else named(old), named(new)))
            elif name in many:
                names = labels.get(field.related_model, {})

                def listed(rows: Any, field: Any = field, names: dict = names) -> str:
                    targets = _m2m_targets(field, rows)
                    return ", ".join(names.get(t, f"#{t}") for t in targets) or "—"

                lines.append(ChangeLine(title, listed(old), listed(new)))
            elif name in key_labels and isinstance(new, dict):
                old = old or {}
                # An entry the admin words itself (``history_entry_words(field, key,
                # value)``: words, or None for the plain value), as a comparison
                # decision's preferences read by system.
                entry_words = getattr(model_admin, "history_entry_words", None)

                def entry(value: Any, key: str, name: str = name, words: Any = entry_words) -> str:
                    said = words(name, key, value) if words is not None else None
                    return _format_value(value) if said is None else said

                for key in sorted({str(k) for k in (*old, *new)}):
                    if old.get(key) != new.get(key):
                        label = key_labels[name].get(key, key)
                        lines.append(
                            ChangeLine(
                                f"{title}: {label}",
                                None if created else entry(old.get(key), key),
                                entry(new.get(key), key),
                            )
                        )
            elif name in json_fields and isinstance(new, list) and isinstance(old or [], list):
                noun = getattr(model_admin, "history_entry_nouns", {}).get(name, "entry")
                lines.extend(_list_lines(title, noun, old or [], new, created=created))
            else:
                lines.append(ChangeLine(title, _format_value(old), _format_value(new)))
        described[history_id] = lines
    return described


def _entry_value(value: Any) -> str:
    """One value of a JSON list entry in words: text quoted, whole numbers without ".0",
    lists joined."""
    if isinstance(value, list):
        return ", ".join(_entry_value(v) for v in value) or "none"
    if isinstance(value, str):
        return f"“{value}”" if value else "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "—"
    return str(value)


def _entry_text(entry: Any) -> str:
    """A JSON list entry in words: "value 1", "definition “…”; examples “…”"."""
    if not isinstance(entry, dict):
        return _entry_value(entry)
    parts = [f"{key} {_entry_value(v)}" for key, v in entry.items() if key != "label"]
    return "; ".join(parts) or "no details"


def _list_lines(
    title: str, noun: str, old: list[Any], new: list[Any], *, created: bool
) -> list[ChangeLine]:
    """A JSON list of entries (a rubric's levels, a question's options) in words, entry
    by entry: each added, removed or changed entry (named by its label, else by its
    place) and a change of order; a list of plain values joined."""
    if not all(isinstance(e, dict) for e in (*old, *new)):
        return [ChangeLine(title, None if created else _entry_value(old), _entry_value(new))]

    def keyed(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        labels = [str(e.get("label", "")) for e in entries]
        if all(labels) and len(set(labels)) == len(labels):
            return {f"{noun} “{label}”": e for label, e in zip(labels, entries, strict=True)}
        return {f"{noun} {i}": e for i, e in enumerate(entries, start=1)}

    before, after = keyed(old), keyed(new)
    if created or not old:
        return [ChangeLine(f"{title}: {name}", None, _entry_text(e)) for name, e in after.items()]
    lines = []
    for name, entry in after.items():
        if name not in before:
            lines.append(ChangeLine(f"{title}: {name} added", None, _entry_text(entry)))
            continue
        was = before[name]
        for key in [*was, *(k for k in entry if k not in was)]:
            if was.get(key) != entry.get(key):
                lines.append(
                    ChangeLine(
                        f"{title}: {name} {key}",
                        _entry_value(was.get(key)),
                        _entry_value(entry.get(key)),
                    )
                )
    for name, entry in before.items():
        if name not in after:
            lines.append(ChangeLine(f"{title}: {name} removed", None, _entry_text(entry)))
    kept_before = [n for n in before if n in after]
    kept_after = [n for n in after if n in before]
    if kept_before != kept_after:
        lines.append(ChangeLine(f"{title}: order", ", ".join(kept_before), ", ".join(kept_after)))
    return lines


class _PlainLabels:
    """Key labels for a model without an admin: the keys as they are."""

    def history_key_labels(self, field_name: str, keys: set[str]) -> dict[str, str]:
        return {}


_PLAIN_LABELS = _PlainLabels()


def history_entries(records: Any, *, limit: int | None = None) -> list[dict[str, Any]]:
    """A history queryset (``obj.history.all()``, or one model's rows of several
    objects), newest first, as every surface shows it: the admin's wording
    (:func:`describe_history`: related objects by name, JSON answers entry by
    entry with the model admin's key labels) for the pages and the API alike. Each
    entry has:

    - ``when``, ``who`` (user or API key, and the source), ``kind`` (created / changed /
      deleted), ``reason`` (the change reason, if one was given: a lead taking an item
      back), ``lines`` (one ``{field, old, new}`` a change, worded; ``old`` None for a
      value the object was created with);
    - the stored facts: ``history_id``, ``history_date``, ``history_type`` (+ ~ -),
      ``user`` (email), ``api_key_prefix``, ``source``, ``request_id`` (the request that
      wrote it, as in the ``X-Request-Id`` header and the logs; empty outside a
      request), and ``changes`` (``{field, old, new}`` by field name with stored values,
      from the version before; empty for a creation).

    Read inside the tenant scope."""
    from django.contrib import admin as django_admin

    ordered = records.select_related("history_user").order_by("-history_date", "-history_id")
    rows = list(ordered if limit is None else ordered[:limit])
    if not rows:
        return []
    model = type(rows[0]).instance_type
    model_admin = django_admin.site._registry.get(model) or _PLAIN_LABELS
    changes = history_changes(rows)
    described = describe_history(model_admin, rows, changes=changes)
    kinds = {"+": "created", "~": "changed", "-": "deleted"}
    return [
        {
            "when": record.history_date,
            "who": describe_actor(record),
            "kind": kinds[record.history_type],
            "reason": record.history_change_reason or "",
            "lines": [
                {"field": line.field, "old": line.old, "new": line.new}
                for line in described.get(record.history_id, [])
            ],
            "history_id": record.history_id,
            "history_date": record.history_date,
            "history_type": record.history_type,
            "user": record.history_user.email if record.history_user else None,
            "api_key_prefix": record.history_api_key_prefix,
            "source": record.history_source,
            "request_id": getattr(record, "history_request_id", ""),
            "changes": [
                {"field": name, "old": _jsonable(old), "new": _jsonable(new)}
                for name, old, new in changes.get(record.history_id, [])
                if old is not CREATED
            ],
        }
        for record in rows
    ]


def history_for_display(records: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """:func:`history_entries` as a page shows it: the newest ``limit`` versions."""
    return history_entries(records, limit=limit)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)
