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
    # Created with the queue, then replaced: the old question deleted, the new form added.
    assert form_changes == [
        ("+", first.pk, 0),
        ("-", first.pk, 0),
        ("+", second.pk, 0),
        ("+", first.pk, 1),
    ]
    reviewer_membership = membership_of(tenant, tenant.reviewer).pk
    admin_membership = membership_of(tenant, tenant.admin).pk
    assert pool_changes == [
        ("+", reviewer_membership),
        ("-", reviewer_membership),
        ("+", admin_membership),
    ]
    assert len(admin_rows) == 3
