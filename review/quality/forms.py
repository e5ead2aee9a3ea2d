"""Forms of the lead's quality pages: a new calibration set, what passing one takes
(thresholds, description and, per numeric question, how far from gold an answer may be
and still be right), a trace's gold answers, a round sent to reviewers, an alignment
mapping and whose answers it counts (its scope, optionally one queue), and the
project's alert thresholds.

The forms type and bound the input (``hitl.forms``: storable text, whole numbers within
64 bits, choices among the project's rows); the services (``review.services
.calibration``, ``.alignment``, ``.alerts``) decide what is valid and their refusals
come back onto the fields (:func:`add_service_errors`, which also places a refusal of
one question among many, ``{"tolerances": {"<config id>": why}}``, beside that question).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from django import forms

from hitl.exceptions import DomainError
from hitl.forms import TextField, WholeNumberField, form_add_domain_error
from review.models import ReviewQueue, ScoreConfig
from review.quality.models import AlignmentScope, CalibrationSet
from traces.models import Trace
from traces.score_kinds import score_kind

TOLERANCE_PREFIX = "tolerance-"


class FiniteFloatField(forms.FloatField):
    """A number as typed; "inf", "nan" and the like are refused with the field's reason
    (which may name what was typed as ``%(value)s``)."""

    default_error_messages = {"invalid": "A number is expected."}

    def to_python(self, value: Any) -> float | None:
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not math.isfinite(value):
            raise forms.ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            )


# The calibration, alignment and alert forms' reason for what is not a number.
NOT_A_NUMBER = {"invalid": "a number is expected, not “%(value)s”."}


class CalibrationThresholdsForm(forms.Form):
    """What passing a set takes. One ``tolerance-<config id>`` field per numeric question
    of the set: empty (or 0) means the answer must equal gold."""

    min_accuracy = FiniteFloatField(label="Accuracy to pass (0 to 1)")
    min_agreement = FiniteFloatField(
        label="Agreement with gold to pass (optional, -1 to 1)", required=False
    )
    description = TextField(
        label="Description", max_length=None, required=False, widget=forms.Textarea
    )

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
        self.numeric = [q for q in questions if score_kind(q.data_type).numeric]
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


class ConfigsField(forms.ModelMultipleChoiceField):
    """Questions of the project ticked by id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            queryset=ScoreConfig.objects.none(),
            required=False,
            error_messages={
                "invalid_choice": "Choose among the questions listed.",
                "invalid_pk_value": "Choose among the questions listed.",
            },
            **kwargs,
        )


def _choose_among(field: forms.Field, queryset: Any) -> None:
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = queryset


def _ids(rows: Iterable[Any]) -> list[int]:
    return [row.pk for row in rows]


