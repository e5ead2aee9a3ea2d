"""The rubric page's choice of scale for a categorical question: unordered categories
(nominal) or ordered levels (ordinal). Agreement reads it (``review.services.agreement
.scale_of``): never inferred from the options' values."""

from __future__ import annotations

from typing import Any

from django import forms

NOMINAL = "nominal"
ORDINAL = "ordinal"


class RubricScaleForm(forms.Form):
    """``scale``: nominal or ordinal. Left out of a post, the question keeps its scale
    (a new one is nominal); only categorical questions use it."""

    scale = forms.ChoiceField(
        label="Are the options ordered?",
        choices=[
            (NOMINAL, "Unordered categories (nominal): any two different answers disagree"),
            (
                ORDINAL,
                "Ordered levels (ordinal), in the order of their values: near answers nearly agree",
            ),
        ],
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose unordered categories or ordered levels."},
    )

    def ordered(self) -> bool | None:
        """The choice as the config's ``ordered`` (None: not posted, keep it)."""
        scale = self.cleaned_data.get("scale")
        return None if not scale else scale == ORDINAL


def scale_of_data(data: dict[str, Any]) -> str:
    """The scale a config definition (or a refused post) shows."""
    return ORDINAL if data.get("ordered") else NOMINAL
