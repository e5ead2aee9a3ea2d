from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"

    def ready(self) -> None:
        from review import tasks  # noqa: F401  (registers the outbox handlers)
        from review.services.routing import routing_on_traces_changed
        from traces.hooks import traces_changed

        # Ingestion announces changed traces; review routes them into queues.
        traces_changed.connect(routing_on_traces_changed, dispatch_uid="review.routing")
        # The trace reads ask review for attachments and the blind rule's score filter.
        from review.visibility import connect_trace_hooks

        connect_trace_hooks()
        # The trace explorer links to review's action on everything a filter matches.
        from review.pages.lead import explorer_actions
        from traces.hooks import register_explorer_actions

        register_explorer_actions(explorer_actions)
        # The trace page offers adding that one trace to a queue.
        from review.trace_actions import trace_queue_actions
        from traces.hooks import register_trace_actions

        register_trace_actions(trace_queue_actions)

        from projects.demo import register_demo_step
        from review.demo import demo_step

        register_demo_step("review", demo_step, order=20)
