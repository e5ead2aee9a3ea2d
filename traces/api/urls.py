from django.urls import include, path

urlpatterns = [
    path("", include("traces.api.ingest_urls")),
    path("", include("traces.api.read_urls")),
]
