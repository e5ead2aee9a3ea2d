"""Organizations (the tenants), memberships and roles, projects, API keys, invitations."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from hitl.audit import history
from hitl.tenancy import TenantModel


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    REVIEWER = "reviewer", "Reviewer"
    AUDITOR = "auditor", "Auditor"
    VIEWER = "viewer", "Viewer"


# Who may do what, by role. Views name one of these sets per action.
ALL_ROLES = frozenset(Role.values)
MANAGE_ROLES = frozenset({Role.OWNER, Role.ADMIN})
REVIEW_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.REVIEWER})
OWNER_ROLES = frozenset({Role.OWNER})
# Roles whose holders, when staff, may read the organization in the Django admin.
ADMIN_SITE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.AUDITOR})


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def organization_id(self) -> int:
        # Lets the admin and the audit helpers treat the tenant like its own rows.
        return self.pk


class Project(TenantModel):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_slug_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Membership(TenantModel):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # Empty means every project of the organization; owners and admins always see all.
    projects = models.ManyToManyField(Project, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history(m2m_fields=[projects])

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class ApiKeyScope(models.TextChoices):
    INGEST = "ingest", "Ingest traces, scores and feedback"
    READ = "read", "Read project data"
    WRITE = "write", "Change project data"


class ApiKey(TenantModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    # The first characters of the key, shown in lists and logs; the rest is only hashed.
    prefix = models.CharField(max_length=16, unique=True)
    hashed_secret = models.CharField(max_length=128)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # last_used_at changes on every call; history would drown in it.
    history = history(excluded_fields=["last_used_at"])

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class Invitation(TenantModel):
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    projects = models.ManyToManyField(Project, blank=True, related_name="+")
    # The review queues the invitee joins on accepting, by id: queues are review's
    # (``projects.hooks.queue_pool_join`` adds the reviewer to their pools).
    queue_ids = ArrayField(models.PositiveIntegerField(), default=list, blank=True)
    hashed_token = models.CharField(max_length=128, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    history = history(m2m_fields=[projects])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and organization.
            models.UniqueConstraint(
                Lower("email"),
                "organization",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_open_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization_id} ({self.role})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


# --- notifications: destinations, events, deliveries (projects/notifications/) ------------


class DestinationKind(models.TextChoices):
    SLACK = "slack", "Slack incoming webhook"
    WEBHOOK = "webhook", "Webhook (Standard Webhooks, signed)"


class Destination(TenantModel):
    """Where an organization's (or one project's) events go: a Slack incoming webhook or
    a signed generic webhook.

    The webhook signing secrets (``whsec_...``) are stored as they are: signing needs the
    raw secret, as a Slack webhook URL (itself a bearer secret) must be stored raw to be
    called. Neither is ever shown after creation, logged, or kept in history; see
    docs/notifications.md.
    """

    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=DestinationKind.choices)
    url = models.URLField(max_length=2000)
    # Event type names this destination receives (docs/notifications.md); never empty.
    event_types = models.JSONField(default=list)
    # Optional filter: only events of this queue / naming this score.
    filter_queue_id = models.PositiveBigIntegerField(null=True, blank=True)
    filter_score_name = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set at the first failed attempt after a success; a day of failures disables.
    failing_since = models.DateTimeField(null=True, blank=True)
    secret = models.CharField(max_length=100, blank=True, default="")
    # A Slack app's bot token (xoxb-...), optional: with it, people who mapped their
    # Slack member id get their mention and assignment messages as direct messages.
    # A credential like the secret: never shown, logged or kept in history.
    slack_bot_token = models.CharField(max_length=200, blank=True, default="")
    # During a rotation the old secret signs too, until it expires.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = history(
        excluded_fields=["secret", "previous_secret", "failing_since", "url", "slack_bot_token"],
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def signing_secrets(self) -> list[str]:
        """The secrets that sign a message now: the current one, and the previous one
        while its overlap lasts."""
        secrets_ = [self.secret] if self.secret else []
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > timezone.now()
        ):
            secrets_.append(self.previous_secret)
        return secrets_


class Event(TenantModel):
    """Something that happened, written in the transaction of its cause."""

    uid = models.CharField(max_length=40, unique=True)  # the webhook-id: msg_...
    type = models.CharField(max_length=100)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict)
    # What destination filters match on (review's queue id, score names).
    queue_id = models.PositiveBigIntegerField(null=True, blank=True)
    score_names = models.JSONField(default=list, blank=True)
    # When the people a mention or an assignment addresses were written their messages
    # (projects/notifications/personal.py): once per event.
    people_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="event_org_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.uid}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "pending"  # the first attempt is on its way
    RETRYING = "retrying", "retrying"  # failed, another attempt is scheduled
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"  # given up (permanent error, schedule over, disabled)


class Delivery(TenantModel):
    """One event to one destination: at most one per pair."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # Bumped by "redeliver": a message for an older round does nothing.
    round = models.PositiveIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "destination"], name="delivery_unique")
        ]
        indexes = [models.Index(fields=["destination", "-created_at"], name="delivery_destination")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.destination_id} ({self.state})"


class DeliveryAttempt(TenantModel):
    """One HTTP request of a delivery, whatever came of it."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts_log")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=1000, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery_id", "number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"


class QueueAlert(TenantModel):
    """A review queue's notification setting: ``review.queue.backlog`` is sent when the
    queue's open items rise to ``backlog_threshold`` (crossing it, not on every item).

    Kept here, by the queue's id, so notifications add no column to review's tables
    (projects sits below review and cannot reference the queue by a foreign key).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    queue_id = models.PositiveBigIntegerField()
    backlog_threshold = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["queue_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "queue_id"], name="queue_alert_unique"),
            models.CheckConstraint(
                condition=models.Q(backlog_threshold__gte=1), name="queue_alert_threshold_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"queue {self.queue_id}: backlog over {self.backlog_threshold}"


class PersonalChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK_DM = "slack_dm", "Slack direct message"
    OFF = "off", "Off"


class NotificationPreference(TenantModel):
    """How one person hears, in one organization, that they were mentioned in a comment
    or assigned items (``review.comment.mentioned``, ``review.item.assigned``): by
    email, by Slack direct message (needs ``slack_member_id`` and a Slack destination
    with a bot token; otherwise email), or not at all. No row means email for both."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    mentions = models.CharField(
        max_length=16, choices=PersonalChannel.choices, default=PersonalChannel.EMAIL
    )
    assignments = models.CharField(
        max_length=16, choices=PersonalChannel.choices, default=PersonalChannel.EMAIL
    )
    # The person's Slack member id (U0123ABCD) in the organization's Slack workspace.
    slack_member_id = models.CharField(max_length=32, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["organization_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="notification_preference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.mentions}/{self.assignments})"
