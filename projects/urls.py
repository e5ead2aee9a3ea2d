from django.urls import path

from projects import views

urlpatterns = [
    path("", views.home, name="home"),
    path("orgs/switch/", views.organization_switch, name="organization-switch"),
    path("orgs/<slug:org_slug>/", views.OrganizationHomeView.as_view(), name="organization-home"),
    path("invitations/<str:token>/", views.invitation_detail, name="invitation-detail"),
]
