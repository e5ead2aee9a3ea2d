"""Forms of the focused review page's side requests: a draft of the answers as the
reviewer types, and the choice after a second tab sent other answers for an item
already submitted. They type and bound the input; the services decide the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

# Bounds of what a draft keeps (a text answer's own bound is the service's).
MAX_DRAFT_TEXT = 20_000
MAX_TAGS = 50
MAX_TAG = 64


class TagListField(forms.Field):
    """Several values of one name (the failure-mode checkboxes), each a short tag."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "too_many": f"At most {MAX_TAGS} failure modes.",
        "too_long": f"A failure mode has at most {MAX_TAG} characters.",
    }

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [str(v).strip() for v in values if str(v).strip()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        if len(value) > MAX_TAGS:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many")
        if any(len(v) > MAX_TAG for v in value):
            raise forms.ValidationError(self.error_messages["too_long"], code="too_long")


class DraftForm(forms.Form):
    """The review form as it stands, every field optional: one ``q-<config id>`` per
    question of the queue's form, the explanation, expected output, comment and failure
    modes. ``as_draft`` gives it as the page shows posted answers."""

    explanation = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    expected_output = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    comment = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    failure_modes = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    failure_mode = TagListField(required=False)

    def __init__(self, *args: Any, config_ids: Sequence[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for config_id in config_ids:
            self.fields[f"q-{config_id}"] = forms.CharField(
                required=False, strip=False, max_length=MAX_DRAFT_TEXT
            )

    def as_draft(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["picked_failure_modes"] = data.pop("failure_mode", [])
        return data


class ConflictChoiceForm(forms.Form):
    """After a second tab sent other answers for an item already submitted: keep the
    stored answer, or replace it with the ones sent (at the version shown)."""

    choice = forms.ChoiceField(choices=[("keep", "Keep the stored answer"), ("replace", "Replace")])
    version = forms.IntegerField(min_value=1, max_value=2_147_483_647)
