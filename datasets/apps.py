from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"

    def ready(self) -> None:
        from datasets import tasks  # noqa: F401  (registers the outbox handlers)

        # The trace explorer links to promoting everything a filter matches.
        from datasets.views import explorer_actions
        from traces.hooks import register_explorer_actions

        register_explorer_actions(explorer_actions)
