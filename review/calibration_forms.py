"""Forms of the lead's quality pages: what passing a calibration set takes (thresholds,
description and, per numeric question, how far from gold an answer may be and still be
right), and whose answers an alignment mapping counts (its scope, optionally one queue).

The forms type and bound the input; the services (``review.services.calibration``,
``.alignment``) decide what is valid and their refusals come back onto the fields
(:func:`add_service_errors`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from django import forms

from hitl.exceptions import DomainError
from review.models import AlignmentScope, CalibrationSet, ReviewQueue, ScoreConfig
from traces.models import ScoreDataType

TOLERANCE_PREFIX = "tolerance-"


class FiniteFloatField(forms.FloatField):
    """A number as typed; "inf", "nan" and the like are refused with the field's reason."""

    default_error_messages = {"invalid": "A number is expected."}

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not math.isfinite(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class CalibrationThresholdsForm(forms.Form):
    """What passing a set takes. One ``tolerance-<config id>`` field per numeric question
    of the set: empty (or 0) means the answer must equal gold."""

    min_accuracy = FiniteFloatField(label="Accuracy to pass (0 to 1)")
    min_agreement = FiniteFloatField(
        label="Agreement with gold to pass (optional, -1 to 1)", required=False
    )
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea)

    def __init__(
        self,
        *args: Any,
        calibration_set: CalibrationSet,
        questions: Sequence[ScoreConfig],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault(
            "initial",
            {
                "min_accuracy": calibration_set.min_accuracy,
                "min_agreement": calibration_set.min_agreement,
                "description": calibration_set.description,
            },
        )
        super().__init__(*args, **kwargs)
        self.numeric = [q for q in questions if q.data_type == ScoreDataType.NUMERIC]
        for question in self.numeric:
            name = f"{TOLERANCE_PREFIX}{question.pk}"
            self.fields[name] = FiniteFloatField(
                label=f"Tolerance: {question.name}",
                required=False,
                min_value=0,
                help_text="How far from gold an answer may be and still count as right "
                "(empty or 0: equal to gold).",
            )
            tolerance = calibration_set.tolerances.get(str(question.pk))
            self.initial.setdefault(name, f"{tolerance:g}" if tolerance else None)

    def tolerance_fields(self) -> list[forms.BoundField]:
        """The numeric questions' tolerance fields, in the set's order."""
        return [self[f"{TOLERANCE_PREFIX}{q.pk}"] for q in self.numeric]

    def tolerances(self) -> dict[str, float]:
        """Config id (as text) -> tolerance, for the service (empty fields: none)."""
        return {
            str(q.pk): value
            for q in self.numeric
            if (value := self.cleaned_data.get(f"{TOLERANCE_PREFIX}{q.pk}")) is not None
        }


class AlignmentScopeForm(forms.Form):
    """Whose answers a mapping's reports count: production answers (the default, also
    when left out) or every answer to the question, optionally one queue's only."""

    scope = forms.ChoiceField(
        label="Answers counted",
        choices=AlignmentScope.choices,
        initial=AlignmentScope.PRODUCTION,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose production answers or every answer."},
    )
    queue = forms.ModelChoiceField(
        label="Only the queue (optional)",
        queryset=ReviewQueue.objects.none(),
        required=False,
        empty_label="every queue",
        error_messages={"invalid_choice": "Choose a queue of this project."},
    )

    def __init__(self, *args: Any, queues: Iterable[ReviewQueue] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = [q.pk for q in queues]
        field = self.fields["queue"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ReviewQueue.objects.filter(pk__in=ids).order_by("name", "id")

    def clean_scope(self) -> str:
        """Left out: production answers, the default."""
        return self.cleaned_data.get("scope") or AlignmentScope.PRODUCTION

    def queue_id(self) -> int | None:
        queue = self.cleaned_data.get("queue")
        return queue.pk if queue is not None else None


def add_service_errors(
    form: forms.Form, exc: DomainError, fields: dict[str, str] | None = None
) -> None:
    """A service's refusal onto the form: each detail on its field when the form has
    it (``fields`` renames the service's names to the form's; per-question details,
    ``{"tolerances": {"<config id>": why}}``, go to ``<renamed><config id>``), the rest
    and the message on the form. A single field refused with terse reasons ("0..1")
    shows the message itself on that field."""
    fields = fields or {}
    details = exc.details if isinstance(exc.details, dict) else {}
    placed: list[tuple[str, list[str]]] = []
    per_question = False
    rest: list[str] = []
    for name, reasons in details.items():
        if isinstance(reasons, dict):
            per_question = True
            for key, why in reasons.items():
                target = f"{fields.get(name, name)}{key}"
                if target in form.fields:
                    placed.append((target, _sentences(why)))
                else:
                    rest.append(f"{name} {key}: {', '.join(_sentences(why))}")
            continue
        target = fields.get(name, name)
        if target in form.fields:
            placed.append((target, _sentences(reasons)))
        else:
            rest.append(f"{name}: {', '.join(_sentences(reasons))}")
    if len(placed) == 1 and not rest and not per_question:
        form.add_error(placed[0][0], exc.message)
        return
    form.add_error(None, [exc.message, *rest])
    for target, reasons in placed:
        form.add_error(target, reasons)


def _sentences(reasons: Any) -> list[str]:
    return [str(r) for r in reasons] if isinstance(reasons, list) else [str(reasons)]
