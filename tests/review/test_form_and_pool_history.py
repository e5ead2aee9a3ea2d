from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueFormField, QueueReviewer
from tests.review.helpers import make_config, make_queue, membership_of


def test_changing_a_queues_form_and_pool_leaves_history_with_the_actor(tenant):
    first, second = make_config(tenant), make_config(tenant)
    queue = make_queue(tenant, configs=[first])
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_update(
            actor=Actor(user=tenant.admin),
            queue=queue,
            form=[{"config_id": second.pk}, {"config_id": first.pk}],
            reviewers=[{"membership_id": membership_of(tenant, tenant.admin).pk}],
        )
        form_history = QueueFormField.history.filter(queue_id=queue.pk).order_by("history_id")
        pool_history = QueueReviewer.history.filter(queue_id=queue.pk).order_by("history_id")
        form_changes = [(h.history_type, h.config_id, h.position) for h in form_history]
        pool_changes = [(h.history_type, h.membership_id) for h in pool_history]
        admin_rows = [h for h in form_history if h.history_user_id == tenant.admin.pk]
    # Created with the queue, then the form changed: the first question moved to the
    # second place (one change), the new one added.
    assert form_changes == [
        ("+", first.pk, 0),
        ("~", first.pk, 1),
        ("+", second.pk, 0),
    ]
    reviewer_membership = membership_of(tenant, tenant.reviewer).pk
    admin_membership = membership_of(tenant, tenant.admin).pk
    assert pool_changes == [
        ("+", reviewer_membership),
        ("-", reviewer_membership),
        ("+", admin_membership),
    ]
    assert len(admin_rows) == 2


def _history_counts(queue) -> tuple[int, int, int]:
    return (
        queue.history.count(),
        QueueFormField.history.filter(queue_id=queue.pk).count(),
        QueueReviewer.history.filter(queue_id=queue.pk).count(),
    )


def test_saving_a_queue_as_it_was_records_nothing_and_one_change_records_one_row(tenant):
    """A lead saves the edit page after looking: nothing changed, so the queue, its form
    and its pool gain no history row (the auditor reads no churn); then one member made
    senior: one "changed" row, for that member only."""
    first, second = make_config(tenant), make_config(tenant)
    queue = make_queue(tenant, configs=[first, second])
    reviewer = membership_of(tenant, tenant.reviewer).pk
    admin = membership_of(tenant, tenant.admin).pk
    form = [{"config_id": first.pk}, {"config_id": second.pk, "numeric_tolerance": 0.5}]
    pool = [{"membership_id": reviewer}, {"membership_id": admin, "skills": ["law"]}]
    actor = Actor(user=tenant.admin)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.queue_update(actor=actor, queue=queue, form=form, reviewers=pool)
        before = _history_counts(queue)
        services.queue_update(
            actor=actor,
            queue=queue,
            form=form,
            reviewers=pool,
            name=queue.name,
            overlap=queue.overlap,
        )
        assert _history_counts(queue) == before
        pool[1]["is_senior"] = True
        services.queue_update(actor=actor, queue=queue, form=form, reviewers=pool)
        assert _history_counts(queue) == (before[0], before[1], before[2] + 1)
        last = QueueReviewer.history.filter(queue_id=queue.pk).latest("history_id")
        assert (last.history_type, last.membership_id, last.is_senior) == ("~", admin, True)
        assert last.skills == ["law"]
        rows = QueueReviewer.objects.filter(queue=queue).order_by("membership_id")
        assert [(r.membership_id, r.is_senior) for r in rows] == sorted(
            [(reviewer, False), (admin, True)]
        )
