"""The query parameters of the datasets list endpoints, one FilterSet per list."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from datasets.models import (
    Dataset,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
    Experiment,
    ExperimentResult,
    ExperimentStatus,
    ExportFormat,
    JobState,
    SourceType,
)
from hitl import filtering
from hitl.api.filters import IdFilter, StrictBooleanFilter, TextFilter


class DatasetFilter(filtering.FilterSet):
    name_contains = TextFilter(
        field_name="name", lookup_expr="icontains", label="Name contains (any case)"
    )

    class Meta:
        model = Dataset
        fields: list[str] = []


class DatasetItemFilter(filtering.FilterSet):
    source_type = django_filters.ChoiceFilter(
        choices=SourceType.choices, label="Where the item came from"
    )
    tag = TextFilter(method="filter_tag", label="Has this tag")
    failure_mode = TextFilter(method="filter_failure_mode", label="Has this failure mode")
    trace = TextFilter(field_name="trace__external_id", label="Source trace id (as it was sent)")
    queue_item = IdFilter(field_name="queue_item_id", label="Source queue item id")
    id_prefix = TextFilter(field_name="key", lookup_expr="startswith", label="Item id starts with")

    class Meta:
        model = DatasetItem
        fields: list[str] = []

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(tags__contains=[value])

    def filter_failure_mode(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(failure_modes__contains=[value])


class DatasetVersionFilter(filtering.FilterSet):
    number_from = django_filters.NumberFilter(
        field_name="number", lookup_expr="gte", label="Version number at least"
    )
    number_to = django_filters.NumberFilter(
        field_name="number", lookup_expr="lte", label="Version number at most"
    )

    class Meta:
        model = DatasetVersion
        fields: list[str] = []


class DatasetExportFilter(filtering.FilterSet):
    state = django_filters.ChoiceFilter(choices=JobState.choices, label="Export state")
    file_format = django_filters.ChoiceFilter(
        field_name="format", choices=ExportFormat.choices, label="File format"
    )

    class Meta:
        model = DatasetExport
        fields: list[str] = []


class ExperimentFilter(filtering.FilterSet):
    dataset = IdFilter(field_name="dataset_id", label="Dataset id")
    status = django_filters.ChoiceFilter(choices=ExperimentStatus.choices, label="Status")
    name_contains = TextFilter(
        field_name="name", lookup_expr="icontains", label="Name contains (any case)"
    )

    class Meta:
        model = Experiment
        fields: list[str] = []


class ExperimentResultFilter(filtering.FilterSet):
    id_prefix = TextFilter(field_name="key", lookup_expr="startswith", label="Item id starts with")
    has_error = StrictBooleanFilter(method="filter_has_error", label="Failed items only")

    class Meta:
        model = ExperimentResult
        fields: list[str] = []

    def filter_has_error(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.exclude(error="") if value else queryset.filter(error="")
