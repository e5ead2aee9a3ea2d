from typing import Any

from django.contrib import admin

from hitl.admin import TenantScopedAdmin, register_history
from review.comparison.selectors import decision_words as comparison_decision_words
from review.comparison.selectors import split_words as comparison_split_words
from review.models import (
    Adjudication,
    Annotation,
    Assignment,
    Comment,
    QueueFormField,
    QueueItem,
    QueueReviewer,
    ReviewDraft,
    ReviewQueue,
    RoutingRule,
    RoutingRuleDay,
    ScoreConfig,
    ScoreConfigVersion,
)
from review.quality.models import (
    AgreementReport,
    AlignmentMapping,
    AlignmentReport,
    CalibrationResult,
    CalibrationRound,
    CalibrationSet,
    GoldAccuracy,
    GoldAnswer,
    QualityAlert,
    QualitySettings,
    QueueCalibration,
)
from review.services.suggestions import suggestions_in_words
from review.services.thread_routing import thread_conditions_words
from review.services.turns import turn_in_words
from traces import filter_builder


class AnswersByConfigAdmin(TenantScopedAdmin):
    """History names the questions of answer sheets ({"<score config id>": answer})."""

    def history_key_labels(self, field_name: str, keys: set[str]) -> dict[str, str]:
        ids = [int(key) for key in keys if key.isdigit()]
        if not ids:
            return {}
        configs = ScoreConfig.objects.filter(pk__in=ids).values_list("pk", "name")
        return {str(pk): name for pk, name in configs}


@admin.register(ScoreConfig)
class ScoreConfigAdmin(TenantScopedAdmin):
    # History words a rubric's and a question's lists entry by entry (hitl.history).
    history_entry_nouns = {"rubric": "level", "options": "option"}
    list_display = ["name", "project", "data_type", "target", "version", "required", "archived_at"]
    list_filter = ["data_type", "target", "organization"]
    search_fields = ["name", "description"]
    list_select_related = ["project"]


@admin.register(ScoreConfigVersion)
class ScoreConfigVersionAdmin(TenantScopedAdmin):
    list_display = ["config", "version", "created_by", "created_at"]
    list_select_related = ["config", "created_by"]


@admin.register(ReviewQueue)
class ReviewQueueAdmin(TenantScopedAdmin):
    list_display = ["name", "project", "overlap", "assignment_strategy", "blind_mode",
                    "lease_ttl_seconds", "priority", "archived_at"]  # fmt: skip
    list_filter = ["assignment_strategy", "blind_mode", "organization"]
    search_fields = ["name"]
    list_select_related = ["project"]


@admin.register(QueueFormField)
class QueueFormFieldAdmin(TenantScopedAdmin):
    list_display = [
        "queue",
        "position",
        "config",
        "adjudicates",
        "max_dissent_share",
        "numeric_tolerance",
    ]
    list_select_related = ["queue", "config"]


@admin.register(QueueReviewer)
class QueueReviewerAdmin(TenantScopedAdmin):
    list_display = ["queue", "membership", "skills", "languages", "is_senior"]
    list_select_related = ["queue", "membership__user"]


@admin.register(QueueItem)
class QueueItemAdmin(TenantScopedAdmin):
    list_display = ["id", "queue", "target_type", "status", "audit_status", "source", "signal",
                    "priority", "submissions", "live_leases", "created_at"]  # fmt: skip
    list_filter = ["status", "audit_status", "source", "target_type"]
    list_select_related = ["queue"]
    raw_id_fields = ["trace", "span", "thread", "routing_rule", "added_by"]


@admin.register(Assignment)
class AssignmentAdmin(TenantScopedAdmin):
    list_display = ["id", "queue", "item", "reviewer", "state", "leased_at", "expires_at"]
    list_filter = ["state"]
    list_select_related = ["queue", "reviewer"]
    raw_id_fields = ["item"]


@admin.register(ReviewDraft)
class ReviewDraftAdmin(TenantScopedAdmin):
    list_display = ["id", "queue", "item", "reviewer", "conflict", "updated_at"]
    list_filter = ["conflict"]
    list_select_related = ["queue", "reviewer"]
    raw_id_fields = ["item", "assignment"]


@admin.register(Annotation)
class AnnotationAdmin(AnswersByConfigAdmin):
    history_value_words = {"suggestions": suggestions_in_words}

    def history_key_labels(self, field_name: str, keys: set[str]) -> dict[str, str]:
        """A conversation's turns by their trace id ("turn “t-2”"); answers by question."""
        if field_name == "turns":
            return {key: f"turn “{key}”" for key in keys}
        return super().history_key_labels(field_name, keys)

    def history_entry_words(self, field_name: str, key: str, value: Any) -> str | None:
        """A turn's rating in words: "turn 2: bad: “wrong dose”" (None: the plain value)."""
        if field_name != "turns":
            return None
        if value is None:
            return "not rated"
        place = value.get("turn") if isinstance(value, dict) else None
        return f"turn {place}: {turn_in_words(value)}" if place else turn_in_words(value)

    list_display = ["id", "queue", "item", "reviewer", "version", "opened_at", "submitted_at"]
    list_filter = ["queue"]
    search_fields = ["explanation", "reviewer__email"]
    list_select_related = ["queue", "reviewer"]
    raw_id_fields = ["item", "assignment", "trace", "span", "thread"]


