"""Raw-SQL writers state the tenant they write for; the ORM's save() check cannot see them."""

import pytest

from hitl.audit import Actor
from hitl.tenancy import TenantScopeError, tenant_scope
from review.services.claims import queue_claim_next
from tests.review.helpers import add_traces, make_queue
from traces.ingest.validation import parse_events
from traces.services import ingest_batch


def test_ingestion_refuses_another_tenants_project_inside_a_scope(tenant, other_tenant):
    batch = parse_events([{"type": "trace", "body": {"id": "t-1", "name": "x"}}])
    with tenant_scope(tenant.organization.pk), pytest.raises(TenantScopeError):
        ingest_batch(actor=Actor(source="api"), project=other_tenant.project, batch=batch)
    with tenant_scope(other_tenant.organization.pk):
        result = ingest_batch(actor=Actor(source="api"), project=other_tenant.project, batch=batch)
    assert result.stored["traces"] == 1


def test_raw_writers_refuse_without_a_single_tenant_in_scope(tenant):
    batch = parse_events([{"type": "trace", "body": {"id": "t-2", "name": "x"}}])
    with pytest.raises(TenantScopeError):
        ingest_batch(actor=Actor(source="api"), project=tenant.project, batch=batch)


def test_claim_refuses_another_tenants_queue_inside_a_scope(tenant, other_tenant):
    queue = make_queue(other_tenant)
    add_traces(other_tenant, queue, 1)
    with tenant_scope(tenant.organization.pk), pytest.raises(TenantScopeError):
        queue_claim_next(actor=Actor(user=other_tenant.reviewer), queue=queue)
    with tenant_scope(other_tenant.organization.pk):
        lease = queue_claim_next(actor=Actor(user=other_tenant.reviewer), queue=queue)
    assert lease is not None
