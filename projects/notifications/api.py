"""Destinations (Slack and signed webhooks) and their delivery log, for organization
admins: CRUD, rotate the signing secret, send a test event, list deliveries with every
attempt, redeliver."""

from __future__ import annotations

from urllib.parse import urlsplit

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hitl import filtering
from hitl.api.filters import StrictBooleanFilter
from hitl.api.serializers import StrictSerializer
from hitl.api.views import validated
from hitl.exceptions import DomainError
from projects.api.bases import OrganizationScopedViewSet
from projects.models import (
    ALL_ROLES,
    MANAGE_ROLES,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    Destination,
    DestinationKind,
    NotificationPreference,
    PersonalChannel,
    Project,
    QueueAlert,
)
from projects.notifications import delivery as delivery_services
from projects.notifications import destinations as destination_services
from projects.notifications import personal as personal_services
from projects.notifications import queue_alerts as queue_alert_services
from projects.notifications.catalogue import EVENT_TYPES, TEST

# --- filters -------------------------------------------------------------------------------


class DestinationFilter(filtering.FilterSet):
    kind = django_filters.ChoiceFilter(choices=DestinationKind.choices, label="Kind")
    enabled = StrictBooleanFilter(field_name="enabled", label="Enabled")

    class Meta:
        model = Destination
        fields: list[str] = []


class DeliveryFilter(filtering.FilterSet):
    destination = django_filters.NumberFilter(field_name="destination_id", label="Destination id")
    state = django_filters.ChoiceFilter(choices=DeliveryState.choices, label="State")
    event_type = django_filters.ChoiceFilter(
        field_name="event__type",
        choices=[(name, name) for name in [*EVENT_TYPES, TEST]],
        label="Event type",
    )

    class Meta:
        model = Delivery
        fields: list[str] = []


class QueueAlertFilter(filtering.FilterSet):
    queue = django_filters.NumberFilter(field_name="queue_id", label="Queue id")
    project = django_filters.NumberFilter(field_name="project_id", label="Project id")

    class Meta:
        model = QueueAlert
        fields: list[str] = []


# --- serializers ---------------------------------------------------------------------------


def shown_url(destination: Destination) -> str:
    """The URL without what makes it a credential: a Slack webhook's path, any query."""
    parts = urlsplit(destination.url)
    if destination.kind == DestinationKind.SLACK:
        return f"{parts.scheme}://{parts.netloc}/…"
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


class DestinationSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    project_id = serializers.IntegerField(allow_null=True, read_only=True)
    has_previous_secret = serializers.SerializerMethodField()
    has_bot_token = serializers.SerializerMethodField(
        help_text="A Slack destination with a bot token sends people direct messages."
    )

    class Meta:
        model = Destination
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "project_id",
            "event_types",
            "filter_queue_id",
            "filter_score_name",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "has_previous_secret",
            "previous_secret_expires_at",
            "has_bot_token",
            "created_at",
        ]

    def get_has_bot_token(self, destination: Destination) -> bool:
        return bool(destination.slack_bot_token)

    def get_url(self, destination: Destination) -> str:
        return shown_url(destination)

    def get_has_previous_secret(self, destination: Destination) -> bool:
        return len(destination.signing_secrets()) > 1


class DestinationWithSecretSerializer(DestinationSerializer):
    secret = serializers.CharField(
        help_text="The webhook signing secret (whsec_...); shown once, never again."
    )

    class Meta(DestinationSerializer.Meta):
        fields = [*DestinationSerializer.Meta.fields, "secret"]


class DestinationCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=DestinationKind.choices)
    url = serializers.CharField(max_length=2000)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(EVENT_TYPES)), min_length=1, max_length=50
    )
    project_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    filter_queue_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    filter_score_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    slack_bot_token = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Slack destinations: a bot token (xoxb-...) for direct messages; never shown.",
    )


class DestinationUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    url = serializers.CharField(max_length=2000, required=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(EVENT_TYPES)),
        min_length=1,
        max_length=50,
        required=False,
    )
    project_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    filter_queue_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    filter_score_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    slack_bot_token = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Slack destinations: a bot token (xoxb-...) for direct messages; never shown.",
    )
    enabled = serializers.BooleanField(required=False)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "started_at",
            "status_code",
            "latency_ms",
            "succeeded",
            "response_excerpt",
            "error",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="event.uid", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    event_created_at = serializers.DateTimeField(source="event.created_at", read_only=True)
    attempts_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "destination",
            "event_id",
            "event_type",
            "event_created_at",
            "state",
            "attempts",
            "round",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "completed_at",
            "attempts_log",
        ]


# --- views ---------------------------------------------------------------------------------


class DestinationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Where events go. Organization owners and admins only."""

    scoped_model = Destination
    filterset_class = DestinationFilter
    serializer_class = DestinationSerializer
    read_roles = MANAGE_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset

    @extend_schema(
        request=DestinationCreateSerializer, responses={201: DestinationWithSecretSerializer}
    )
    def create(self, request: Request, org_slug: str) -> Response:
        data = validated(request, DestinationCreateSerializer)
        destination, secret = destination_services.destination_create(actor=self.actor, **data)
        destination.secret = secret
        body = DestinationWithSecretSerializer(destination).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=DestinationUpdateSerializer, responses=DestinationSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = validated(request, DestinationUpdateSerializer)
        destination = destination_services.destination_update(
            actor=self.actor, destination=self.get_object(), **data
        )
        return Response(DestinationSerializer(destination).data)

    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        destination_services.destination_delete(actor=self.actor, destination=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=DestinationWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, org_slug: str, pk: str) -> Response:
        """A new signing secret, shown once; the old one keeps signing beside it for the
        overlap (a day by default)."""
        destination, secret = destination_services.destination_rotate_secret(
            actor=self.actor, destination=self.get_object()
        )
        destination.secret = secret
        return Response(DestinationWithSecretSerializer(destination).data)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request: Request, org_slug: str, pk: str) -> Response:
        """Sends a ``hitl.test`` event to this destination (once, never retried)."""
        delivery = destination_services.destination_send_test(
            actor=self.actor, destination=self.get_object()
        )
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """The delivery log: every event sent to a destination, with every attempt."""

    scoped_model = Delivery
    filterset_class = DeliveryFilter
    serializer_class = DeliverySerializer
    read_roles = MANAGE_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("event").prefetch_related("attempts_log")

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, org_slug: str, pk: str) -> Response:
        """Sends the event to the destination again, now."""
        delivery = delivery_services.delivery_redeliver(
            actor=self.actor, delivery=self.get_object()
        )
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class QueueAlertSerializer(serializers.ModelSerializer):
    project_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = QueueAlert
        fields = ["id", "project_id", "queue_id", "backlog_threshold", "updated_at"]


class QueueAlertSetSerializer(StrictSerializer):
    project_id = serializers.IntegerField(min_value=1)
    queue_id = serializers.IntegerField(min_value=1)
    backlog_threshold = serializers.IntegerField(min_value=1, max_value=10_000_000)


class QueueAlertViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Queue backlog thresholds (``review.queue.backlog``). POST sets a queue's threshold
    (creating or replacing it); DELETE removes it."""

    scoped_model = QueueAlert
    filterset_class = QueueAlertFilter
    serializer_class = QueueAlertSerializer
    read_roles = MANAGE_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset

    @extend_schema(request=QueueAlertSetSerializer, responses={201: QueueAlertSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = validated(request, QueueAlertSetSerializer)
        project = Project.objects.filter(pk=data["project_id"]).first()
        if project is None:
            raise DomainError("Unknown project.", details={"project_id": ["unknown project"]})
        alert = queue_alert_services.queue_alert_set(
            actor=self.actor,
            project=project,
            queue_id=data["queue_id"],
            backlog_threshold=data["backlog_threshold"],
        )
        return Response(QueueAlertSerializer(alert).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        queue_alert_services.queue_alert_delete(actor=self.actor, alert=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- one's own preferences for mentions and assignments -------------------------------------


class NotificationPreferenceSerializer(serializers.ModelSerializer):
    slack_dm_available = serializers.SerializerMethodField(
        help_text="Whether a Slack destination of the organization has a bot token; "
        "without one (incoming webhooks only) a Slack choice is sent by email."
    )

    class Meta:
        model = NotificationPreference
        fields = ["mentions", "assignments", "slack_member_id", "slack_dm_available", "updated_at"]
        read_only_fields = fields

    def get_slack_dm_available(self, preference: NotificationPreference) -> bool:
        return personal_services.slack_bot_destination() is not None


class NotificationPreferenceUpdateSerializer(StrictSerializer):
    mentions = serializers.ChoiceField(choices=PersonalChannel.choices, required=False)
    assignments = serializers.ChoiceField(choices=PersonalChannel.choices, required=False)
    slack_member_id = serializers.CharField(max_length=32, required=False, allow_blank=True)


class NotificationPreferenceViewSet(OrganizationScopedViewSet):
    """The caller's own preferences in this organization: how they hear that a comment
    mentions them or items were assigned to them (email, Slack direct message, off).
    Every member reads and writes their own, nobody else's."""

    scoped_model = NotificationPreference
    serializer_class = NotificationPreferenceSerializer
    read_roles = ALL_ROLES
    write_roles = ALL_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(user=self.request.user)

    @extend_schema(responses=NotificationPreferenceSerializer)
    def retrieve(self, request: Request, org_slug: str) -> Response:
        preference = personal_services.preference_for(request.user.pk)
        return Response(NotificationPreferenceSerializer(preference).data)

    @extend_schema(
        request=NotificationPreferenceUpdateSerializer, responses=NotificationPreferenceSerializer
    )
    def partial_update(self, request: Request, org_slug: str) -> Response:
        data = validated(request, NotificationPreferenceUpdateSerializer)
        preference = personal_services.preference_set(actor=self.actor, **data)
        return Response(NotificationPreferenceSerializer(preference).data)
