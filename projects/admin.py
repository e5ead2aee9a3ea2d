from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest

from hitl.admin import TenantScopedAdmin, register_history
from projects.models import (
    ADMIN_SITE_ROLES,
    ApiKey,
    Delivery,
    DeliveryAttempt,
    Destination,
    Event,
    Invitation,
    Membership,
    NotificationPreference,
    Organization,
    Project,
    QueueAlert,
)


def staff_organization_ids(user: AbstractBaseUser) -> list[int]:
    """The organizations whose admin a (non-superuser) staff user may read: those where
    they hold a role in ADMIN_SITE_ROLES. Registered with the kernel's admin site from
    ProjectsConfig.ready()."""
    return list(
        Membership.unscoped_across_tenants.filter(user=user, role__in=ADMIN_SITE_ROLES).values_list(
            "organization_id", flat=True
        )
    )


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    organization_field = "id"
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope_queryset(request, Organization.objects.all())


@admin.register(Project)
class ProjectAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "organization", "created_by", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "slug"]
    list_select_related = ["organization", "created_by"]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email"]
    list_select_related = ["user", "organization"]
    filter_horizontal = ["projects"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = [
        "name",
        "prefix",
        "project",
        "organization",
        "scopes",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["organization", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    list_select_related = ["project", "organization"]
    exclude = ["hashed_secret"]
    readonly_fields = ["prefix", "last_used_at"]


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    list_display = ["email", "organization", "role", "status", "invited_by", "expires_at"]
    list_filter = ["role", "organization"]
    search_fields = ["email"]
    list_select_related = ["organization", "invited_by"]
    exclude = ["hashed_token"]


for model in (Project, Membership, ApiKey, Invitation):
    register_history(model)
register_history(Organization, organization_field="id")


# --- notifications: destinations and their delivery log -----------------------------------


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "status_code", "latency_ms", "succeeded", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Destination)
class DestinationAdmin(TenantScopedAdmin):
    list_display = ["name", "kind", "organization", "project", "enabled", "disabled_reason"]
    list_filter = ["kind", "enabled", "organization"]
    search_fields = ["name"]
    list_select_related = ["organization", "project"]
    # The URL of a Slack webhook and the signing secrets are credentials: never shown.
    exclude = ["url", "secret", "previous_secret", "slack_bot_token"]
    readonly_fields = ["failing_since", "disabled_at", "previous_secret_expires_at"]


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ["uid", "type", "organization", "project", "created_at"]
    list_filter = ["type", "organization"]
    search_fields = ["uid", "type"]
    list_select_related = ["organization", "project"]
    date_hierarchy = "created_at"


@admin.register(Delivery)
class DeliveryAdmin(TenantScopedAdmin):
    list_display = ["event", "destination", "state", "attempts", "last_status_code", "created_at"]
    list_filter = ["state", "organization"]
    search_fields = ["event__uid", "destination__name"]
    list_select_related = ["event", "destination"]
    inlines = [DeliveryAttemptInline]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(TenantScopedAdmin):
    list_display = ["delivery", "number", "status_code", "latency_ms", "succeeded", "started_at"]
    list_filter = ["succeeded", "organization"]
    list_select_related = ["delivery"]


@admin.register(QueueAlert)
class QueueAlertAdmin(TenantScopedAdmin):
    list_display = ["queue_id", "project", "backlog_threshold", "updated_at"]
    list_filter = ["organization"]
    list_select_related = ["project"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(TenantScopedAdmin):
    list_display = ["user", "organization", "mentions", "assignments", "slack_member_id"]
    list_filter = ["mentions", "assignments", "organization"]
    search_fields = ["user__email", "slack_member_id"]
    list_select_related = ["user", "organization"]


register_history(Destination)
register_history(QueueAlert)
register_history(NotificationPreference)
