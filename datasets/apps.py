from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"

    def ready(self) -> None:
        from datasets import tasks  # noqa: F401  (registers the outbox handlers)

        # The trace explorer links to promoting everything a filter matches.
        from datasets.views import explorer_actions
        from traces.hooks import register_explorer_actions

        register_explorer_actions(explorer_actions)
        # The trace page offers promoting that one trace into a dataset.
        from datasets.trace_actions import trace_dataset_actions
        from traces.hooks import register_trace_actions

        register_trace_actions(trace_dataset_actions)

        # Review shows dataset items to label through this provider, and announces the
        # reviewers' verdicts, which become the items' expected outputs.
        from datasets.services.labelling import (
            dataset_items_for_review,
            on_expected_output_written,
        )
        from review.hooks import expected_output_written, register_dataset_items

        register_dataset_items(dataset_items_for_review)
        expected_output_written.connect(
            on_expected_output_written, dispatch_uid="datasets.label_expected_output"
        )

        # Review's comparison items read experiments' results on the same items here.
        from datasets.services.comparison_outputs import experiment_outputs_for_review
        from review.comparison.hooks import register_experiment_outputs

        register_experiment_outputs(experiment_outputs_for_review)

        # The demo organization gets a dataset with a gate, after the sample traces.
        from datasets.services.demo import demo_step
        from projects.demo import register_demo_step

        register_demo_step("datasets", demo_step, order=30)
