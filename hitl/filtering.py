"""Filter values checked in Python before any SQL: the one validation path of every filter.

Every FilterSet of the project inherits ``FilterSet`` below (a test keeps it so). When the
class is built, each number and time filter gets a form field that refuses what the
database column cannot compare against, with a reason under the parameter's name:

- a number for a ``FloatField`` (or a method filter with no column) is a finite float:
  ``NaN``, ``Infinity`` and ``1e400`` are refused, ``1e-999999`` reads as 0;
- a number for a ``DecimalField`` has at most the column's decimal places and digits
  (``cost_min=1e-999999`` is "at most 8 decimal places", not a PostgreSQL error);
- a number for an integer column is an integer within that column's range;
- a time is ISO 8601 with a UTC offset within +-14:00, the range real time zones use
  (PostgreSQL refuses offsets past +-15:59; no zone is past +-14:00).

Text values get Django's own refusal of NUL characters (``forms.CharField``), and
``hitl.text`` refuses lone surrogates before any request data reaches a form.

The filters of trace search (``traces.filters``) are stored in routing rules, saved
views and alerts and run later by tasks: those are validated by the same FilterSet when
they are saved, so a stored filter is one that ran.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db import connection, models
from django_filters.fields import IsoDateTimeField
from django_filters.utils import get_model_field
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

MAX_UTC_OFFSET = timedelta(hours=14)
MAX_TEXT_LENGTH = 256

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

_INTEGER_FIELDS = (
    models.SmallIntegerField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
)


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no); anything else is an error, not 'no filter'."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise forms.ValidationError("Use true or false.")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class TextFilter(django_filters.CharFilter):
    """Text of at most ``MAX_TEXT_LENGTH`` characters (NUL refused by Django's field)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_TEXT_LENGTH)
        super().__init__(*args, **kwargs)


class FiniteFloatField(forms.FloatField):
    """A finite float (Django's FloatField refuses NaN and the infinities); ``1e400``
    overflows to infinity and is refused the same way."""

    default_error_messages = {"invalid": "Enter a finite number."}


class BoundedDateTimeField(IsoDateTimeField):
    """An ISO 8601 time whose UTC offset is one a real time zone uses (+-14:00)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is not None:
            check_utc_offset(parsed)
        return parsed


def check_utc_offset(value: datetime) -> None:
    """Raises a ``ValidationError`` for an offset past +-14:00."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise forms.ValidationError("The UTC offset must be between -14:00 and +14:00.")


def integer_range(field: models.Field) -> tuple[int | None, int | None]:
    """The smallest and largest value the database stores in an integer column."""
    return connection.ops.integer_field_range(field.get_internal_type())


def _model_field(model: type[models.Model] | None, name: str | None) -> models.Field | None:
    if model is None or not name:
        return None
    field = get_model_field(model, name)
    return field if isinstance(field, models.Field) else None


def bound_number_filter(filter_: django_filters.Filter, column: models.Field | None) -> None:
    """Sets ``filter_``'s form field to refuse what ``column`` cannot compare against.
    A filter with a field class of its own (``IdField``) keeps it: that class bounds
    itself."""
    if filter_.field_class not in (forms.DecimalField, forms.IntegerField, forms.FloatField):
        return
    extra = filter_.extra
    if isinstance(column, models.DecimalField):
        filter_.field_class = forms.DecimalField
        extra.setdefault("max_digits", column.max_digits)
        extra.setdefault("decimal_places", column.decimal_places)
    elif isinstance(column, _INTEGER_FIELDS) or filter_.field_class is forms.IntegerField:
        filter_.field_class = forms.IntegerField
        low, high = integer_range(column) if column is not None else (-(2**63), 2**63 - 1)
        if low is not None:
            extra.setdefault("min_value", low)
        if high is not None:
            extra.setdefault("max_value", high)
    else:
        filter_.field_class = FiniteFloatField


class FilterSet(django_filters.FilterSet):
    """django-filter's FilterSet whose number and time filters are checked in Python
    (see the module docstring). Declared and generated filters alike, so a filter
    added tomorrow is bounded without code of its own."""

    @classmethod
    def get_filters(cls) -> dict[str, django_filters.Filter]:
        filters = super().get_filters()
        model = cls._meta.model
        for filter_ in filters.values():
            column = _model_field(model, filter_.field_name)
            if isinstance(filter_, django_filters.NumberFilter):
                bound_number_filter(filter_, column)
            elif isinstance(
                filter_, django_filters.DateTimeFilter | django_filters.IsoDateTimeFilter
            ):
                filter_.field_class = BoundedDateTimeField
        return filters
