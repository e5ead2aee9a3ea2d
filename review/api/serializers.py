from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hitl.api.serializers import StrictSerializer
from hitl.exceptions import DomainError
from projects.notifications import site_reverse
from review.adjudication import DisagreementRule
from review.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Adjudication,
    Annotation,
    Assignment,
    AssignmentStrategy,
    ClaimOrder,
    Comment,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingSignal,
    RoutingStrategy,
    RoutingTarget,
    ScoreConfig,
    ScoreConfigVersion,
    ScoreTarget,
    SuggestionMode,
)
from review.serializer_fields import (
    SPAN_HELP,
    SPAN_ID_IN,
    THREAD_HELP,
    THREAD_ID_IN,
    TRACE_HELP,
    TRACE_ID_IN,
    external_id_field,
    external_id_input,
)
from review.services.suggestions import suggestion_settings_errors
from review.services.thread_routing import (
    IDLE_MINUTES_MAX,
    MIN_TURNS_MAX,
    thread_conditions_check,
)
from traces.models import ScoreDataType

# --- score configs ---------------------------------------------------------------------------


def _priority_field(**kwargs: Any) -> serializers.IntegerField:
    """A priority (a queue's, an item's, a rule's items'): what PostgreSQL's integer holds."""
    return serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, **kwargs)


class ScoreConfigSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoreConfig
        fields = [
            "id", "name", "description", "data_type", "target", "min_value", "max_value",
            "step", "options", "ordered", "rubric", "required", "writes_expected_output",
            "version", "archived_at", "created_at", "updated_at",
        ]  # fmt: skip


class ScoreConfigVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoreConfigVersion
        fields = ["version", "snapshot", "created_at", "created_by"]


class _ConfigFields(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    target = serializers.ChoiceField(choices=ScoreTarget.choices, required=False)
    min_value = serializers.FloatField(required=False, allow_null=True)
    max_value = serializers.FloatField(required=False, allow_null=True)
    step = serializers.FloatField(required=False, allow_null=True)
    options = serializers.JSONField(
        required=False, help_text='Categorical: [{"label": "Correct", "value": 1}, ...]'
    )
    ordered = serializers.BooleanField(
        required=False,
        help_text="Categorical: true when the options are ordered levels (ordinal, ordered "
        "by their values: agreement counts near answers as nearly agreeing), false (the "
        "default) for unordered categories (nominal).",
    )
    rubric = serializers.JSONField(
        help_text='Levels: [{"label": ..., "definition": ..., "examples": ["..."]}, ...]; '
        "at least one level, each with a definition and an example."
    )
    required = serializers.BooleanField(required=False)
    writes_expected_output = serializers.BooleanField(required=False)


class ScoreConfigCreateSerializer(_ConfigFields):
    data_type = serializers.ChoiceField(choices=ScoreDataType.choices)


class ScoreConfigUpdateSerializer(_ConfigFields):
    """Every change makes a new version; the data type of a config never changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


# --- queues ----------------------------------------------------------------------------------


class FormFieldInputSerializer(StrictSerializer):
    """One question of the form and when disagreement on it goes to adjudication."""

    config_id = serializers.IntegerField(min_value=1)
    adjudicates = serializers.BooleanField(
        required=False, default=True, help_text="False: never sends an item to adjudication."
    )
    max_dissent_share = serializers.FloatField(
        required=False,
        default=0.0,
        min_value=0,
        max_value=1,
        help_text="Categorical and boolean: the largest tolerated share of answers that "
        "differ from the most common one. 0 (default): any disagreement adjudicates; a tie "
        "always does.",
    )
    numeric_tolerance = serializers.FloatField(
        required=False,
        default=0.0,
        min_value=0,
        help_text="Numeric: the largest tolerated spread (highest minus lowest answer). "
        "0 (default): any two different answers adjudicate.",
    )


class FormFieldSerializer(serializers.Serializer):
    """A question of a queue's form with its adjudication rule, in numbers and words."""

    config_id = serializers.IntegerField()
    name = serializers.CharField()
    data_type = serializers.ChoiceField(choices=ScoreDataType.choices)
    position = serializers.IntegerField()
    adjudicates = serializers.BooleanField()
    max_dissent_share = serializers.FloatField()
    numeric_tolerance = serializers.FloatField()
    adjudication_rule = serializers.CharField(help_text="The rule in words.")


class ReviewerInputSerializer(StrictSerializer):
    membership_id = serializers.IntegerField(min_value=1)
    skills = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )
    languages = serializers.ListField(
        child=serializers.CharField(max_length=16), required=False, default=list
    )
    is_senior = serializers.BooleanField(required=False, default=False)


