"""Quality's part in the core's hooks (:mod:`review.hooks`), connected by
``ReviewConfig.ready()``: the calibration gate refuses a claim to a reviewer who has not
passed the set a queue requires, and changed answers ask for the queue's agreement and
gold accuracy to be recomputed."""

from __future__ import annotations

from typing import Any

from review import hooks
from review.models import ReviewQueue
from review.quality.services.agreement import agreement_request
from review.quality.services.calibration import calibration_gate_check


def _answers_changed(sender: Any, *, queue: ReviewQueue, **_: Any) -> None:
    agreement_request(queue=queue)


def connect_quality() -> None:
    hooks.register_claim_gate(calibration_gate_check)
    hooks.answers_changed.connect(_answers_changed, dispatch_uid="review.quality.answers")
