from django.contrib import admin

from datasets.models import (
    Dataset,
    DatasetExport,
    DatasetItem,
    DatasetItemRevision,
    DatasetVersion,
    Experiment,
    ExperimentResult,
    QualityGate,
)
from hitl.admin import TenantScopedAdmin, register_history


@admin.register(Dataset)
class DatasetAdmin(TenantScopedAdmin):
    list_display = ["name", "project", "current_version", "created_by", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "description"]
    list_select_related = ["project", "created_by"]


@admin.register(DatasetItem)
class DatasetItemAdmin(TenantScopedAdmin):
    list_display = ["key", "dataset", "source_type", "failure_reason", "updated_at"]
    list_filter = ["source_type"]
    search_fields = ["key", "failure_reason", "explanation"]
    list_select_related = ["dataset"]
    raw_id_fields = ["trace", "span", "thread", "queue_item", "adjudication", "created_by"]


@admin.register(DatasetItemRevision)
class DatasetItemRevisionAdmin(TenantScopedAdmin):
    list_display = ["key", "dataset", "added_in", "removed_in", "content_hash"]
    search_fields = ["key"]
    list_select_related = ["dataset"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(TenantScopedAdmin):
    list_display = ["dataset", "number", "item_count", "added", "changed", "removed",
                    "created_by", "created_by_api_key_prefix", "created_at"]  # fmt: skip
    list_select_related = ["dataset", "created_by"]


@admin.register(DatasetExport)
class DatasetExportAdmin(TenantScopedAdmin):
    list_display = ["id", "dataset", "version", "format", "state", "item_count", "created_at"]
    list_filter = ["state", "format"]
    list_select_related = ["dataset", "version"]


@admin.register(Experiment)
class ExperimentAdmin(TenantScopedAdmin):
    list_display = ["name", "dataset", "version", "status", "created_by_api_key_prefix",
                    "created_at", "finished_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["name"]
    list_select_related = ["dataset", "version"]


@admin.register(ExperimentResult)
class ExperimentResultAdmin(TenantScopedAdmin):
    list_display = ["key", "experiment", "trace_external_id", "updated_at"]
    search_fields = ["key"]
    list_select_related = ["experiment"]
    raw_id_fields = ["revision", "trace"]


@admin.register(QualityGate)
class QualityGateAdmin(TenantScopedAdmin):
    list_display = ["dataset", "min_judge_alignment", "min_reviewer_agreement", "updated_at"]
    list_select_related = ["dataset"]
    raw_id_fields = ["baseline_experiment"]


for model in (Dataset, DatasetItem, Experiment, QualityGate):
    register_history(model)
