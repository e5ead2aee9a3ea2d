"""Comparison's models in the admin: read-only for auditors, with their edit history
(imported by ``review.admin``, which Django discovers)."""

from django.contrib import admin

from hitl.admin import TenantScopedAdmin, register_history
from review.comparison.models import ComparisonItem, ComparisonOutput, ComparisonQueue, Preference


@admin.register(ComparisonItem)
class ComparisonItemAdmin(TenantScopedAdmin):
    list_display = ["id", "project", "source", "group_key", "created_at"]
    list_filter = ["source"]
    search_fields = ["group_key"]
    list_select_related = ["project"]


@admin.register(ComparisonOutput)
class ComparisonOutputAdmin(TenantScopedAdmin):
    list_display = ["id", "comparison", "position", "label", "source"]
    list_filter = ["source"]
    search_fields = ["label"]
    raw_id_fields = ["comparison", "trace"]


@admin.register(ComparisonQueue)
class ComparisonQueueAdmin(TenantScopedAdmin):
    list_display = ["id", "queue", "n_way", "allow_strength", "updated_at"]
    list_select_related = ["queue"]


@admin.register(Preference)
class PreferenceAdmin(TenantScopedAdmin):
    list_display = ["id", "queue", "item", "reviewer", "criterion", "winner", "submitted_at"]
    search_fields = ["criterion"]  # free text: a list filter would offer every organization's
    list_select_related = ["queue", "reviewer", "winner"]
    raw_id_fields = ["item", "comparison", "assignment", "annotation", "winner"]


for model in (ComparisonItem, ComparisonOutput, ComparisonQueue, Preference):
    register_history(model)
