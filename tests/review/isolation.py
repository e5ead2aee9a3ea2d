"""Review rows of the victim organization for the route-walking isolation test."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.quality.models import AlertKind
from review.quality.services import agreement, alignment, calibration
from review.quality.services.alerts import alert_raise
from review.services import drafts
from tests.factories import Tenant
from tests.isolation import IsolationData
from tests.review.comparison_helpers import comparison_rows
from tests.review.helpers import make_config, make_queue, make_trace


def populate(tenant: Tenant) -> IsolationData:
    slug = tenant.organization.slug
    config = make_config(tenant, name=f"rubric-only-{slug}")
    queue = make_queue(
        tenant,
        configs=[config],
        reviewers=[tenant.reviewer, tenant.admin],
        seniors=(tenant.admin,),
        name=f"queue-only-{slug}",
        overlap=1,
        audit_sample_rate=1.0,
    )
    reviewer = Actor(user=tenant.reviewer)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        _first, second = (
            services.queue_item_add(actor=owner, queue=queue, trace_id=make_trace(tenant).pk)
            for _ in range(2)
        )
        submitted = services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = services.assignment_submit(
            actor=reviewer,
            assignment_id=submitted.pk,
            values={str(config.pk): 0.5},
            explanation=f"explanation-only-{slug}",
        )
        # A live lease, so lease routes have something of the victim's to aim at.
        live = services.queue_claim_next(actor=reviewer, queue=queue)
        # ... with a draft of the answers being typed on it.
        drafts.draft_save(
            actor=reviewer, assignment_id=live.pk, data={"explanation": f"draft-only-{slug}"}
        )
        services.item_adjudicate(
            actor=Actor(user=tenant.admin),
            item=annotation.item,
            membership=tenant.admin.memberships.get(),
            values={str(config.pk): 0.75},
            explanation=f"decision-only-{slug}",
        )
        comment = services.comment_create(
            actor=reviewer,
            project=tenant.project,
            body=f"comment-only-{slug}",
            trace_id=second.trace_id,
        )
        rule = services.routing_rule_create(
            actor=owner,
            project=tenant.project,
            queue_id=queue.pk,
            name=f"rule-only-{slug}",
            signal="error",
            filter_params={"status": "error"},
        )
        failing = make_trace(tenant, status="error")
        services.routing_apply(project_id=tenant.project.pk, trace_ids=[failing.pk])
        # An agreement report (one reviewer: its figures say why there are none).
        agreement.agreement_refresh(queue_id=queue.pk, force=True, resamples=0)
        calibration_set, _round = _calibration(tenant, config, queue, annotation)
        quality_kwargs = _quality(tenant, calibration_set, _round)
    comparison_markers = comparison_rows(tenant)
    return IsolationData(
        kwargs={
            "queue_pk": queue.pk,
            "assignment_pk": live.pk,
            "annotation_pk": annotation.pk,
            "item_pk": annotation.item_id,
            "config_pk": config.pk,
            "rule_pk": rule.pk,
            "comment_pk": comment.pk,
            **quality_kwargs,
        },
        markers=[
            config.name,
            queue.name,
            annotation.explanation,
            f"decision-only-{slug}",
            f"draft-only-{slug}",
            comment.body,
            rule.name,
            calibration_set.name,
            f"judge-only-{slug}",
            *comparison_markers,
        ],
    )


def _calibration(tenant: Tenant, config, queue, annotation) -> tuple:
    """A calibration set with a gold answer on the reviewed trace, a scored round, the
    live queue mixing gold in (one reviewer's running accuracy) and an alert."""
    slug = tenant.organization.slug
    owner = Actor(user=tenant.owner)
    reviewer = Actor(user=tenant.reviewer)
    calibration_set = calibration.calibration_set_create(
        actor=owner,
        project=tenant.project,
        name=f"calibration-only-{slug}",
        config_ids=[config.pk],
    )
    calibration.gold_answer_set(
        actor=owner,
        calibration_set=calibration_set,
        trace_id=annotation.trace_id,
        values={str(config.pk): 0.5},
    )
    calibration_round = calibration.calibration_round_start(
        actor=owner, calibration_set=calibration_set, reviewer_ids=[tenant.reviewer.pk]
    )
    lease = services.queue_claim_next(actor=reviewer, queue=calibration_round.queue)
    services.assignment_submit(
        actor=reviewer, assignment_id=lease.pk, values={str(config.pk): 0.25}
    )
    calibration.calibration_round_score(actor=owner, round_=calibration_round)
    calibration.queue_calibration_set(
        actor=owner,
        queue=queue,
        calibration_set=calibration_set,
        require_pass=False,
        gold_rate=0.1,
    )
    calibration.gold_accuracy_refresh(queue_id=queue.pk)
    mapping = alignment.alignment_mapping_create(
        actor=owner,
        project=tenant.project,
        score_name=f"judge-only-{slug}",
        config_id=config.pk,
        metric_threshold=0.5,
        human_threshold=0.5,
    )
    alignment.alignment_refresh(mapping_id=mapping.pk)
    alert_raise(
        kind=AlertKind.GOLD_ACCURACY,
        project_id=tenant.project.pk,
        queue=queue,
        reviewer_id=tenant.reviewer.pk,
        value=0.0,
        threshold=0.8,
        window=3,
        message=f"alert-only-{slug}",
    )
    return calibration_set, calibration_round


def _quality(tenant: Tenant, calibration_set, calibration_round) -> dict:
    """The project's own alert thresholds, and the kwargs of the calibration and
    alignment pages (a set, its gold answer, a round, a mapping)."""
    from review.quality.models import AlignmentMapping
    from review.quality.services.alerts import quality_settings_update

    quality_settings_update(
        actor=Actor(user=tenant.owner),
        project=tenant.project,
        agreement_threshold=0.7,
        alignment_threshold=0.75,
        window=4,
    )
    return {
        "calibration_set_pk": calibration_set.pk,
        "calibration_round_pk": calibration_round.pk,
        "gold_answer_pk": calibration_set.gold_answers.get().pk,
        # DELETE .../calibration-sets/<pk>/gold/<trace_id>/: the gold answer's trace, by
        # the id its client sent.
        "trace_id": calibration_set.gold_answers.select_related("trace").get().trace.external_id,
        "alignment_mapping_pk": AlignmentMapping.objects.get(project=tenant.project).pk,
    }
