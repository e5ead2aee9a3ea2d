from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Organizations and projects"

    def ready(self) -> None:
        from hitl.admin import set_staff_organizations_resolver
        from projects import (
            signals,  # noqa: F401
            tasks,  # noqa: F401  (registers the outbox handlers)
        )
        from projects.admin import staff_organization_ids

        set_staff_organizations_resolver(staff_organization_ids)
