from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from hitl.admin import TenantScopedAdmin, register_history
from projects.models import ApiKey, Invitation, Membership, Organization, Project


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
