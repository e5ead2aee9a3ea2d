"""The one way items change: a :class:`VersionWriter` inside the dataset's lock.

Every service that changes items opens a writer, hands it item states (upserts) and
keys (removals) in chunks, and finishes it: the changed items are written with history,
their old revisions are closed at the new version number, new revisions are inserted,
and one ``DatasetVersion`` records the change. A change that changes nothing makes no
version. Upserts are set-based SQL, a few statements per chunk of items (an import of
100,000 rows builds no ORM object per row); their history rows are copied from the rows
as written by ``hitl.audit.bulk_record_from_table``, the same history table, actor
columns and rows django-simple-history writes on ``save()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from django.db import connection, transaction
from django.utils import timezone

from datasets.content import ITEM_FIELDS, JSON_COLUMNS, ItemState, canonical
from datasets.models import Dataset, DatasetItem, DatasetVersion
from hitl import audit, tenancy

WRITE_CHUNK = 2_000

# --- set-based statements ----------------------------------------------------------------
# Items travel as one array per column (binary), under a fixed statement text, as the
# span store writes spans (traces/ingest/store.py): a chunk of 2,000 items is a handful
# of statements, and no ORM object is built per row. JSON values travel as JSON text,
# lists as array literals ('{"a","b"}': a binary text[][] cannot hold rows of different
# lengths, and PostgreSQL parses a literal much faster than it runs a subquery per row).
_JSON = JSON_COLUMNS
_IDS = frozenset({"trace_id", "span_id", "thread_id", "queue_item_id", "adjudication_id"})
_TEXT_LISTS = frozenset({"tags", "failure_modes"})
_INT_LISTS = frozenset({"annotation_ids"})
_ITEM_COLUMNS = ("key", *ITEM_FIELDS, "content_hash")


def _param_type(name: str) -> str:
    return "bigint[]" if name in _IDS or name == "id" else "text[]"


def _value(name: str) -> str:
    """The SQL expression of column ``name`` from the unnest row ``v``."""
    if name in _JSON:
        return f"v.{name}::jsonb"
    if name in _TEXT_LISTS:
        return f"v.{name}::text[]"
    if name in _INT_LISTS:
        return f"v.{name}::bigint[]"
    return f"v.{name}"


def _unnest(names: Sequence[str]) -> str:
    arrays = ", ".join(f"%({name})b::{_param_type(name)}" for name in names)
    return f"unnest({arrays}) AS v({', '.join(names)})"


_ITEM_INSERT = (
    "INSERT INTO datasets_datasetitem (organization_id, project_id, dataset_id, "  # noqa: S608
    f"{', '.join(_ITEM_COLUMNS)}, created_by_id, created_at, updated_at) "
    "SELECT %(organization)s::bigint, %(project)s::bigint, %(dataset)s::bigint, "
    f"{', '.join(_value(name) for name in _ITEM_COLUMNS)}, "
    "%(user)s::bigint, %(now)s::timestamptz, %(now)s::timestamptz "
    f"FROM {_unnest(_ITEM_COLUMNS)} "
    "RETURNING key, id"
)
_ITEM_UPDATE = (
    "UPDATE datasets_datasetitem i SET "  # noqa: S608
    + ", ".join(f"{name} = {_value(name)}" for name in _ITEM_COLUMNS if name != "key")
    + ", updated_at = %(now)s::timestamptz "
    f"FROM {_unnest(('id', *_ITEM_COLUMNS))} "
    "WHERE i.id = v.id AND i.organization_id = %(organization)s::bigint"
)
_REVISION_INSERT = (
    "INSERT INTO datasets_datasetitemrevision "
    "(organization_id, dataset_id, item_id, key, content_hash, content, added_in) "
    "SELECT %(organization)s::bigint, %(dataset)s::bigint, v.item_id, v.key, v.hash, "
    "v.content::jsonb, %(number)s::integer "
    "FROM unnest(%(item_id)b::bigint[], %(key)b::text[], %(hash)b::text[], "
    "%(content)b::text[]) AS v(item_id, key, hash, content)"
)


def _cursor() -> psycopg.Cursor:
    """A server-side-binding cursor on Django's connection (same transaction): the
    arrays travel as binary parameters, not quoted into the SQL text."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _columns(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column, keyed by name (the statements' array parameters)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: list(values) for name, values in zip(names, columns, strict=True)}


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _array_literal(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal: every element double-quoted, with its backslashes and
    quotes escaped (NUL cannot be in text, and the import refuses it in keys only; a
    NUL in a tag fails the statement as it would through the ORM)."""
    return (
        "{"
        + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


def _item_row(state: ItemState, digest: str) -> tuple[Any, ...]:
    """The values of ``_ITEM_COLUMNS`` for one item."""
    fields = state.item_fields()
    values: list[Any] = [state.key]
    for name in ITEM_FIELDS:
        value = fields[name]
        if name in _JSON:
            value = _json_text(value)
        elif name in _TEXT_LISTS or name in _INT_LISTS:
            value = _array_literal(value)
        values.append(value)
    values.append(digest)
    return tuple(values)


@dataclass
class Outcome:
    """What one upsert did to one key."""

    key: str
    item_id: int
    status: str  # created, updated, unchanged


@dataclass
class VersionWriter:
    dataset: Dataset
    message: str = ""
    added: int = 0
    changed: int = 0
    removed: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    keep_outcomes: bool = True

    def __post_init__(self) -> None:
        if not transaction.get_connection().in_atomic_block:
            raise transaction.TransactionManagementError("VersionWriter needs a transaction")
        # One writer per dataset at a time: version numbers are dense and ordered.
        self.dataset = Dataset.objects.select_for_update().get(pk=self.dataset.pk)
        self.number = self.dataset.current_version + 1

    # --- upserts ---------------------------------------------------------------------

    def upsert(self, states: Sequence[ItemState]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(states), WRITE_CHUNK):
            outcomes.extend(self._upsert_chunk(states[start : start + WRITE_CHUNK]))
        if self.keep_outcomes:
            self.outcomes.extend(outcomes)
        return outcomes

    def _upsert_chunk(self, states: Sequence[ItemState]) -> list[Outcome]:
        """Set-based: one query for what is there, then one statement each for the new
        items, the changed items, their history, the closed and the new revisions,
        whatever the chunk's size (no ORM objects per row)."""
        dataset = self.dataset
        tenancy.assert_writing_in_scope(dataset.organization_id)
        actor = audit.current_actor()
        user_id = getattr(actor.user, "pk", None) if actor else None
        now = timezone.now()
        outcomes: list[Outcome] = []
        new_rows: list[tuple] = []
        changed_rows: list[tuple] = []
        revisions: list[tuple[str, str, bytes]] = []  # key, hash, content (JSON)
        with _cursor() as cur:
            cur.execute(
                "SELECT key, id, content_hash FROM datasets_datasetitem "
                "WHERE organization_id = %s AND dataset_id = %s AND key = ANY(%s::text[])",
                [dataset.organization_id, dataset.pk, [s.key for s in states]],
            )
            existing = {key: (item_id, digest) for key, item_id, digest in cur.fetchall()}
            for state in states:
                content = canonical(state.record())
                digest = hashlib.sha256(content).hexdigest()
                found = existing.get(state.key)
                if found is not None and found[1] == digest:
                    outcomes.append(Outcome(state.key, found[0], "unchanged"))
                    continue
                row = _item_row(state, digest)
                if found is None:
                    new_rows.append(row)
                else:
                    changed_rows.append((found[0], *row))
                revisions.append((state.key, digest, content))
            ids: dict[str, int] = {}
            created_ids: list[int] = []
            if new_rows:
                cur.execute(
                    _ITEM_INSERT,
                    {
                        "organization": dataset.organization_id,
                        "project": dataset.project_id,
                        "dataset": dataset.pk,
                        "user": user_id,
                        "now": now,
                        **_columns(_ITEM_COLUMNS, new_rows),
                    },
                )
                created = dict(cur.fetchall())
                ids.update(created)
                created_ids = list(created.values())
                self.added += len(created)
            # A changed row is (id, *_ITEM_COLUMNS): the id, the key, then the content.
            changed_ids = [item_id for item_id, _key, *_ in changed_rows]
            if changed_rows:
                cur.execute(
                    _ITEM_UPDATE,
                    {
                        "organization": dataset.organization_id,
                        "now": now,
                        **_columns(("id", *_ITEM_COLUMNS), changed_rows),
                    },
                )
                ids.update((key, item_id) for item_id, key, *_ in changed_rows)
                self.changed += len(changed_rows)
                self._close([key for _id, key, *_ in changed_rows], cur)
            if revisions:
                cur.execute(
                    _REVISION_INSERT,
                    {
                        "organization": dataset.organization_id,
                        "dataset": dataset.pk,
                        "number": self.number,
                        "item_id": [ids[key] for key, _digest, _content in revisions],
                        "key": [key for key, _digest, _content in revisions],
                        "hash": [digest for _key, digest, _content in revisions],
                        "content": [content.decode() for _key, _digest, content in revisions],
                    },
                )
        # Who, when, from what to what: the rows as written, into the history table.
        audit.bulk_record_from_table(DatasetItem, created_ids, "+", date=now)
        audit.bulk_record_from_table(DatasetItem, changed_ids, "~", date=now)
        created_set = set(created_ids)
        for key, _digest, _content in revisions:
            item_id = ids[key]
            outcomes.append(
                Outcome(key, item_id, "created" if item_id in created_set else "updated")
            )
        return outcomes

    # --- removals --------------------------------------------------------------------

    def remove(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        removed = 0
        for start in range(0, len(keys), WRITE_CHUNK):
            chunk = keys[start : start + WRITE_CHUNK]
            items = list(DatasetItem.objects.filter(dataset=self.dataset, key__in=chunk))
            for item in items:
                item.delete()  # one history row each
            with _cursor() as cur:
                self._close([item.key for item in items], cur)
            removed += len(items)
        self.removed += removed
        return removed

    def _close(self, keys: Sequence[str], cur: psycopg.Cursor) -> None:
        # Revisions are immutable content; closing sets removed_in once, to a version
        # no one can have pinned yet.
        if not keys:
            return
        tenancy.assert_writing_in_scope(self.dataset.organization_id)
        cur.execute(
            "UPDATE datasets_datasetitemrevision SET removed_in = %(number)s "
            "WHERE organization_id = %(organization)s AND dataset_id = %(dataset)s "
            "AND key = ANY(%(keys)b::text[]) AND removed_in IS NULL AND added_in < %(number)s",
            {
                "number": self.number,
                "organization": self.dataset.organization_id,
                "dataset": self.dataset.pk,
                "keys": list(keys),
            },
        )

    # --- the version -----------------------------------------------------------------

    def finish(self) -> DatasetVersion | None:
        """Records the version, or None when nothing changed."""
        if not (self.added or self.changed or self.removed):
            return None
        actor = audit.current_actor()
        previous = (
            DatasetVersion.objects.filter(dataset=self.dataset, number=self.number - 1)
            .values_list("item_count", flat=True)
            .first()
            or 0
        )
        version = DatasetVersion.objects.create(
            dataset=self.dataset,
            number=self.number,
            message=self.message[:500],
            item_count=previous + self.added - self.removed,
            added=self.added,
            changed=self.changed,
            removed=self.removed,
            created_by=actor.user if actor and getattr(actor.user, "pk", None) else None,
            created_by_api_key_prefix=actor.api_key_prefix if actor else "",
        )
        self.dataset.current_version = self.number
        self.dataset.updated_at = timezone.now()
        self.dataset.save(update_fields=["current_version", "updated_at"])
        return version
