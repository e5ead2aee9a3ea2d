from django.urls import path

from traces.otlp.views import OtlpTracesView

urlpatterns = [
    path("traces", OtlpTracesView.as_view(), name="otlp-traces"),
]
