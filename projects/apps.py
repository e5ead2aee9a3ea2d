from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Organizations and projects"

    def ready(self) -> None:
        from projects import (
            signals,  # noqa: F401
            tasks,  # noqa: F401  (registers the outbox handlers)
        )
