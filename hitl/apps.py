from django.apps import AppConfig


class HitlConfig(AppConfig):
    name = "hitl"
    verbose_name = "hitl kernel"

    def ready(self) -> None:
        from hitl import audit
        from hitl.api import schema  # noqa: F401  (registers the OpenAPI auth scheme)

        audit.connect_signals()
