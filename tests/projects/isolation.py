from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from tests.factories import Tenant
from tests.isolation import IsolationData


def populate(tenant: Tenant) -> IsolationData:
    with tenancy.tenant_scope(tenant.organization.pk):
        invitation, token = services.invitation_create(
            actor=Actor(user=tenant.owner),
            acting_membership=None,
            email=f"invitee-only@{tenant.organization.slug}.example.com",
            role="reviewer",
        )
    return IsolationData(
        kwargs={"token": token},
        secret_kwargs={"token"},
        markers=[
            tenant.organization.name,
            tenant.owner.email,
            tenant.reviewer.email,
            invitation.email,
            tenant.api_key("all").prefix,
        ],
    )
