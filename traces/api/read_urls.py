from django.urls import path

from traces.api import read_views as views
from traces.api.retention_views import TraceRetentionViewSet

PROJECT = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"

trace_list = views.TraceViewSet.as_view({"get": "list"})
trace_detail = views.TraceViewSet.as_view({"get": "retrieve"})
trace_span = views.TraceViewSet.as_view({"get": "span"})
thread_list = views.ThreadViewSet.as_view({"get": "list"})
thread_detail = views.ThreadViewSet.as_view({"get": "retrieve"})
retention = TraceRetentionViewSet.as_view({"get": "retrieve", "put": "update"})

urlpatterns = [
    path(f"{PROJECT}traces/", trace_list, name="trace-list"),
    path(f"{PROJECT}traces/<str:trace_external_id>/", trace_detail, name="trace-detail"),
    path(
        f"{PROJECT}traces/<str:trace_external_id>/spans/<str:span_external_id>/",
        trace_span,
        name="trace-span-detail",
    ),
    path(f"{PROJECT}threads/", thread_list, name="thread-list"),
    path(f"{PROJECT}threads/<str:thread_external_id>/", thread_detail, name="thread-detail"),
    path(f"{PROJECT}trace-retention/", retention, name="trace-retention"),
]
