from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hitl.health import healthz, readyz

handler400 = "hitl.api.errors.handler400"
handler403 = "hitl.api.errors.handler403"
handler404 = "hitl.api.errors.handler404"
handler500 = "hitl.api.errors.handler500"

api_urlpatterns = [
    path("", include("projects.api.urls")),
    path("", include("traces.api.urls")),
    path("", include("review.api.urls")),
    path("", include("datasets.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(api_urlpatterns)),
    path("v1/", include("traces.otlp.urls")),
    path("", include("review.urls")),
    path("", include("review.lead_urls")),
    path("", include("traces.urls")),
    path("", include("datasets.urls")),
    path("", include("projects.urls")),
]
