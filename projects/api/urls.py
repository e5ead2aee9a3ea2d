from django.urls import include, path
from rest_framework.routers import SimpleRouter

from projects.api import views
from projects.notifications import api as notifications

organization_router = SimpleRouter()
organization_router.register("orgs", views.OrganizationListViewSet, basename="organization")

org_router = SimpleRouter()
org_router.register("members", views.MemberViewSet, basename="member")
org_router.register("invitations", views.InvitationViewSet, basename="invitation")
org_router.register("projects", views.ProjectViewSet, basename="project")
org_router.register("destinations", notifications.DestinationViewSet, basename="destination")
org_router.register("deliveries", notifications.DeliveryViewSet, basename="delivery")
org_router.register("queue-alerts", notifications.QueueAlertViewSet, basename="queue-alert")

project_router = SimpleRouter()
project_router.register("api-keys", views.ApiKeyViewSet, basename="api-key")

organization_detail = views.OrganizationDetailViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update"}
)

whoami = views.WhoAmIViewSet.as_view({"get": "retrieve"})

notification_preferences = notifications.NotificationPreferenceViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update"}
)

urlpatterns = [
    path("", include(organization_router.urls)),
    path("orgs/<slug:org_slug>/", organization_detail, name="organization-detail"),
    path("orgs/<slug:org_slug>/", include(org_router.urls)),
    path("orgs/<slug:org_slug>/projects/<slug:project_slug>/", include(project_router.urls)),
    path("orgs/<slug:org_slug>/projects/<slug:project_slug>/whoami/", whoami, name="whoami"),
    path(
        "orgs/<slug:org_slug>/notification-preferences/",
        notification_preferences,
        name="notification-preferences",
    ),
]
