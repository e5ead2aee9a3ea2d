from django.urls import path

from traces.api import ingest_views as views

PROJECT = "orgs/<slug:org_slug>/projects/<slug:project_slug>/"

urlpatterns = [
    path(f"{PROJECT}ingest/", views.IngestViewSet.as_view({"post": "create"}), name="ingest"),
    path(
        f"{PROJECT}ingest/scores/",
        views.ScoreIngestViewSet.as_view({"post": "create"}),
        name="score-ingest",
    ),
    path(
        f"{PROJECT}ingest/feedback/",
        views.FeedbackIngestViewSet.as_view({"post": "create"}),
        name="feedback-ingest",
    ),
]
