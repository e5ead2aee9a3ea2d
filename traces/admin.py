"""Admin for the trace store: scoped to the staff user's organizations, read-only for
auditors. List pages never load the large JSON columns (input, output, attributes)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from hitl.admin import TenantScopedAdmin, register_history
from traces import filter_builder
from traces.models import (
    Feedback,
    SavedView,
    Score,
    Span,
    Thread,
    Trace,
    TraceRetention,
    TraceScoreAverage,
)

LARGE_FIELDS = ("input", "output", "metadata")
SPAN_LARGE_FIELDS = ("input", "output", "attributes")


class _TraceStoreAdmin(TenantScopedAdmin):
    # Tables of millions of rows: no exact count on every list page.
    show_full_result_count = False
    list_per_page = 50
    deferred_fields: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            queryset = queryset.defer(*self.deferred_fields)
        return queryset


@admin.register(Thread)
class ThreadAdmin(_TraceStoreAdmin):
    list_display = ["external_id", "project", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["=external_id"]
    list_select_related = ["project", "organization"]
    raw_id_fields = ["project"]
    deferred_fields = ("metadata",)
    date_hierarchy = "created_at"


@admin.register(Trace)
class TraceAdmin(_TraceStoreAdmin):
    list_display = ["external_id", "name", "project", "status", "start_time", "latency_ms",
                    "total_tokens", "cost", "is_placeholder"]  # fmt: skip
    list_filter = ["status", "is_placeholder", "environment", "organization"]
    search_fields = ["=external_id", "^name", "=user_id"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "thread"]
    deferred_fields = LARGE_FIELDS
    date_hierarchy = "created_at"


@admin.register(Span)
class SpanAdmin(_TraceStoreAdmin):
    list_display = ["external_id", "name", "kind", "model", "trace", "status", "start_time",
                    "total_tokens", "cost"]  # fmt: skip
    list_filter = ["kind", "status", "organization"]
    search_fields = ["=external_id", "^name", "=model", "=trace__external_id"]
    list_select_related = ["trace"]
    raw_id_fields = ["project", "trace"]
    deferred_fields = SPAN_LARGE_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The trace shown in the list needs only its name and id.
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            queryset = queryset.defer(*(f"trace__{name}" for name in LARGE_FIELDS))
        return queryset


@admin.register(Score)
class ScoreAdmin(_TraceStoreAdmin):
    list_display = ["name", "value", "label", "source", "source_name", "source_version",
                    "trace", "span", "thread", "author", "updated_at"]  # fmt: skip
    list_filter = ["source", "data_type", "organization"]
    search_fields = ["^name", "=external_id", "=source_name", "=trace__external_id"]
    list_select_related = ["trace", "span", "thread", "author"]
    raw_id_fields = ["project", "trace", "span", "thread", "author"]
    deferred_fields = ("metadata", "rationale")
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            queryset = queryset.defer(
                *(f"trace__{name}" for name in LARGE_FIELDS),
                *(f"span__{name}" for name in SPAN_LARGE_FIELDS),
            )
        return queryset


@admin.register(Feedback)
class FeedbackAdmin(_TraceStoreAdmin):
    list_display = ["kind", "value", "end_user_id", "trace", "span", "thread", "created_at"]
    list_filter = ["kind", "organization"]
    search_fields = ["=external_id", "=end_user_id", "=trace__external_id"]
    list_select_related = ["trace", "span", "thread"]
    raw_id_fields = ["project", "trace", "span", "thread"]
    deferred_fields = ("metadata",)
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            queryset = queryset.defer(
                *(f"trace__{name}" for name in LARGE_FIELDS),
                *(f"span__{name}" for name in SPAN_LARGE_FIELDS),
            )
        return queryset


register_history(Score)


@admin.register(TraceScoreAverage)
class TraceScoreAverageAdmin(_TraceStoreAdmin):
    """Kept by the database from the scores (``traces/score_averages.py``): read here,
    never written, by anyone."""

    list_display = ["name", "average", "scores", "trace", "project"]
    list_filter = ["organization"]
    search_fields = ["^name", "=trace__external_id"]
    list_select_related = ["trace", "project"]
    deferred_fields = tuple(f"trace__{name}" for name in LARGE_FIELDS)

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SavedView)
class SavedViewAdmin(TenantScopedAdmin):
    history_value_words = {"filter_params": filter_builder.as_words}
    list_display = ["name", "project", "created_by", "created_at"]
    list_filter = ["organization"]
    list_select_related = ["project", "created_by"]
    raw_id_fields = ["project", "created_by"]
    search_fields = ["name"]


register_history(SavedView)


@admin.register(TraceRetention)
class TraceRetentionAdmin(TenantScopedAdmin):
    list_display = ["project", "days", "updated_by", "updated_at"]
    list_filter = ["organization"]
    list_select_related = ["project", "updated_by"]
    raw_id_fields = ["project", "updated_by"]


register_history(TraceRetention)
