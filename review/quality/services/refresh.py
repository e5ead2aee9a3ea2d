"""What a submission asked for (``review.agreement_refresh``, written by
:func:`review.quality.services.agreement.agreement_request`): a queue's agreement and
its reviewers' accuracy on the gold items mixed into it, recomputed together."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from review.models import ReviewQueue
from review.quality.services import agreement, calibration


def quality_refresh(*, queue_id: int, min_interval: timedelta | None = None) -> dict[str, Any]:
    """What a submission asked for: the queue's agreement (overlap of two or more) and
    its reviewers' accuracy on gold items (a queue that mixes them in). Returns what was
    done: ``{"agreement": outcome or None, "gold_accuracy": reviewers refreshed or None}``."""
    overlap = ReviewQueue.objects.filter(pk=queue_id).values_list("overlap", flat=True).first()
    if overlap is None:
        return {"agreement": "missing", "gold_accuracy": None}
    done: dict[str, Any] = {"agreement": None, "gold_accuracy": None}
    if overlap >= 2:
        done["agreement"] = agreement.agreement_refresh(
            queue_id=queue_id, min_interval=min_interval
        )
    if agreement.queue_mixes_gold(queue_id):
        done["gold_accuracy"] = len(calibration.gold_accuracy_refresh(queue_id=queue_id))
    return done
