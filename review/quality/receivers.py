"""Quality's part in the core's hooks (:mod:`review.hooks`), connected by
``ReviewConfig.ready()``: the calibration gate refuses a claim to a reviewer who has not
passed the set a queue requires, and changed answers ask for the queue's agreement and
gold accuracy to be recomputed (and score a calibration round once it is done). In
``projects.hooks``: an invitee joining a queue that requires a calibration set gets a
round of it, and a member with a round waiting lands on it after signing in."""

from __future__ import annotations

from typing import Any

from review import hooks
from review.models import ReviewQueue
from review.quality.services.agreement import agreement_request
from review.quality.services.calibration import (
    CALIBRATION_GATE_SQL,
    calibration_gate_check,
    calibration_round_score_when_done,
    calibration_rounds_for_joiner,
)


def _answers_changed(sender: Any, *, queue: ReviewQueue, **_: Any) -> None:
    agreement_request(queue=queue)
    calibration_round_score_when_done(queue=queue)


def connect_quality() -> None:
    from projects.hooks import register_queue_pool_join, register_work_page
    from review.quality.selectors.calibration import calibration_work_page

    register_queue_pool_join(calibration_rounds_for_joiner)
    register_work_page(calibration_work_page, first=True)
    hooks.register_claim_gate(calibration_gate_check, refusal_sql=CALIBRATION_GATE_SQL)
    hooks.answers_changed.connect(_answers_changed, dispatch_uid="review.quality.answers")