class _QueueFields(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    overlap = serializers.IntegerField(required=False, min_value=1, max_value=20)
    assignment_strategy = serializers.ChoiceField(
        choices=AssignmentStrategy.choices, required=False
    )
    claim_order = serializers.ChoiceField(choices=ClaimOrder.choices, required=False)
    blind_mode = serializers.BooleanField(required=False)
    lease_ttl_seconds = serializers.IntegerField(required=False, min_value=30, max_value=604800)
    priority = _priority_field(required=False)
    include_explanation = serializers.BooleanField(required=False)
    include_expected_output = serializers.BooleanField(required=False)
    audit_sample_rate = serializers.FloatField(required=False, min_value=0, max_value=1)
    suggestion_mode = serializers.ChoiceField(
        choices=SuggestionMode.choices,
        required=False,
        help_text="Judge suggestions on the review page: off, after (once each question "
        "is answered) or before (beside each question). The automated score named as a "
        "question suggests its answer.",
    )
    suggestions_in_blind = serializers.BooleanField(
        required=False,
        help_text="A blind queue shows suggestions only when this is true (a 400 says so).",
    )
    suggestion_holdout_percent = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=100,
        help_text="The share of items (drawn per item) reviewed without suggestions: "
        "the queue's own A/B of anchoring.",
    )
    form = FormFieldInputSerializer(many=True, required=False)
    reviewers = ReviewerInputSerializer(many=True, required=False)


class QueueCreateSerializer(_QueueFields):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = suggestion_settings_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class QueueUpdateSerializer(_QueueFields):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False


class QueueSerializer(serializers.ModelSerializer):
    form = serializers.SerializerMethodField()
    reviewers = serializers.SerializerMethodField()

    class Meta:
        model = ReviewQueue
        fields = [
            "id", "name", "description", "overlap", "assignment_strategy", "claim_order",
            "blind_mode",
            "lease_ttl_seconds", "priority", "include_explanation", "include_expected_output",
            "audit_sample_rate", "suggestion_mode", "suggestions_in_blind",
            "suggestion_holdout_percent", "archived_at", "created_at", "form", "reviewers",
        ]  # fmt: skip

    @extend_schema_field(FormFieldSerializer(many=True))
    def get_form(self, queue: ReviewQueue) -> list[dict[str, Any]]:
        return [
            {
                "config_id": f.config_id,
                "name": f.config.name,
                "data_type": f.config.data_type,
                "position": f.position,
                "adjudicates": f.adjudicates,
                "max_dissent_share": f.max_dissent_share,
                "numeric_tolerance": f.numeric_tolerance,
                "adjudication_rule": DisagreementRule.of(f).describe(),
            }
            for f in queue.form_fields.all()
        ]

    def get_reviewers(self, queue: ReviewQueue) -> list[dict[str, Any]]:
        return [
            {
                "membership_id": r.membership_id,
                "user_id": r.membership.user_id,
                "email": r.membership.user.email,
                "skills": r.skills,
                "languages": r.languages,
                "is_senior": r.is_senior,
            }
            for r in queue.reviewers.all()
        ]


class BoardAssigneeSerializer(serializers.Serializer):
    reviewer_id = serializers.IntegerField()
    email = serializers.EmailField()
    done = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    skipped = serializers.IntegerField()
    released = serializers.IntegerField()
    expired = serializers.IntegerField()
    pending = serializers.IntegerField()
    seconds_on_task_avg = serializers.FloatField(allow_null=True)
    seconds_on_task_total = serializers.FloatField()
    reviews_per_hour = serializers.FloatField(
        allow_null=True,
        help_text="3600 / average time on task (opened to submitted); null until the "
        "reviewer has 10 reviews in the queue (a pace is not extrapolated from a few).",
    )


