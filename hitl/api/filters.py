"""Query parameters of list endpoints: every one is known and valid, or the call is 400.

Every list endpoint reads its filters through a django-filter ``FilterSet``
(``filterset_class`` on the view, defined in the app's ``filters.py`` or ``selectors.py``).
``StrictFilterBackend``, the default filter backend, refuses a parameter the FilterSet
does not define (``?stauts=open`` is a typo, not "no filter") and a value its field
rejects (``?status=bogus``), with a reason per parameter in the error shape, instead of
answering an empty or unfiltered 200. Parameters that steer the response rather than
the rows (pagination, format, ordering) are always allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from hitl.exceptions import DomainError
from hitl.filtering import (  # noqa: F401 (the filters every app uses, kept importable here)
    MAX_TEXT_LENGTH,
    StrictBooleanField,
    StrictBooleanFilter,
    TextFilter,
)

# Query parameters that steer the response, not the filter.
RESPONSE_PARAMETERS = frozenset({"cursor", "page_size", "format", "limit", "offset", "ordering"})
# The largest id PostgreSQL's bigint holds: a larger one is a bad value, not a 500.
MAX_ID = 2**63 - 1


def unknown_parameters(names: Iterable[str], known: Iterable[str]) -> dict[str, list[str]]:
    """Per-parameter errors for ``names`` that are neither filters nor response
    parameters."""
    allowed = set(known) | RESPONSE_PARAMETERS
    return {name: ["Unknown parameter."] for name in sorted(set(names) - allowed)}


def check_list_parameters(
    params: Any, filterset: django_filters.FilterSet | None, *, what: str = "list"
) -> None:
    """Raises ``DomainError`` (400) naming every unknown parameter and every invalid
    value; ``filterset`` (bound to ``params``) may be None for a list without filters."""
    errors = unknown_parameters(params.keys(), filterset.filters if filterset else ())
    if filterset is not None and not filterset.is_valid():
        errors.update({name: list(messages) for name, messages in filterset.errors.items()})
    if errors:
        raise DomainError(f"Invalid {what} parameters.", code="invalid_parameters", details=errors)


class StrictFilterBackend(DjangoFilterBackend):
    """The view's FilterSet on list requests; unknown parameters and invalid values
    answer 400 with a reason per parameter. Other actions ignore query parameters."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        if getattr(view, "action", None) != "list":
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        check_list_parameters(request.query_params, filterset)
        return filterset.qs if filterset is not None else queryset


# --- fields and filters every app uses ---------------------------------------------------


class IdField(forms.IntegerField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a positive integer that fits a bigint."""

    field_class = IdField
