from django.urls import path

from traces import retention_views, views

project = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"

urlpatterns = [
    path(project + "traces/", views.TraceExplorerView.as_view(), name="traces-explorer"),
    path(
        project + "traces/saved-views/",
        views.SavedViewCreateView.as_view(),
        name="traces-saved-view-create",
    ),
    path(
        project + "traces/saved-views/<int:saved_view_pk>/delete/",
        views.SavedViewDeleteView.as_view(),
        name="traces-saved-view-delete",
    ),
    path(
        project + "traces/retention/",
        retention_views.TraceRetentionPageView.as_view(),
        name="traces-retention",
    ),
    path(
        project + "traces/t/<str:trace_external_id>/",
        views.TraceDetailView.as_view(),
        name="traces-detail",
    ),
    path(
        project + "traces/t/<str:trace_external_id>/span/",
        views.TraceSpanView.as_view(),
        name="traces-detail-span",
    ),
    path(
        project + "traces/t/<str:trace_external_id>/actions/<slug:action_key>/",
        views.TraceActionView.as_view(),
        name="traces-detail-action",
    ),
]
