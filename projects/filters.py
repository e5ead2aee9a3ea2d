"""The query parameters of projects' list endpoints, one FilterSet per list (refused
when unknown or invalid by ``hitl.api.filters.StrictFilterBackend``)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils import timezone

from hitl import filtering
from hitl.api.filters import StrictBooleanFilter, TextFilter
from projects.models import ApiKey, Invitation, Membership, Organization, Project, Role


class OrganizationFilter(filtering.FilterSet):
    name_contains = TextFilter(
        field_name="name", lookup_expr="icontains", label="Name contains (any case)"
    )

    class Meta:
        model = Organization
        fields: list[str] = []


class MemberFilter(filtering.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices, label="Role")
    email = TextFilter(field_name="user__email", lookup_expr="iexact", label="Email (any case)")

    class Meta:
        model = Membership
        fields: list[str] = []


class InvitationStatus:
    choices = (
        ("pending", "Pending"),
        ("accepted", "Accepted"),
        ("revoked", "Revoked"),
        ("expired", "Expired"),
    )


class InvitationFilter(filtering.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=InvitationStatus.choices, method="filter_status", label="Status"
    )
    email = TextFilter(field_name="email", lookup_expr="iexact", label="Email (any case)")

    class Meta:
        model = Invitation
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "accepted":
            return queryset.filter(accepted_at__isnull=False)
        if value == "revoked":
            return queryset.filter(accepted_at__isnull=True, revoked_at__isnull=False)
        open_ = queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        if value == "expired":
            return open_.filter(expires_at__lte=timezone.now())
        return open_.filter(expires_at__gt=timezone.now())


class ProjectFilter(filtering.FilterSet):
    name_contains = TextFilter(
        field_name="name", lookup_expr="icontains", label="Name contains (any case)"
    )

    class Meta:
        model = Project
        fields: list[str] = []


class ApiKeyFilter(filtering.FilterSet):
    active = StrictBooleanFilter(method="filter_active", label="true: not revoked; false: revoked")

    class Meta:
        model = ApiKey
        fields: list[str] = []

    def filter_active(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.filter(revoked_at__isnull=value)
