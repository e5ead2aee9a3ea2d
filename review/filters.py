"""The query parameters of review's list endpoints, one FilterSet per list.

The views name them as ``filterset_class``; ``hitl.api.filters.StrictFilterBackend``
refuses unknown parameters and invalid values with 400.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import QuerySet

from hitl import filtering
from hitl.api.filters import MAX_TEXT_LENGTH, IdFilter, StrictBooleanFilter, TextFilter
from review import selectors
from review.models import (
    Adjudication,
    AdjudicationKind,
    Annotation,
    Assignment,
    AssignmentState,
    AuditStatus,
    BoardStatus,
    Comment,
    ItemSource,
    ItemStatus,
    ItemTarget,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingSignal,
    RoutingTarget,
    ScoreConfig,
)
from traces.models import ScoreDataType


class _ArchivedFilterSet(filtering.FilterSet):
    """Archived rows are left out unless ``archived=true`` asks for them too."""

    archived = StrictBooleanFilter(
        method="filter_archived", label="true: include archived ones (default: active only)"
    )

    def filter_archived(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset  # applied in filter_queryset, where the default is known

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("archived"):
            queryset = queryset.filter(archived_at__isnull=True)
        return queryset


class ScoreConfigFilter(_ArchivedFilterSet):
    data_type = django_filters.ChoiceFilter(choices=ScoreDataType.choices, label="Answer type")

    class Meta:
        model = ScoreConfig
        fields: list[str] = []


class QueueFilter(_ArchivedFilterSet):
    name_contains = TextFilter(
        field_name="name", lookup_expr="icontains", label="Name contains (any case)"
    )
    blind_mode = StrictBooleanFilter(field_name="blind_mode", label="Blind queues only (or not)")

    class Meta:
        model = ReviewQueue
        fields: list[str] = []


class QueueItemFilter(filtering.FilterSet):
    status = django_filters.ChoiceFilter(choices=ItemStatus.choices, label="Item status")
    board_status = django_filters.ChoiceFilter(
        choices=BoardStatus.choices, method="filter_board_status", label="Board column"
    )
    audit_status = django_filters.ChoiceFilter(choices=AuditStatus.choices, label="Senior audit")
    source = django_filters.ChoiceFilter(choices=ItemSource.choices, label="How it was added")
    target_type = django_filters.ChoiceFilter(choices=ItemTarget.choices, label="Trace, span…")
    assignee = IdFilter(method="filter_assignee", label="User id the item is pushed to")

    class Meta:
        model = QueueItem
        fields: list[str] = []

    def filter_board_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return selectors.filter_by_board_status(queryset, value)

    def filter_assignee(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(assignees__contains=[int(value)])


class AssignmentFilter(filtering.FilterSet):
    state = django_filters.ChoiceFilter(choices=AssignmentState.choices, label="Lease state")
    queue = IdFilter(field_name="queue_id", label="Queue id")

    class Meta:
        model = Assignment
        fields: list[str] = []


class AnnotationFilter(filtering.FilterSet):
    queue = IdFilter(field_name="queue_id", label="Queue id")
    item = IdFilter(field_name="item_id", label="Queue item id")
    reviewer = IdFilter(field_name="reviewer_id", label="Reviewer's user id")
    trace = TextFilter(field_name="trace__external_id", label="Trace id (as it was sent)")

    class Meta:
        model = Annotation
        fields: list[str] = []


class AdjudicationFilter(filtering.FilterSet):
    queue = IdFilter(field_name="queue_id", label="Queue id")
    item = IdFilter(field_name="item_id", label="Queue item id")
    kind = django_filters.ChoiceFilter(choices=AdjudicationKind.choices, label="Kind")

    class Meta:
        model = Adjudication
        fields: list[str] = []


class CommentFilter(filtering.FilterSet):
    q = django_filters.CharFilter(
        method="filter_text",
        max_length=MAX_TEXT_LENGTH,
        label="Full-text search in comment bodies (web search syntax)",
    )
    trace = TextFilter(field_name="trace__external_id", label="Trace id (as it was sent)")
    span = TextFilter(field_name="span__external_id", label="Span id (as sent; with trace)")
    item = IdFilter(field_name="item_id", label="Queue item id")
    author = IdFilter(field_name="author_id", label="Author's user id")
    mentions = IdFilter(method="filter_mentions", label="User id mentioned")

    class Meta:
        model = Comment
        fields: list[str] = []

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        search = SearchQuery(value, config="english", search_type="websearch")
        return queryset.annotate(search=SearchVector("body", config="english")).filter(
            search=search
        )

    def filter_mentions(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(mentions__contains=[int(value)])


class RoutingRuleFilter(filtering.FilterSet):
    queue = IdFilter(field_name="queue_id", label="Queue id")
    signal = django_filters.ChoiceFilter(choices=RoutingSignal.choices, label="Signal")
    enabled = StrictBooleanFilter(field_name="enabled", label="Enabled rules only (or not)")
    target = django_filters.ChoiceFilter(
        choices=RoutingTarget.choices, label="What the rules route: trace or thread"
    )

    class Meta:
        model = RoutingRule
        fields: list[str] = []
