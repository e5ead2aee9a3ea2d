from __future__ import annotations

import pytest

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError
from review import services
from review.models import QueueItem, ScoreConfig, ScoreConfigVersion
from tests.review.helpers import RUBRIC, make_config, make_queue, make_trace


def test_rubric_with_no_levels_is_refused(tenant):
    with pytest.raises(DomainError) as caught:
        make_config(tenant, rubric=[])
    assert "rubric" in caught.value.details


def test_rubric_level_needs_definition_and_example(tenant):
    with pytest.raises(DomainError) as caught:
        make_config(tenant, rubric=[{"label": "Good", "definition": "", "examples": []}])
    problems = caught.value.details["rubric[0]"]
    assert any("definition" in p for p in problems)
    assert any("example" in p for p in problems)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"data_type": "numeric", "min_value": 1.0, "max_value": 0.0}, "max_value"),
        ({"data_type": "numeric", "min_value": None, "max_value": None}, "min_value"),
        ({"data_type": "categorical", "options": [{"label": "a", "value": 1}]}, "options"),
        (
            {
                "data_type": "categorical",
                "options": [{"label": "a", "value": 1}, {"label": "a", "value": 2}],
            },
            "options",
        ),
        ({"data_type": "boolean", "writes_expected_output": True}, "writes_expected_output"),
        ({"target": "galaxy"}, "target"),
    ],
)
def test_bad_config_definitions_are_refused_with_the_field(tenant, fields, field):
    with pytest.raises(DomainError) as caught:
        make_config(tenant, **fields)
    assert field in caught.value.details


def test_editing_a_config_makes_a_new_version_and_history(tenant):
    config = make_config(tenant, name="helpfulness")
    with tenancy.tenant_scope(tenant.organization.pk):
        edited = services.score_config_update(
            actor=Actor(user=tenant.admin),
            config=config,
            rubric=[*RUBRIC, {"label": "Great", "definition": "Exemplary.", "examples": ["x"]}],
        )
        assert edited.version == 2
        versions = list(ScoreConfigVersion.objects.filter(config=config).order_by("version"))
        assert [v.version for v in versions] == [1, 2]
        assert len(versions[0].snapshot["rubric"]) == 2
        assert len(versions[1].snapshot["rubric"]) == 3
        history = list(ScoreConfig.history.filter(id=config.pk).order_by("history_date"))
        assert [h.history_type for h in history] == ["+", "~"]
        assert history[-1].history_user == tenant.admin
        # Unchanged edit: no new version.
        same = services.score_config_update(
            actor=Actor(user=tenant.admin), config=config, name="helpfulness"
        )
        assert same.version == 2


def test_duplicate_config_name_conflicts(tenant):
    make_config(tenant, name="tone")
    with pytest.raises(Conflict):
        make_config(tenant, name="tone")


def test_queue_pool_refuses_viewers_and_form_refuses_other_projects_configs(tenant, other_tenant):
    foreign = make_config(other_tenant)
    with pytest.raises(DomainError) as caught:
        make_queue(tenant, configs=[foreign])
    assert "form[0]" in caught.value.details
    with pytest.raises(DomainError) as caught:
        make_queue(tenant, reviewers=[tenant.viewer])
    assert "reviewers[0]" in caught.value.details


def test_adding_another_organizations_trace_is_refused(tenant, other_tenant):
    queue = make_queue(tenant)
    foreign = make_trace(other_tenant)
    with tenancy.tenant_scope(tenant.organization.pk), pytest.raises(DomainError) as caught:
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=foreign.pk)
    assert "trace_id" in caught.value.details


def test_an_item_is_never_added_twice_and_adds_record_history(tenant):
    queue = make_queue(tenant)
    trace = make_trace(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        item = services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        with pytest.raises(Conflict) as caught:
            services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        assert caught.value.details == {"item_id": item.pk}
        assert QueueItem.objects.filter(queue=queue).count() == 1
        history = QueueItem.history.filter(id=item.pk)
        assert [(h.history_type, h.history_user) for h in history] == [("+", tenant.owner)]


def test_bulk_priority_change_records_history_for_each_item(tenant):
    queue = make_queue(tenant)
    traces = [make_trace(tenant) for _ in range(3)]
    with tenancy.tenant_scope(tenant.organization.pk):
        items = [
            services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=t.pk)
            for t in traces
        ]
        services.queue_items_update(
            actor=Actor(user=tenant.admin),
            queue=queue,
            item_ids=[i.pk for i in items],
            priority=7,
        )
        for item in items:
            rows = list(QueueItem.history.filter(id=item.pk).order_by("history_date"))
            assert [r.history_type for r in rows] == ["+", "~"]
            assert rows[-1].priority == 7
            assert rows[-1].history_user == tenant.admin


def test_lowering_the_overlap_completes_items_with_enough_reviews(tenant):
    config = make_config(tenant)
    from tests.review.helpers import add_reviewers, add_traces

    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    done, untouched = add_traces(tenant, queue, 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=reviewers[0]), queue=queue)
        assert lease.item_id == done.pk
        services.assignment_submit(
            actor=Actor(user=reviewers[0]), assignment_id=lease.pk, values={str(config.pk): 1.0}
        )
        services.queue_update(actor=Actor(user=tenant.owner), queue=queue, overlap=1)
        done.refresh_from_db()
        untouched.refresh_from_db()
        assert (done.status, done.open_slots) == ("complete", 0)
        assert (untouched.status, untouched.open_slots) == ("open", 1)


@pytest.mark.parametrize(
    ("settings_", "field"),
    [({"name": "q" * 201}, "name"), ({"name": "Fine", "priority": 2**31}, "priority")],
)
def test_a_value_its_column_cannot_hold_is_refused_naming_the_field(
    tenant, client_for, settings_, field
):
    """A 201-character name or a priority past PostgreSQL's integer answers 400 with the
    field (was a DataError, 500), through the API and the service."""
    with tenancy.tenant_scope(tenant.organization.pk), pytest.raises(DomainError) as refused:
        services.queue_create(actor=Actor(user=tenant.owner), project=tenant.project, **settings_)
    assert field in refused.value.details
    url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/queues/"
    response = client_for(tenant.owner).post(url, settings_, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
