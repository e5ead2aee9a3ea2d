"""Query parameters of the calibration, alignment and alert lists, one FilterSet per list
(``hitl.api.filters.StrictFilterBackend`` refuses unknown parameters and bad values)."""

from __future__ import annotations

import django_filters

from hitl import filtering
from hitl.api.filters import IdFilter, StrictBooleanFilter, TextFilter
from review.quality.models import (
    AlertKind,
    AlignmentMapping,
    CalibrationRound,
    CalibrationSet,
    QualityAlert,
    QueueCalibration,
)


class CalibrationSetFilter(filtering.FilterSet):
    name_contains = TextFilter(field_name="name", lookup_expr="icontains", label="Name contains")

    class Meta:
        model = CalibrationSet
        fields: list[str] = []


class CalibrationRoundFilter(filtering.FilterSet):
    calibration_set = IdFilter(field_name="calibration_set_id", label="Calibration set id")

    class Meta:
        model = CalibrationRound
        fields: list[str] = []


class QueueCalibrationFilter(filtering.FilterSet):
    queue = IdFilter(field_name="queue_id", label="Queue id")
    require_pass = StrictBooleanFilter(field_name="require_pass", label="Gated queues only")

    class Meta:
        model = QueueCalibration
        fields: list[str] = []


class AlignmentMappingFilter(filtering.FilterSet):
    score_name = TextFilter(field_name="score_name", label="Automated score name")
    config = IdFilter(field_name="config_id", label="Score config id")

    class Meta:
        model = AlignmentMapping
        fields: list[str] = []


class QualityAlertFilter(filtering.FilterSet):
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices, label="What fell")
    queue = IdFilter(field_name="queue_id", label="Queue id")

    class Meta:
        model = QualityAlert
        fields: list[str] = []