@admin.register(Adjudication)
class AdjudicationAdmin(AnswersByConfigAdmin):
    def history_entry_words(self, field_name: str, key: str, value: Any) -> str | None:
        """A comparison decision's preferences by system ("helpfulness: candidate
        preferred (much better); safety: tie") and what the reviewers split on
        ("helpfulness: baseline 1, candidate 1"); any other answer as it is."""
        if key != "preferences" or not isinstance(value, dict):
            return None
        if field_name == "values":
            return comparison_decision_words(value)
        if field_name == "disagreement":
            return comparison_split_words(value)
        return None

    list_display = ["id", "queue", "item", "kind", "adjudicator", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["queue", "adjudicator"]
    raw_id_fields = ["item"]


@admin.register(Comment)
class CommentAdmin(TenantScopedAdmin):
    list_display = ["id", "project", "author", "trace", "span", "item", "created_at"]
    search_fields = ["body", "author__email"]
    list_select_related = ["project", "author"]
    raw_id_fields = ["trace", "span", "item"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(TenantScopedAdmin):
    # A thread rule's conditions read in words in its history (thread rules).
    history_value_words = {
        "filter_params": filter_builder.as_words,
        "thread_conditions": thread_conditions_words,
    }
    list_display = ["name", "project", "queue", "target", "signal", "strategy",
                    "sampling_rate", "daily_cap", "enabled"]  # fmt: skip
    list_filter = ["target", "signal", "strategy", "enabled"]
    list_select_related = ["project", "queue"]


@admin.register(RoutingRuleDay)
class RoutingRuleDayAdmin(TenantScopedAdmin):
    list_display = ["rule", "day", "routed"]
    list_select_related = ["rule"]


for model in (
    ScoreConfig, ReviewQueue, QueueFormField, QueueReviewer, QueueItem, Annotation,
    Adjudication, Comment, RoutingRule,
):  # fmt: skip
    register_history(model)


@admin.register(AgreementReport)
class AgreementReportAdmin(TenantScopedAdmin):
    """One row per computation: the newest is the report served, the rest its drift."""

    list_display = ["queue", "config", "computed_at", "level", "value", "ci_low", "ci_high",
                    "n_items", "n_answers", "duration_ms"]  # fmt: skip
    list_filter = ["level"]
    list_select_related = ["queue", "config"]
    readonly_fields = ["figures"]


@admin.register(CalibrationSet)
class CalibrationSetAdmin(TenantScopedAdmin):
    list_display = ["name", "project", "min_accuracy", "min_agreement", "created_at"]
    search_fields = ["name"]
    list_select_related = ["project"]


@admin.register(GoldAnswer)
class GoldAnswerAdmin(TenantScopedAdmin):
    list_display = ["calibration_set", "trace", "created_at"]
    list_select_related = ["calibration_set"]
    raw_id_fields = ["trace"]


@admin.register(CalibrationRound)
class CalibrationRoundAdmin(TenantScopedAdmin):
    list_display = ["calibration_set", "number", "queue", "scored_at", "agreement"]
    list_select_related = ["calibration_set", "queue"]
    readonly_fields = ["figures"]


@admin.register(CalibrationResult)
class CalibrationResultAdmin(TenantScopedAdmin):
    list_display = ["round", "reviewer", "accuracy", "agreement", "passed", "computed_at"]
    list_filter = ["passed"]
    list_select_related = ["round", "reviewer"]
    readonly_fields = ["figures"]


@admin.register(QueueCalibration)
class QueueCalibrationAdmin(TenantScopedAdmin):
    list_display = ["queue", "calibration_set", "require_pass", "gold_rate", "gold_min_accuracy"]
    list_select_related = ["queue", "calibration_set"]


@admin.register(GoldAccuracy)
class GoldAccuracyAdmin(TenantScopedAdmin):
    list_display = ["queue", "reviewer", "answered", "correct", "accuracy", "alerted_at"]
    list_select_related = ["queue", "reviewer"]


@admin.register(QualityAlert)
class QualityAlertAdmin(TenantScopedAdmin):
    list_display = ["created_at", "project", "kind", "value", "threshold", "window", "message"]
    list_filter = ["kind"]
    list_select_related = ["project"]


for model in (CalibrationSet, GoldAnswer, QueueCalibration):
    register_history(model)


@admin.register(AlignmentMapping)
class AlignmentMappingAdmin(TenantScopedAdmin):
    list_display = ["score_name", "source_version", "config", "project", "metric_threshold"]
    search_fields = ["score_name"]
    list_select_related = ["config", "project"]


@admin.register(AlignmentReport)
class AlignmentReportAdmin(TenantScopedAdmin):
    list_display = ["mapping", "computed_at", "n_items", "value", "kappa", "reason"]
    list_select_related = ["mapping"]
    readonly_fields = ["figures"]


register_history(AlignmentMapping)


@admin.register(QualitySettings)
class QualitySettingsAdmin(TenantScopedAdmin):
    list_display = [
        "project", "agreement_threshold", "alignment_threshold", "window", "updated_by",
        "updated_at",
    ]  # fmt: skip
    list_select_related = ["project", "updated_by"]


register_history(QualitySettings)


# The comparison wing's models (review.comparison.admin registers them).
import review.comparison.admin  # noqa: E402, F401
