"""Datasets rows of the victim organization for the route-walking isolation test and
the admin walker: a row of every datasets model."""

from __future__ import annotations

from datasets import services
from datasets.models import DatasetExport
from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from tests.datasets.helpers import import_rows, make_dataset
from tests.factories import Tenant
from tests.isolation import IsolationData
from tests.review.helpers import make_config, make_queue, make_trace


def populate(tenant: Tenant) -> IsolationData:
    slug = tenant.organization.slug
    owner = Actor(user=tenant.owner)
    dataset = make_dataset(tenant, name=f"dataset-only-{slug}")
    # An item imported, then changed by a second import: history rows written by the
    # set-based path, a creation and a change, for the admin walker.
    for answer in ("one", "two"):
        row = {"id": f"imported-{slug}", "input": {"q": 1}, "expected_output": answer}
        import_rows(tenant, dataset, [row])
    with tenancy.tenant_scope(tenant.organization.pk):
        trace = make_trace(tenant, input={"q": f"input-only-{slug}"}, output={"a": "2 g"})
        promotion = services.dataset_promote(
            actor=owner,
            dataset=dataset,
            trace_id=trace.external_id,
            overrides={"failure_reason": f"failure-only-{slug}"},
        )
        experiment = services.experiment_create(
            actor=owner, dataset=dataset, name=f"experiment-only-{slug}"
        )
        services.experiment_results_post(
            actor=owner,
            experiment=experiment,
            results=[
                {
                    "id": f"trace:{trace.external_id}",
                    "output": f"output-only-{slug}",
                    "scores": {"accuracy": 1.0},
                }
            ],
        )
        services.experiment_finish(actor=owner, experiment=experiment)
        services.quality_gate_set(
            actor=owner, dataset=dataset, thresholds=[{"metric": "accuracy", "min": 0.5}]
        )
        export = services.dataset_export_start(
            actor=owner, dataset=dataset, version=None, file_format="jsonl"
        )
        services.dataset_export_run(export_id=export.pk)
        assert DatasetExport.objects.get(pk=export.pk).state == "done"
    # The promoted item sent to a queue and labelled: a dataset-item queue item and
    # annotation for the admin walker, and provenance on the item's page.
    # Categorical: the list-parameter walker keeps text configs out of its world.
    label = make_config(
        tenant,
        name=f"expected-{slug}",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": f"label-only-{slug}", "value": 1.0}, {"label": "other", "value": 0.0}],
        target="dataset_item",
        writes_expected_output=True,
    )
    queue = make_queue(tenant, configs=[label], name=f"labelling-{slug}", blind_mode=False)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.dataset_items_send_to_queue(
            actor=owner, dataset=dataset, queue=queue, item_ids=[promotion.item.pk]
        )
        reviewer = Actor(user=tenant.reviewer)
        lease = review_services.queue_claim_next(actor=reviewer, queue=queue)
        review_services.assignment_submit(
            actor=reviewer,
            assignment_id=lease.pk,
            values={str(label.pk): f"label-only-{slug}"},
        )
    return IsolationData(
        kwargs={
            "dataset_pk": dataset.pk,
            "experiment_pk": experiment.pk,
            "dataset_item_pk": promotion.item.pk,
            "export_pk": export.pk,
        },
        markers=[
            dataset.name,
            f"input-only-{slug}",
            f"failure-only-{slug}",
            f"experiment-only-{slug}",
            f"output-only-{slug}",
            f"label-only-{slug}",
        ],
    )
