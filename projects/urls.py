from django.urls import path

from projects import views
from projects.notifications import views as notification_views

settings = "orgs/<slug:org_slug>/settings/"

urlpatterns = [
    path("", views.home, name="home"),
    path("orgs/switch/", views.organization_switch, name="organization-switch"),
    path("orgs/<slug:org_slug>/", views.OrganizationHomeView.as_view(), name="organization-home"),
    path("invitations/<str:token>/", views.invitation_detail, name="invitation-detail"),
    path(settings, views.SettingsMembersView.as_view(), name="settings-members"),
    path(
        settings + "members/<int:membership_pk>/",
        views.SettingsMemberView.as_view(),
        name="settings-member",
    ),
    path(
        settings + "invitations/<int:invitation_pk>/",
        views.SettingsInvitationView.as_view(),
        name="settings-invitation",
    ),
    path(settings + "api-keys/", views.SettingsApiKeysView.as_view(), name="settings-api-keys"),
    path(
        settings + "api-keys/<int:api_key_pk>/revoke/",
        views.SettingsApiKeyRevokeView.as_view(),
        name="settings-api-key-revoke",
    ),
    path(
        settings + "notifications/",
        notification_views.DestinationsView.as_view(),
        name="settings-destinations",
    ),
    path(
        settings + "notifications/<int:destination_pk>/",
        notification_views.DestinationView.as_view(),
        name="settings-destination",
    ),
    path(
        settings + "notifications/deliveries/<int:delivery_pk>/redeliver/",
        notification_views.DeliveryRedeliverView.as_view(),
        name="settings-delivery-redeliver",
    ),
    path(
        settings + "notifications/queue-alerts/",
        notification_views.QueueAlertsView.as_view(),
        name="settings-queue-alerts",
    ),
    path(
        "orgs/<slug:org_slug>/preferences/notifications/",
        notification_views.NotificationPreferencesView.as_view(),
        name="notification-preferences-page",
    ),
]