class BoardSerializer(serializers.Serializer):
    columns = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()
    assignees = BoardAssigneeSerializer(many=True)


# --- items -----------------------------------------------------------------------------------


class _ExternalTargets(serializers.ModelSerializer):
    trace = external_id_field("trace", TRACE_HELP)
    span = external_id_field("span", SPAN_HELP)
    thread = external_id_field("thread", THREAD_HELP)


class QueueItemSerializer(_ExternalTargets):
    board_status = serializers.CharField(read_only=True)

    class Meta:
        model = QueueItem
        fields = [
            "id", "queue", "target_type", "trace", "span", "thread", "dataset_item_id", "source",
            "routing_rule", "signal", "source_detail", "priority", "required_skills", "language",
            "assignees", "status", "board_status", "audit_status", "suggestion_arm",
            "live_leases", "submissions", "completed_at", "created_at",
        ]  # fmt: skip


# The shapes of an item's detail (review.selectors.item_view), for the schema. Traces,
# spans and threads are named by the ids their client sent, as everywhere.


class ItemTargetTraceSerializer(serializers.Serializer):
    id = serializers.CharField(help_text=TRACE_HELP.removesuffix(" null: none."))
    external_id = serializers.CharField(help_text="The same as id.")
    name = serializers.CharField()
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    metadata = serializers.JSONField()
    tags = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    latency_ms = serializers.FloatField(allow_null=True)
    start_time = serializers.DateTimeField(allow_null=True)


class ItemTargetSpanSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The span's id as it was sent, within trace_id.")
    external_id = serializers.CharField(help_text="The same as id.")
    trace_id = serializers.CharField(help_text="The span's trace, by the id it was sent with.")
    kind = serializers.CharField()
    name = serializers.CharField()
    model = serializers.CharField()
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    status = serializers.CharField()
    error_message = serializers.CharField()


class ItemTargetThreadSerializer(serializers.Serializer):
    id = serializers.CharField(help_text=THREAD_HELP.removesuffix(" null: none."))
    external_id = serializers.CharField(help_text="The same as id.")


class ItemTargetSerializer(serializers.Serializer):
    """What the reviewer judges; only the parts the target has are present."""

    type = serializers.CharField(help_text="trace, span, thread or dataset_item.")
    trace = ItemTargetTraceSerializer(required=False)
    span = ItemTargetSpanSerializer(required=False)
    thread = ItemTargetThreadSerializer(required=False)
    dataset_item = serializers.JSONField(
        required=False, allow_null=True, help_text="A dataset item target (null: it is gone)."
    )


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


SUGGESTIONS_HELP = (
    "What the reviewer was shown of the judges' suggestions: mode, the item's A/B arm, and "
    "per config id the suggested value, the score it came from, visible (before, after, "
    "panel, no), accepted_by_key and outcome (accepted, changed, unanswered). {} before "
    "suggestions existed."
)


class ItemSuggestionsSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=SuggestionMode.choices, help_text="How this item's reviewers see suggestions."
    )
    arm = serializers.CharField(help_text="shown or hidden: the item's A/B arm.")
    questions = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Config id -> value, text, score_id, score_name, source, source_name, "
        "source_version; empty when the mode is off, or withheld.",
    )
    withheld = serializers.BooleanField(
        help_text="True while you hold the item's lease in a queue whose mode is after: the "
        "suggestions show once you have answered (in the submit's annotation)."
    )


