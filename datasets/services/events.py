"""The event datasets announce (docs/notifications.md), emitted inside the promotion's
transaction by one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datasets.models import Dataset
from projects.models import Project
from projects.notifications import catalogue, event_emit, is_subscribed, site_reverse


def announce_promoted(
    dataset: Dataset, *, source: str, counts: Mapping[str, int], item: Any = None
) -> None:
    """``datasets.item.promoted``: one event per promotion (one item, or a bulk
    promotion with its counts), sent only when an item was created or changed."""
    created, updated = counts.get("created", 0), counts.get("updated", 0)
    if not (created or updated) or not is_subscribed(
        catalogue.DATASET_ITEM_PROMOTED, project_id=dataset.project_id
    ):
        return
    project = Project.objects.select_related("organization").get(pk=dataset.project_id)
    what = f"{item.key!r}" if item is not None else f"{created + updated} items"
    event_emit(
        catalogue.DATASET_ITEM_PROMOTED,
        organization_id=dataset.organization_id,
        project_id=dataset.project_id,
        payload={
            "summary": f"{what} promoted from {source} into the dataset {dataset.name!r} "
            f"({project.name}).",
            "dataset": {"id": dataset.pk, "name": dataset.name},
            "item": {"id": item.pk, "key": item.key} if item is not None else None,
            "source": source,
            "created": created,
            "updated": updated,
            "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            "url": site_reverse(
                "dataset-detail",
                org_slug=project.organization.slug,
                project_slug=project.slug,
                pk=dataset.pk,
            ),
        },
    )