class CalibrationSetForm(forms.Form):
    """A new set: its name, description, questions (among ``configs``, the project's
    questions with an answer to compare) and what passing takes."""

    name = TextField(label="Name", error_messages={"required": "required."})
    description = TextField(label="Description", max_length=None, required=False)
    config = ConfigsField(label="Questions")
    min_accuracy = FiniteFloatField(
        label="Accuracy to pass", required=False, error_messages=NOT_A_NUMBER
    )
    min_agreement = FiniteFloatField(
        label="Agreement to pass", required=False, error_messages=NOT_A_NUMBER
    )

    def __init__(self, *args: Any, configs: Sequence[ScoreConfig] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choose_among(self.fields["config"], ScoreConfig.objects.filter(pk__in=_ids(configs)))

    def service_fields(self) -> dict[str, Any]:
        """The set as ``calibration_set_create`` takes it."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "config_ids": sorted(c.pk for c in data["config"]),
            "min_accuracy": 0.8 if data["min_accuracy"] is None else data["min_accuracy"],
            "min_agreement": data["min_agreement"],
        }


ANSWER_PREFIX = "q-"


class GoldAnswerForm(forms.Form):
    """A trace of the project (its id as in the explorer) with the gold answer to each
    question (``q-<config id>``; left empty: no answer) and why."""

    trace = TextField(
        label="Trace",
        max_length=400,
        error_messages={"required": "the trace's id is required."},
    )
    explanation = TextField(label="Explanation", max_length=None, required=False)

    def __init__(
        self, *args: Any, project: Any, questions: Sequence[dict[str, Any]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.questions = list(questions)
        for question in self.questions:
            name = f"{ANSWER_PREFIX}{question['config_id']}"
            kind = score_kind(question["data_type"])
            field: forms.Field
            if kind.numeric:
                field = FiniteFloatField(required=False)
            elif kind.yes_no:
                field = forms.ChoiceField(
                    choices=[("", "—"), ("true", "true"), ("false", "false")], required=False
                )
            else:
                # A category: the service names an unknown one beside the question.
                field = TextField(max_length=None, required=False)
            field.label = question["name"]
            self.fields[name] = field

    def clean_trace(self) -> int:
        external_id = self.cleaned_data["trace"]
        trace_pk = (
            Trace.objects.filter(project=self.project, external_id=external_id)
            .values_list("pk", flat=True)
            .first()
        )
        if trace_pk is None:
            raise forms.ValidationError(f"no trace “{external_id}” in this project.")
        self.external_id = external_id
        return trace_pk

    def values(self) -> dict[str, Any]:
        """Config id (as text) -> the gold answer typed for the service (None: empty)."""
        values: dict[str, Any] = {}
        for question in self.questions:
            key = str(question["config_id"])
            value = self.cleaned_data.get(f"{ANSWER_PREFIX}{key}")
            if value in ("", None):
                values[key] = None
            elif score_kind(question["data_type"]).yes_no:
                values[key] = value == "true"
            else:
                values[key] = value
        return values


class RoundStartForm(forms.Form):
    """The reviewers a round is sent to, among the members listed (user ids)."""

    reviewer = forms.TypedMultipleChoiceField(
        label="Reviewers",
        coerce=int,
        required=False,
        error_messages={"invalid_choice": "choose among the members listed."},
    )

    def __init__(self, *args: Any, reviewers: Iterable[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reviewer"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = [(str(m.user_id), str(m.user_id)) for m in reviewers]


class AlignmentMappingForm(AlignmentScopeForm):
    """A new mapping: the automated score (and judge version) compared with one of
    the project's questions, when each passes, and whose answers count (its scope)."""

    score_name = TextField(
        label="Automated score",
        max_length=256,
        error_messages={"required": "its name is required."},
    )
    source_version = TextField(label="Judge version", max_length=128, required=False)
    config_id = forms.ModelChoiceField(
        label="Question",
        queryset=ScoreConfig.objects.none(),
        error_messages={"required": "choose one.", "invalid_choice": "choose one."},
    )
    metric_threshold = FiniteFloatField(
        label="Metric passes from", required=False, error_messages=NOT_A_NUMBER
    )
    human_threshold = FiniteFloatField(
        label="Reviewers pass from", required=False, error_messages=NOT_A_NUMBER
    )
    human_pass_labels = TextField(label="Labels that pass", max_length=None, required=False)

    def __init__(self, *args: Any, configs: Sequence[ScoreConfig] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choose_among(self.fields["config_id"], ScoreConfig.objects.filter(pk__in=_ids(configs)))

    @staticmethod
    def score_names_for(project: Any, viewer: Any) -> list[str]:
        """The automated score names the name field offers: the project's scores that an
        LLM judge or a code check posted, among those ``viewer`` may read (tenant-scoped
        and blind-safe: ``traces.selectors.score_names``). Another name may be typed (a
        judge that has not posted yet)."""
        from traces.models import AUTOMATED_SCORE_SOURCES, Score
        from traces.selectors import score_names

        names = score_names(project=project, viewer=viewer)
        if not names:
            return []
        automated = set(
            Score.objects.filter(
                project=project, name__in=names, source__in=AUTOMATED_SCORE_SOURCES
            )
            .values_list("name", flat=True)
            .distinct()
        )
        return [name for name in names if name in automated]

    def clean_human_pass_labels(self) -> list[str]:
        raw = self.cleaned_data.get("human_pass_labels") or ""
        labels = [label.strip() for label in raw.split(",") if label.strip()]
        if any(len(label) > 200 for label in labels):
            raise forms.ValidationError("at most 200 characters each.")
        return labels

    def service_fields(self) -> dict[str, Any]:
        """The mapping as ``alignment_mapping_create`` takes it."""
        data = self.cleaned_data
        return {
            "score_name": data["score_name"],
            "source_version": data["source_version"],
            "config_id": data["config_id"].pk,
            "metric_threshold": data["metric_threshold"],
            "human_threshold": data["human_threshold"],
            "human_pass_labels": data["human_pass_labels"],
            "scope": data["scope"],
            "queue_id": self.queue_id(),
        }


class QualitySettingsForm(forms.Form):
    """The thresholds the project's quality alerts use and the window they read."""

    agreement_threshold = FiniteFloatField(
        label="Agreement threshold", error_messages={"required": "required.", **NOT_A_NUMBER}
    )
    alignment_threshold = FiniteFloatField(
        label="Alignment threshold", error_messages={"required": "required.", **NOT_A_NUMBER}
    )
    window = WholeNumberField(
        label="Window",
        min_value=0,
        error_messages={
            "required": "a whole number of reports is expected.",
            "invalid": "a whole number of reports is expected.",
        },
    )


def add_service_errors(
    form: forms.Form, exc: DomainError, fields: dict[str, str] | None = None
) -> None:
    """A service's refusal onto the form (``hitl.forms.form_add_domain_error``), with
    per-question details, ``{"tolerances": {"<config id>": why}}``, beside the field
    ``<renamed><config id>`` (``fields`` renames the service's names to the form's). A
    single field refused with terse reasons ("0..1") shows the message itself there."""
    fields = fields or {}
    details = exc.details if isinstance(exc.details, dict) else {}
    flat: dict[str, Any] = {}
    for name, reasons in details.items():
        if not isinstance(reasons, dict):
            flat[fields.get(name, name)] = reasons
            continue
        for key, why in reasons.items():
            target = f"{fields.get(name, name)}{key}"
            flat[target if target in form.fields else f"{name} {key}"] = why
    nested = any(isinstance(reasons, dict) for reasons in details.values())
    if len(flat) == 1 and not nested and next(iter(flat)) in form.fields:
        form.add_error(next(iter(flat)), exc.message)
        return
    form_add_domain_error(form, DomainError(exc.message, details=flat))