class ItemAnnotationSerializer(serializers.Serializer):
    """One answer on the item, as the blind rule lets you see it."""

    id = serializers.IntegerField()
    queue_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    target_type = serializers.CharField()
    trace_id = serializers.CharField(allow_null=True, help_text=TRACE_HELP)
    span_id = serializers.CharField(allow_null=True, help_text=SPAN_HELP)
    thread_id = serializers.CharField(allow_null=True, help_text=THREAD_HELP)
    reviewer = PersonRefSerializer()
    values = serializers.DictField()
    config_versions = serializers.DictField()
    explanation = serializers.CharField()
    expected_output = serializers.JSONField(allow_null=True)
    failure_modes = serializers.ListField(child=serializers.CharField())
    suggestions = serializers.JSONField(help_text=SUGGESTIONS_HELP)
    version = serializers.IntegerField()
    opened_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ItemScoreSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    data_type = serializers.ChoiceField(choices=ScoreDataType.choices)
    value = serializers.FloatField(allow_null=True)
    label = serializers.CharField()
    source = serializers.CharField()
    source_name = serializers.CharField()
    author_id = serializers.IntegerField(allow_null=True)
    span_id = serializers.CharField(
        allow_null=True, help_text="The span's id as it was sent; null: on the trace or thread."
    )
    created_at = serializers.DateTimeField()


class QueueItemDetailSerializer(QueueItemSerializer):
    target = serializers.SerializerMethodField()
    form = serializers.SerializerMethodField()
    revealed = serializers.SerializerMethodField()
    annotations = serializers.SerializerMethodField()
    scores = serializers.SerializerMethodField()
    suggestions = serializers.SerializerMethodField()
    disagreement = serializers.SerializerMethodField()
    my_assignment = serializers.SerializerMethodField()

    class Meta(QueueItemSerializer.Meta):
        fields = [
            *QueueItemSerializer.Meta.fields,
            "target", "form", "revealed", "annotations", "scores", "suggestions",
            "disagreement", "my_assignment",
        ]  # fmt: skip

    def _detail(self) -> dict[str, Any]:
        return self.context["detail"]

    @extend_schema_field(ItemTargetSerializer)
    def get_target(self, item: QueueItem) -> dict[str, Any]:
        return self._detail()["target"]

    def get_form(self, item: QueueItem) -> list[dict[str, Any]]:
        return self._detail()["form"]

    @extend_schema_field(serializers.BooleanField())
    def get_revealed(self, item: QueueItem) -> bool:
        return self._detail()["revealed"]

    @extend_schema_field(ItemAnnotationSerializer(many=True))
    def get_annotations(self, item: QueueItem) -> list[dict[str, Any]]:
        return self._detail()["annotations"]

    @extend_schema_field(ItemScoreSerializer(many=True))
    def get_scores(self, item: QueueItem) -> list[dict[str, Any]]:
        return self._detail()["scores"]

    @extend_schema_field(ItemSuggestionsSerializer)
    def get_suggestions(self, item: QueueItem) -> dict[str, Any]:
        return self._detail()["suggestions"]

    def get_disagreement(self, item: QueueItem) -> dict[str, Any] | None:
        return self._detail()["disagreement"]

    def get_my_assignment(self, item: QueueItem) -> dict[str, Any] | None:
        return self._detail()["my_assignment"]


class ItemCreateSerializer(StrictSerializer):
    trace_id = external_id_input(TRACE_ID_IN + " Alone: the trace is the target.")
    span_id = external_id_input(SPAN_ID_IN)
    thread_id = external_id_input(THREAD_ID_IN)
    dataset_item_id = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="A dataset item of the project: reviewers label its expected output.",
    )
    priority = _priority_field(required=False, default=0)
    required_skills = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )
    language = serializers.CharField(max_length=16, required=False, default="", allow_blank=True)
    assignees = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )


class BulkAddSerializer(StrictSerializer):
    filter = serializers.DictField(
        help_text="The trace list's filter parameters, exactly as the trace list takes them."
    )
    priority = _priority_field(required=False, default=0)
    required_skills = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )
    language = serializers.CharField(max_length=16, required=False, default="", allow_blank=True)


class BulkAddResultSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    added = serializers.IntegerField()
    already_queued = serializers.IntegerField()


class BulkUpdateSerializer(StrictSerializer):
    item_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=5000
    )
    priority = _priority_field(required=False)
    assignees = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)


class TakeBackSerializer(StrictSerializer):
    reviewer_id = serializers.IntegerField(
        min_value=1, required=False, help_text="Only this reviewer's lease; empty: every one."
    )


