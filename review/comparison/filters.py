"""Query parameters of the comparison list (``hitl.api.filters.StrictFilterBackend``
refuses unknown parameters and bad values)."""

from __future__ import annotations

import django_filters

from hitl import filtering
from hitl.api.filters import TextFilter
from review.comparison.models import ComparisonItem, ComparisonSource


class ComparisonFilter(filtering.FilterSet):
    source = django_filters.ChoiceFilter(
        choices=ComparisonSource.choices, label="Where the outputs came from"
    )
    group_key = TextFilter(field_name="group_key", label="Grouping key (exact)")

    class Meta:
        model = ComparisonItem
        fields: list[str] = []
