from django.apps import AppConfig


class HitlConfig(AppConfig):
    name = "hitl"
    verbose_name = "hitl kernel"

    def ready(self) -> None:
        from hitl import (
            audit,
            outbox,  # noqa: F401  (registers the outbox's Celery tasks)
            outbox_admin,  # noqa: F401  (the outbox in the admin)
        )
        from hitl.api import schema  # noqa: F401  (registers the OpenAPI auth scheme)

        audit.connect_signals()
