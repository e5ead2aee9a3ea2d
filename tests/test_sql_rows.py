"""Hand-written SQL on hot paths (hitl.sql_rows, hitl.tenancy.scope_sql): rows become
the instances the ORM builds, prepared statements are logged as Django logs its own,
and the tenant filter fails closed as the manager does."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hitl import sql_rows, tenancy
from hitl.audit import Actor
from hitl.tenancy import TenantScopeError
from review import services
from review.models import Assignment, QueueFormField, QueueItem, ReviewQueue, ScoreConfig
from review.selectors import queue_form
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def _read(model, pk):
    columns, table = sql_rows.columns(model, "t"), model._meta.db_table  # ours, not input
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} t WHERE t.id = %s", [pk])  # noqa: S608
        return sql_rows.instance(model, cursor.fetchone())


def test_a_row_read_by_sql_is_the_instance_the_orm_reads(tenant):
    options = [{"label": "Yes", "value": 1.0}, {"label": "No", "value": 0.0}]
    config = make_config(
        tenant, data_type="categorical", min_value=None, max_value=None, step=None,
        options=options,
    )  # fmt: skip
    (reviewer,) = add_reviewers(tenant, 1)
    queue = make_queue(tenant, configs=[config], reviewers=[reviewer], overlap=2)
    add_traces(tenant, queue, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        QueueItem.objects.update(source_detail={"why": ["a", 1]}, required_skills=["es"])
        lease = services.queue_claim_next(actor=Actor(user=reviewer), queue=queue)
        field = QueueFormField.objects.get(queue=queue)
        for model, pk in (
            (QueueItem, lease.item_id),
            (ReviewQueue, queue.pk),
            (Assignment, lease.pk),
            (ScoreConfig, config.pk),
            (QueueFormField, field.pk),
        ):
            by_sql, by_orm = _read(model, pk), model.objects.get(pk=pk)
            assert _fields(by_sql) == _fields(by_orm), model.__name__
            assert by_sql._state.adding is False and by_sql._state.db == "default"
        item = _read(QueueItem, lease.item_id)
        assert item.source_detail == {"why": ["a", 1]} and item.required_skills == ["es"]
        assert _read(ScoreConfig, config.pk).options == options


def test_a_prepared_statement_is_logged_with_its_parameters(tenant):
    with CaptureQueriesContext(connection) as seen:
        for _ in range(2):  # prepared on the first run, reused on the second
            with sql_rows.prepared_cursor() as cursor:
                cursor.execute("SELECT %s::int + 1, %s::text", [41, "x"])
                assert cursor.fetchone() == (42, "x")
    assert [q["sql"] for q in seen.captured_queries] == ["SELECT 41::int + 1, 'x'::text"] * 2


def test_the_sql_tenant_filter_fails_closed_as_the_manager_does(tenant, other_tenant):
    with pytest.raises(TenantScopeError):
        tenancy.scope_sql("t.organization_id")
    mine, theirs = tenant.organization.pk, other_tenant.organization.pk
    with tenancy.tenant_scope(mine):
        assert tenancy.scope_sql("t.organization_id") == ("t.organization_id = %s", [mine])
    with tenancy.organizations_read_scope([theirs, mine]):
        assert tenancy.scope_sql("organization_id") == (
            "organization_id = ANY(%s)",
            [sorted([mine, theirs])],
        )
    with tenancy.all_tenants_scope_for_superuser():
        assert tenancy.scope_sql("organization_id") == ("true", [])


def test_the_queue_form_by_sql_reads_the_organization_in_scope_only(tenant, other_tenant):
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    with tenancy.tenant_scope(tenant.organization.pk):
        (question,) = queue_form(queue)
        assert question.config == config and question.config.rubric == config.rubric
    with tenancy.tenant_scope(other_tenant.organization.pk):
        assert queue_form(queue) == []
    with pytest.raises(TenantScopeError):
        queue_form(queue)
