from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from hitl.api.views import actor_for, validated
from hitl.exceptions import PermissionDenied
from projects import filters, selectors, services
from projects.api import serializers as s
from projects.api.bases import OrganizationScopedViewSet, ProjectScopedViewSet
from projects.models import (
    ALL_ROLES,
    MANAGE_ROLES,
    ApiKey,
    Invitation,
    Membership,
    Organization,
    Project,
)


class OrganizationListViewSet(viewsets.GenericViewSet):
    """The caller's organizations; creating one makes the caller its owner."""

    serializer_class = s.OrganizationSerializer
    filterset_class = filters.OrganizationFilter
    permission_classes = [IsAuthenticated]
    pagination_class = None  # a person belongs to a handful of organizations

    def get_queryset(self) -> QuerySet[Organization]:
        if getattr(self, "swagger_fake_view", False):
            return Organization.objects.none()
        return selectors.organizations_for_user(self.request.user)

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if getattr(request, "api_key", None) is not None:
            raise PermissionDenied("This endpoint needs a signed-in user, not an API key.")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if self.request.user.is_authenticated and getattr(self.request, "api_key", None) is None:
            context["roles_by_organization"] = selectors.roles_by_organization(self.request.user)
        return context

    def list(self, request: Request) -> Response:
        organizations = self.filter_queryset(self.get_queryset())
        return Response(self.get_serializer(organizations, many=True).data)

    @extend_schema(
        request=s.OrganizationCreateSerializer, responses={201: s.OrganizationSerializer}
    )
    def create(self, request: Request) -> Response:
        data = validated(request, s.OrganizationCreateSerializer)
        organization = services.organization_create(actor=actor_for(request), **data)
        return Response(self.get_serializer(organization).data, status=status.HTTP_201_CREATED)


class OrganizationDetailViewSet(OrganizationScopedViewSet):
    serializer_class = s.OrganizationSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if getattr(self, "membership", None):
            context["roles_by_organization"] = {self.organization.pk: self.membership.role}
        return context

    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(self.get_serializer(self.organization).data)

    @extend_schema(request=s.OrganizationUpdateSerializer, responses=s.OrganizationSerializer)
    def partial_update(self, request: Request, org_slug: str) -> Response:
        data = validated(request, s.OrganizationUpdateSerializer)
        organization = services.organization_update(
            actor=self.actor, organization=self.organization, **data
        )
        return Response(self.get_serializer(organization).data)


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    scoped_model = Membership
    filterset_class = filters.MemberFilter
    serializer_class = s.MemberSerializer
    action_roles = {"list": ALL_ROLES, "retrieve": ALL_ROLES}

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("user").prefetch_related("projects")

    @extend_schema(request=s.MemberUpdateSerializer, responses=s.MemberSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = validated(request, s.MemberUpdateSerializer)
        membership = services.membership_update(
            actor=self.actor,
            acting_membership=self.membership,
            membership=self.get_object(),
            **data,
        )
        return Response(s.MemberSerializer(membership).data)

    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        services.membership_remove(
            actor=self.actor, acting_membership=self.membership, membership=self.get_object()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.MemberBulkRoleSerializer, responses=s.MemberSerializer(many=True))
    @action(detail=False, methods=["post"], url_path="bulk-role")
    def bulk_role(self, request: Request, org_slug: str) -> Response:
        data = validated(request, s.MemberBulkRoleSerializer)
        memberships = services.memberships_set_role(
            actor=self.actor,
            acting_membership=self.membership,
            membership_ids=data["member_ids"],
            role=data["role"],
        )
        return Response(s.MemberSerializer(memberships, many=True).data)


class InvitationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    scoped_model = Invitation
    filterset_class = filters.InvitationFilter
    serializer_class = s.InvitationSerializer
    read_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("invited_by").prefetch_related("projects")

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.InvitationSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = validated(request, s.InvitationCreateSerializer)
        invitation, _token = services.invitation_create(
            actor=self.actor, acting_membership=self.membership, **data
        )
        return Response(s.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.InvitationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, org_slug: str, pk: str) -> Response:
        invitation = services.invitation_revoke(actor=self.actor, invitation=self.get_object())
        return Response(s.InvitationSerializer(invitation).data)

    @extend_schema(request=None, responses=s.InvitationSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, org_slug: str, pk: str) -> Response:
        invitation, _token = services.invitation_resend(
            actor=self.actor, invitation=self.get_object()
        )
        return Response(s.InvitationSerializer(invitation).data)


class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    scoped_model = Project
    filterset_class = filters.ProjectFilter
    serializer_class = s.ProjectSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "project_slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset & selectors.projects_visible_to(self.membership)

    @extend_schema(request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = validated(request, s.ProjectCreateSerializer)
        project = services.project_create(actor=self.actor, **data)
        return Response(s.ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProjectUpdateSerializer, responses=s.ProjectSerializer)
    def partial_update(self, request: Request, org_slug: str, project_slug: str) -> Response:
        data = validated(request, s.ProjectUpdateSerializer)
        project = services.project_update(actor=self.actor, project=self.get_object(), **data)
        return Response(s.ProjectSerializer(project).data)

    def destroy(self, request: Request, org_slug: str, project_slug: str) -> Response:
        services.project_delete(actor=self.actor, project=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Keys are managed by people only: a key cannot mint or list keys."""

    scoped_model = ApiKey
    filterset_class = filters.ApiKeyFilter
    serializer_class = s.ApiKeySerializer
    allow_api_keys = False
    read_roles = MANAGE_ROLES

    @extend_schema(request=s.ApiKeyCreateSerializer, responses={201: s.ApiKeyCreatedSerializer})
    def create(self, request: Request, org_slug: str, project_slug: str) -> Response:
        data = validated(request, s.ApiKeyCreateSerializer)
        api_key, raw = services.api_key_create(
            actor=self.actor,
            project=self.project,
            name=data["name"],
            scopes=sorted(data["scopes"]),
        )
        api_key.key = raw
        return Response(s.ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.ApiKeySerializer)
    def destroy(self, request: Request, org_slug: str, project_slug: str, pk: str) -> Response:
        """Revokes the key at once; it stays listed, marked revoked, for the audit trail."""
        api_key = services.api_key_revoke(actor=self.actor, api_key=self.get_object())
        return Response(s.ApiKeySerializer(api_key).data)


class WhoAmIViewSet(ProjectScopedViewSet):
    """Who the caller is in this project: lets an SDK or CI check its key and scopes."""

    action_api_key_scopes = {"retrieve": None}

    @extend_schema(responses=s.WhoAmISerializer)
    def retrieve(self, request: Request, org_slug: str, project_slug: str) -> Response:
        api_key = getattr(request, "api_key", None)
        caller = (
            {"type": "api_key", "prefix": api_key.prefix, "scopes": api_key.scopes}
            if api_key is not None
            else {"type": "user", "email": request.user.email, "role": self.membership.role}
        )
        return Response(
            {
                "organization": {"slug": self.organization.slug, "name": self.organization.name},
                "project": {"slug": self.project.slug, "name": self.project.name},
                "caller": caller,
            }
        )
