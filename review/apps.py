from importlib import import_module

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"

    def import_models(self) -> None:
        # The quality wing's models (review.quality.models) belong to this app: Django
        # imports an app's models module only, so they are imported here, beside it, and
        # the core's models never import quality.
        super().import_models()
        import_module("review.quality.models")
        import_module("review.comparison.models")

    def ready(self) -> None:
        from review import tasks  # noqa: F401  (registers the outbox handlers)
        from review.services.routing import routing_on_traces_changed
        from traces.hooks import traces_changed

        # Ingestion announces changed traces; review routes them into queues.
        traces_changed.connect(routing_on_traces_changed, dispatch_uid="review.routing")
        # The trace reads ask review for attachments and the blind rule's score filter.
        from review.selectors import trace_attachments
        from review.visibility import scores_visible_to, traces_with_hidden_scores
        from traces.hooks import (
            register_hidden_scores,
            register_score_visibility,
            register_trace_attachments,
        )

        register_trace_attachments(trace_attachments)
        register_score_visibility(scores_visible_to)
        register_hidden_scores(traces_with_hidden_scores)
        # The trace explorer links to review's action on everything a filter matches.
        from review.pages.lead import explorer_actions
        from traces.hooks import register_explorer_actions

        register_explorer_actions(explorer_actions)
        # The trace page offers adding that one trace to a queue.
        from review.trace_actions import trace_queue_actions
        from traces.hooks import register_trace_actions

        register_trace_actions(trace_queue_actions)

        # projects asks review for its queues by name (settings, invitations), joins an
        # accepted invitation's queue pools, and finds a member's work page after sign-in.
        from projects.hooks import (
            register_queue_choices,
            register_queue_pool_join,
            register_work_page,
        )
        from review.pages.reviewer_selectors import work_page
        from review.selectors import queue_choices
        from review.services.queues import queue_pool_join

        register_queue_choices(queue_choices)
        register_queue_pool_join(queue_pool_join)
        register_work_page(work_page)
        # Quality listens to the core: the calibration gate on claims, and changed
        # answers recomputing agreement and gold accuracy.
        from review.quality.receivers import connect_quality

        connect_quality()

        from projects.demo import register_demo_step
        from review.demo import demo_step

        register_demo_step("review", demo_step, order=20)
