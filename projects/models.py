"""Organizations (the tenants), memberships and roles, projects, API keys, invitations."""

from __future__ import annotations

from django.conf import settings
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
