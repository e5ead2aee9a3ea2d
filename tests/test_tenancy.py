import pytest

from hitl import tenancy
from hitl.tenancy import TenantScopeError, tenant_scope
from projects.api.bases import ProjectScopedViewSet
from projects.models import Membership, Project


def test_tenant_model_refuses_to_query_without_scope(tenant):
    with pytest.raises(TenantScopeError):
        list(Project.objects.all())


def test_scope_limits_rows_to_its_organization(tenant, other_tenant):
    with tenant_scope(tenant.organization.pk):
        assert list(Project.objects.values_list("pk", flat=True)) == [tenant.project.pk]
        assert not Project.objects.filter(pk=other_tenant.project.pk).exists()
    with tenant_scope(other_tenant.organization.pk):
        assert list(Project.objects.values_list("pk", flat=True)) == [other_tenant.project.pk]


def test_saving_another_tenants_row_inside_a_scope_is_refused(tenant, other_tenant):
    foreign = Project.unscoped_across_tenants.get(pk=other_tenant.project.pk)
    with tenant_scope(tenant.organization.pk), pytest.raises(TenantScopeError):
        foreign.save()


def test_new_rows_take_the_organization_in_scope(tenant):
    with tenant_scope(tenant.organization.pk):
        membership = Membership.objects.create(
            user=tenant.owner.__class__.objects.create(
                username="x@example.com", email="x@example.com"
            ),
            role="viewer",
        )
    assert membership.organization_id == tenant.organization.pk


def test_scope_is_restored_after_the_block(tenant, other_tenant):
    with tenant_scope(tenant.organization.pk):
        with tenant_scope(other_tenant.organization.pk):
            assert tenancy.current_organization_id() == other_tenant.organization.pk
        assert tenancy.current_organization_id() == tenant.organization.pk
    assert tenancy.current_organization_id_or_none() is None


def test_a_viewset_cannot_override_the_scoped_queryset():
    with pytest.raises(TypeError, match="safely_get_queryset"):

        class LeakyViewSet(ProjectScopedViewSet):
            def get_queryset(self):
                return Project.unscoped_across_tenants.all()

    with pytest.raises(TypeError, match="get_object"):

        class LeakyObjectViewSet(ProjectScopedViewSet):
            def get_object(self):
                return None
