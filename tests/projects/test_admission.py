"""The admission of a signed-in person to the organization (and project) a URL names:
one statement reads the membership, its organization, the projects it is narrowed to
and the project the URL names, on every page and API request."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from projects.models import Membership
from projects.selectors import admission, membership_sees_project, projects_visible_to
from tests.factories import make_tenant


def test_one_statement_admits_the_member_with_the_project_and_its_narrowing(
    tenant, django_assert_num_queries
):
    with tenancy.tenant_scope(tenant.organization.pk):
        second = services.project_create(actor=Actor(user=tenant.owner), name="Second")
        Membership.objects.get(user=tenant.reviewer).projects.set([second])
    org, slug = tenant.organization.slug, tenant.project.slug

    with django_assert_num_queries(1):
        admitted = admission(tenant.reviewer, org, slug)
        membership = admitted.membership
        assert membership.organization == tenant.organization
        assert admitted.project == tenant.project
        # The narrowing came with it: the visibility rule asks nothing more.
        assert not membership_sees_project(membership, tenant.project)
        assert membership_sees_project(membership, second)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert list(projects_visible_to(membership)) == [second]

    owner = admission(tenant.owner, org, slug)
    assert owner.membership.role == "owner" and membership_sees_project(owner.membership, second)
    assert admission(tenant.reviewer, org).project is None  # no project named


def test_nobody_is_admitted_elsewhere_and_no_project_crosses_organizations(tenant):
    other = make_tenant("Other")
    # Another organization's project, by its slug, is no project of this one.
    assert other.project.slug != tenant.project.slug
    admitted = admission(tenant.owner, tenant.organization.slug, other.project.slug)
    assert admitted.membership.organization == tenant.organization
    assert admitted.project is None
    assert admission(tenant.owner, other.organization.slug) is None
    assert admission(tenant.owner, "no-such-organization", tenant.project.slug) is None
    assert admission(tenant.owner, None) is None
