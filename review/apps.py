from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"

    def ready(self) -> None:
        from review.visibility import connect_trace_hooks

        connect_trace_hooks()
