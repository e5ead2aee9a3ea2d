from __future__ import annotations

from rest_framework import serializers

from hitl.api.serializers import StrictSerializer
from projects.models import ApiKey, ApiKeyScope, Invitation, Membership, Organization, Project, Role


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "role"]

    def get_role(self, organization: Organization) -> str | None:
        roles = self.context.get("roles_by_organization", {})
        return roles.get(organization.pk)


class OrganizationCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=64, required=False, allow_blank=True)


class OrganizationUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    project_ids = serializers.PrimaryKeyRelatedField(source="projects", many=True, read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "project_ids", "created_at"]


class MemberUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    project_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)


class MemberBulkRoleSerializer(StrictSerializer):
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000
    )
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    project_ids = serializers.PrimaryKeyRelatedField(source="projects", many=True, read_only=True)
    status = serializers.CharField(read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = [
            "id", "email", "role", "project_ids", "queue_ids", "status", "invited_by",
            "created_at", "expires_at", "accepted_at", "revoked_at",
        ]  # fmt: skip


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)
    project_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )
    # Review queues whose reviewer pools the invitee joins on accepting.
    queue_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        default=list,
        max_length=100,
    )


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "slug", "description", "created_at"]


class ProjectCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=64, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "prefix", "scopes", "is_active",
            "created_at", "last_used_at", "revoked_at",
        ]  # fmt: skip


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown only once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    scopes = serializers.MultipleChoiceField(choices=ApiKeyScope.choices, allow_empty=False)


class WhoAmISerializer(serializers.Serializer):
    organization = serializers.DictField()
    project = serializers.DictField()
    caller = serializers.DictField()
