from django.apps import AppConfig


class HitlConfig(AppConfig):
    name = "hitl"
    verbose_name = "hitl kernel"

    def ready(self) -> None:
        from hitl import audit

        audit.connect_signals()