# --- claiming and answering ----------------------------------------------------------------------


class AssignmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = [
            "id", "queue", "item", "reviewer", "state", "leased_at", "expires_at", "ended_at",
            "skip_reason",
        ]  # fmt: skip


class ClaimSerializer(serializers.Serializer):
    assignment = AssignmentSerializer()
    item = QueueItemDetailSerializer()


class AnswersSerializer(StrictSerializer):
    values = serializers.DictField(
        help_text="Score config id -> answer (number, option label, true/false or text)."
    )
    explanation = serializers.CharField(required=False, allow_blank=True, default="")
    expected_output = serializers.JSONField(required=False, default=None)
    failure_modes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list
    )
    suggestions_seen = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=1000,
        help_text="Config ids whose judge suggestion you displayed (the item's suggestions); "
        "refused when the queue's mode showed none.",
    )
    suggestions_accepted = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=1000,
        help_text="Config ids whose suggestion the reviewer took as their answer.",
    )
    turns = serializers.DictField(
        required=False,
        default=dict,
        help_text="A conversation (thread item) rated turn by turn: the turn's trace id -> "
        '{"rating": "good" | "bad" | null, "note": text} (docs/threads.md).',
    )


class SkipSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000)


class AnnotationSerializer(_ExternalTargets):
    seconds_on_task = serializers.FloatField(read_only=True)

    class Meta:
        model = Annotation
        fields = [
            "id", "queue", "item", "reviewer", "target_type", "trace", "span", "thread",
            "dataset_item_id", "values", "config_versions", "explanation", "expected_output",
            "failure_modes", "suggestions", "turns", "version", "opened_at", "submitted_at",
            "updated_at", "seconds_on_task",
        ]  # fmt: skip


class AnnotationUpdateSerializer(StrictSerializer):
    version = serializers.IntegerField(
        min_value=1, help_text="The version you read; a stale one is refused with 409."
    )
    values = serializers.DictField(required=False)
    explanation = serializers.CharField(required=False, allow_blank=True)
    expected_output = serializers.JSONField(required=False)
    failure_modes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    turns = serializers.DictField(
        required=False,
        help_text="A conversation's turn ratings, replacing the stored ones: the turn's "
        'trace id -> {"rating": "good" | "bad" | null, "note": text} (docs/threads.md).',
    )


class AdjudicateSerializer(StrictSerializer):
    values = serializers.DictField(
        required=False,
        help_text="The final answers by score config id (every item but a comparison).",
    )
    explanation = serializers.CharField(required=False, allow_blank=True, default="")
    expected_output = serializers.JSONField(required=False, default=None)
    preferences = serializers.DictField(
        required=False,
        help_text=(
            "A comparison item's final preference per criterion, as a reviewer answers "
            "(docs/comparison.md) with letters naming the outputs in their canonical "
            'order: {"helpfulness": {"choice": "b"}}, {"choice": "tie"}, '
            '{"ranking": ["c", "a", "b"]}.'
        ),
    )


class AdjudicationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Adjudication
        fields = [
            "id", "queue", "item", "kind", "adjudicator", "values", "config_versions",
            "explanation", "expected_output", "disagreement", "created_at",
        ]  # fmt: skip


# --- comments --------------------------------------------------------------------------------


