from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "traces"

    def ready(self) -> None:
        from projects.demo import register_demo_step
        from traces.demo import demo_step

        register_demo_step("traces", demo_step, order=10)
        # The notification settings offer the organization's score names.
        from projects.hooks import register_score_names
        from traces.selectors import organization_score_names

        register_score_names(organization_score_names)
