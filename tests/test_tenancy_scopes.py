"""Read scopes of several organizations and the all-tenants scope of superusers."""

import pytest

from hitl import tenancy
from hitl.tenancy import (
    TenantScopeError,
    all_tenants_scope_for_superuser,
    organizations_read_scope,
    tenant_scope,
)
from projects.models import Project
from tests.factories import make_tenant


@pytest.fixture
def third_tenant(db):
    return make_tenant("Initech")


def _project_ids() -> set[int]:
    return set(Project.objects.values_list("pk", flat=True))


def test_a_read_scope_reads_exactly_its_organizations(tenant, other_tenant, third_tenant):
    with organizations_read_scope([tenant.organization.pk, other_tenant.organization.pk]):
        assert _project_ids() == {tenant.project.pk, other_tenant.project.pk}
        assert not Project.objects.filter(pk=third_tenant.project.pk).exists()
    with organizations_read_scope([]):
        assert _project_ids() == set()


def test_the_all_tenants_scope_reads_every_organization(tenant, other_tenant, third_tenant):
    with all_tenants_scope_for_superuser():
        assert {tenant.project.pk, other_tenant.project.pk, third_tenant.project.pk} <= (
            _project_ids()
        )


def test_only_a_single_organization_scope_names_an_organization(tenant, other_tenant):
    with organizations_read_scope([tenant.organization.pk]):
        with pytest.raises(TenantScopeError):
            tenancy.current_organization_id()
        assert tenancy.current_organization_id_or_none() is None
    with all_tenants_scope_for_superuser():
        with pytest.raises(TenantScopeError):
            tenancy.current_organization_id()
        assert tenancy.current_organization_id_or_none() is None
        with tenant_scope(other_tenant.organization.pk):
            assert tenancy.current_organization_id() == other_tenant.organization.pk
        with tenancy.scope_boundary(), pytest.raises(TenantScopeError):
            list(Project.objects.all())
        assert Project.objects.filter(pk=tenant.project.pk).exists()


def test_a_read_scope_refuses_rows_outside_its_set_and_new_rows(tenant, other_tenant):
    with organizations_read_scope([tenant.organization.pk]):
        own = Project.objects.get(pk=tenant.project.pk)
        own.description = "edited in a read scope of its organization"
        own.save()
        foreign = Project.unscoped_across_tenants.get(pk=other_tenant.project.pk)
        with pytest.raises(TenantScopeError):
            foreign.save()
        with pytest.raises(TenantScopeError, match="needs one organization"):
            Project(name="orphan", slug="orphan").save()
    with all_tenants_scope_for_superuser(), pytest.raises(TenantScopeError):
        Project(name="orphan", slug="orphan").save()
    with tenant_scope(tenant.organization.pk):
        assert Project.objects.get(pk=tenant.project.pk).description.startswith("edited")