class CommentSerializer(serializers.ModelSerializer):
    trace = external_id_field("trace", TRACE_HELP)
    span = external_id_field("span", SPAN_HELP)
    author_email = serializers.EmailField(source="author.email", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = [
            "id", "trace", "span", "item", "author", "author_email", "body", "mentions",
            "created_at", "edited_at", "url",
        ]  # fmt: skip

    def get_url(self, comment: Comment) -> str:
        """The comment's stable address."""
        organization = self.context.get("organization")
        project = self.context.get("project")
        if organization is None or project is None:
            return ""
        return site_reverse(
            "comment-detail", org_slug=organization.slug, project_slug=project.slug, pk=comment.pk
        )


class CommentCreateSerializer(StrictSerializer):
    body = serializers.CharField(max_length=20000)
    trace_id = external_id_input(TRACE_ID_IN + " Alone: a comment on the trace.")
    span_id = external_id_input(SPAN_ID_IN + " With item_id too: a span the item shows.")
    item_id = serializers.IntegerField(required=False, min_value=1)


class CommentUpdateSerializer(StrictSerializer):
    body = serializers.CharField(max_length=20000)


# --- routing rules ---------------------------------------------------------------------------


class ThreadConditionsSerializer(serializers.Serializer):
    """A thread rule's conditions as the schema shows them (any combination; they hold
    together, with the rule's ``filter_params`` applied to any turn). Checked by
    ``review.services.thread_routing.thread_conditions_check``: an unknown key, a flag
    that is not a boolean, a number that is not a whole number within its bounds is
    refused."""

    thumbs_down = serializers.BooleanField(
        required=False, help_text="A turn has a thumbs-down from an end user."
    )
    error = serializers.BooleanField(
        required=False, help_text="A turn failed: a trace or one of its spans has error status."
    )
    min_turns = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MIN_TURNS_MAX,
        help_text="The thread has at least this many turns (traces).",
    )
    idle_minutes = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=IDLE_MINUTES_MAX,
        help_text="The conversation ended: no turn arrived or changed for this many minutes.",
    )


