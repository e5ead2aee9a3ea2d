"""The one way items change: a :class:`VersionWriter` inside the dataset's lock.

Every service that changes items opens a writer, hands it item states (upserts) and
keys (removals) in chunks, and finishes it: the changed items are written with history
(bulk paths through ``hitl.audit``), their old revisions are closed at the new version
number, new revisions are inserted, and one ``DatasetVersion`` records the change. A
change that changes nothing makes no version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from datasets.content import ITEM_FIELDS, ItemState, content_hash
from datasets.models import Dataset, DatasetItem, DatasetItemRevision, DatasetVersion
from hitl import audit

WRITE_CHUNK = 2_000
# Rows per UPDATE of changed items: Django's bulk_update writes one CASE branch per row
# for every column, which PostgreSQL evaluates per row, so a statement costs rows²;
# small statements keep an update of 100,000 items linear (bench/datasets.py).
UPDATE_BATCH = 100


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
        existing = {
            item.key: item
            for item in DatasetItem.objects.filter(
                dataset=self.dataset, key__in=[s.key for s in states]
            )
        }
        actor = audit.current_actor()
        user = actor.user if actor else None
        now = timezone.now()
        created: list[DatasetItem] = []
        updated: list[DatasetItem] = []
        revisions: list[tuple[ItemState, dict, str, DatasetItem]] = []
        outcomes: list[Outcome] = []
        for state in states:
            record = state.record()
            digest = content_hash(record)
            item = existing.get(state.key)
            if item is not None and item.content_hash == digest:
                outcomes.append(Outcome(state.key, item.pk, "unchanged"))
                continue
            if item is None:
                item = DatasetItem(
                    organization_id=self.dataset.organization_id,
                    project_id=self.dataset.project_id,
                    dataset=self.dataset,
                    key=state.key,
                    content_hash=digest,
                    created_by=user if getattr(user, "pk", None) else None,
                    created_at=now,
                    updated_at=now,
                    **state.item_fields(),
                )
                created.append(item)
            else:
                for name, value in state.item_fields().items():
                    setattr(item, name, value)
                item.content_hash = digest
                item.updated_at = now
                updated.append(item)
            revisions.append((state, record, digest, item))
        if created:
            audit.bulk_create_with_history(created, DatasetItem, batch_size=WRITE_CHUNK)
            self.added += len(created)
        if updated:
            audit.bulk_update_with_history(
                updated,
                DatasetItem,
                [*ITEM_FIELDS, "content_hash", "updated_at"],
                batch_size=UPDATE_BATCH,
            )
            self.changed += len(updated)
            self._close([item.key for item in updated])
        DatasetItemRevision.objects.bulk_create(
            [
                DatasetItemRevision(
                    organization_id=self.dataset.organization_id,
                    dataset=self.dataset,
                    item_id=item.pk,
                    key=state.key,
                    content_hash=digest,
                    content=record,
                    added_in=self.number,
                )
                for state, record, digest, item in revisions
            ],
            batch_size=WRITE_CHUNK,
        )
        created_ids = {id(item) for item in created}
        for _state, _record, _digest, item in revisions:
            status = "created" if id(item) in created_ids else "updated"
            outcomes.append(Outcome(item.key, item.pk, status))
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
            self._close([item.key for item in items])
            removed += len(items)
        self.removed += removed
        return removed

    def _close(self, keys: Sequence[str]) -> None:
        # Revisions are immutable content; closing sets removed_in once, to a version
        # no one can have pinned yet.
        DatasetItemRevision.objects.filter(
            dataset=self.dataset, key__in=keys, removed_in__isnull=True, added_in__lt=self.number
        ).update(removed_in=self.number)

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