@extend_schema_field(ThreadConditionsSerializer)
class ThreadConditionsField(serializers.Field):
    """A thread rule's conditions: the rule services' own check, refused with the
    reason beside each key (400)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return thread_conditions_check(data)
        except DomainError as exc:
            raise serializers.ValidationError(exc.details) from exc

    def to_representation(self, value: Any) -> Any:
        return value if isinstance(value, dict) else {}


TARGET_HELP = (
    "What the rule routes: trace (default), or thread: whole conversations whose turns meet "
    "thread_conditions (and, on any turn, filter_params). Thread rules match and sample."
)
THREAD_CONDITIONS_HELP = (
    "Thread rules only: any of thumbs_down, error (booleans), min_turns, idle_minutes "
    "(whole numbers); they hold together."
)


class RoutingRuleSerializer(serializers.ModelSerializer):
    thread_conditions = ThreadConditionsField(read_only=True, help_text=THREAD_CONDITIONS_HELP)
    failing_since = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When routing started failing on this rule (null: it routes). Cleared when "
        "it routes again or its filter is edited.",
    )
    last_error = serializers.CharField(
        read_only=True,
        help_text="Why routing failed on this rule, in one line (empty while it routes).",
    )

    class Meta:
        model = RoutingRule
        fields = [
            "id", "name", "queue", "signal", "filter_params", "sampling_rate", "daily_cap",
            "item_priority", "enabled", "strategy", "strategy_params", "source_queue",
            "target", "thread_conditions", "created_at", "failing_since", "last_error",
        ]  # fmt: skip


# Routing strategies: how a rule picks among the traces its filter matches.
STRATEGY_PARAMS_HELP = (
    "The strategy's parameters: uncertainty_band {score_name, low, high}; judges_disagree "
    "{score_a, score_b, min_difference (numeric; absent: any difference)}; none for "
    "match_and_sample and reviewers_disagree."
)
SOURCE_QUEUE_HELP = (
    "reviewers_disagree only: the queue whose items' disagreements this rule routes to its "
    "own queue (the extra or senior reviewers' pool)."
)


class RoutingRuleCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    queue_id = serializers.IntegerField(min_value=1)
    signal = serializers.ChoiceField(choices=RoutingSignal.choices)
    filter_params = serializers.DictField(
        help_text='A trace filter, as the trace list takes it (e.g. {"status": "error"}); '
        "may be empty ({}) for a strategy other than match_and_sample."
    )
    sampling_rate = serializers.FloatField(required=False, default=1.0)
    daily_cap = serializers.IntegerField(required=False, allow_null=True, default=None)
    item_priority = _priority_field(required=False, default=0)
    enabled = serializers.BooleanField(required=False, default=True)
    strategy = serializers.ChoiceField(
        choices=RoutingStrategy.choices, required=False, default=RoutingStrategy.MATCH_AND_SAMPLE
    )
    strategy_params = serializers.DictField(
        required=False, default=dict, help_text=STRATEGY_PARAMS_HELP
    )
    source_queue_id = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text=SOURCE_QUEUE_HELP
    )
    target = serializers.ChoiceField(
        choices=RoutingTarget.choices,
        required=False,
        default=RoutingTarget.TRACE,
        help_text=TARGET_HELP,
    )
    thread_conditions = ThreadConditionsField(
        required=False, default=dict, help_text=THREAD_CONDITIONS_HELP
    )


class RoutingRuleUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    queue_id = serializers.IntegerField(min_value=1, required=False)
    signal = serializers.ChoiceField(choices=RoutingSignal.choices, required=False)
    filter_params = serializers.DictField(required=False)
    sampling_rate = serializers.FloatField(required=False)
    daily_cap = serializers.IntegerField(required=False, allow_null=True)
    item_priority = _priority_field(required=False)
    enabled = serializers.BooleanField(required=False)
    strategy = serializers.ChoiceField(choices=RoutingStrategy.choices, required=False)
    strategy_params = serializers.DictField(required=False, help_text=STRATEGY_PARAMS_HELP)
    source_queue_id = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text=SOURCE_QUEUE_HELP
    )
    target = serializers.ChoiceField(
        choices=RoutingTarget.choices, required=False, help_text=TARGET_HELP
    )
    thread_conditions = ThreadConditionsField(required=False, help_text=THREAD_CONDITIONS_HELP)


class RoutingRulePreviewInputSerializer(StrictSerializer):
    """A rule not yet saved, for its preview: what it would route now."""

    target = serializers.ChoiceField(
        choices=RoutingTarget.choices,
        required=False,
        default=RoutingTarget.TRACE,
        help_text=TARGET_HELP,
    )
    filter_params = serializers.DictField(
        required=False, default=dict, help_text="A trace filter (on any turn, for a thread rule)."
    )
    thread_conditions = ThreadConditionsField(
        required=False, default=dict, help_text=THREAD_CONDITIONS_HELP
    )
    sampling_rate = serializers.FloatField(
        required=False, default=1.0, min_value=0.0001, max_value=1
    )
    strategy = serializers.ChoiceField(
        choices=RoutingStrategy.choices, required=False, default=RoutingStrategy.MATCH_AND_SAMPLE
    )
    strategy_params = serializers.DictField(
        required=False, default=dict, help_text=STRATEGY_PARAMS_HELP
    )
    source_queue_id = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text=SOURCE_QUEUE_HELP
    )
    queue_id = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="The queue the rule would route to: threads already in it are flagged.",
    )


class RoutingPreviewTraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField(help_text="The trace's id, as the client sent it.")
    name = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField(help_text="Why the rule's strategy picks it.")
    taken = serializers.BooleanField(help_text="Whether the sampling draw takes it.")


class RoutingPreviewThreadSerializer(serializers.Serializer):
    thread_id = serializers.CharField(help_text="The thread's id, as the client sent it.")
    turns = serializers.IntegerField(help_text="How many turns (traces) it has.")
    last_activity = serializers.DateTimeField(
        allow_null=True, help_text="When its latest turn arrived or changed."
    )
    first_message = serializers.CharField(
        help_text="The first turn's input in one short line (its first user message)."
    )
    reason = serializers.CharField(help_text="Why it matches, in words.")
    taken = serializers.BooleanField(help_text="Whether the sampling draw takes it.")
    queued = serializers.BooleanField(help_text="Whether it is in the rule's queue already.")


class RoutingPreviewSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=RoutingTarget.choices)
    matched = serializers.IntegerField(
        help_text="How many match: of the newest traces (trace rules), of the threads with a "
        "turn within the rule's idle time plus a day (thread rules)."
    )
    exact = serializers.BooleanField(
        help_text="True for a saved rule's own sampling draw; false: an example draw."
    )
    traces = RoutingPreviewTraceSerializer(many=True, help_text="Trace rules: the newest matches.")
    threads = RoutingPreviewThreadSerializer(
        many=True, help_text="Thread rules: the matches with the latest activity."
    )
