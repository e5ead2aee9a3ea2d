"""Builders for test data. They go through the services, so tests exercise the same
write paths (history, tenancy) the product uses."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from projects.models import ApiKey, Membership, Organization, Project, Role

User = get_user_model()
_sequence = itertools.count(1)
PASSWORD = "correct-horse-battery-staple-42"


def make_user(email: str | None = None, *, is_staff: bool = False, password: str = PASSWORD):
    email = email or f"user{next(_sequence)}@example.com"
    user = User.objects.create_user(
        username=email, email=email, password=password, is_staff=is_staff
    )
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@dataclass
class Tenant:
    """One organization with a project, people in every role, and API keys."""

    organization: Organization
    project: Project
    owner: object
    admin: object
    reviewer: object
    auditor: object
    viewer: object
    keys: dict[str, str] = field(default_factory=dict)  # scope name or "all" -> raw key

    def key(self, scope: str = "all") -> str:
        return self.keys[scope]

    def api_key(self, scope: str = "all") -> ApiKey:
        raw = self.keys[scope]
        return ApiKey.unscoped_across_tenants.get(prefix=raw[:13])


def add_member(organization: Organization, user, role: str) -> Membership:
    with tenancy.tenant_scope(organization.pk):
        return Membership.objects.create(user=user, role=role)


def make_tenant(name: str = "Acme", *, project_name: str | None = None) -> Tenant:
    n = next(_sequence)
    slug = f"{name.lower()}-{n}"
    owner = make_user(f"owner{n}@{slug}.example.com")
    organization = services.organization_create(actor=Actor(user=owner), name=name, slug=slug)
    actor = Actor(user=owner)
    with tenancy.tenant_scope(organization.pk):
        project = services.project_create(actor=actor, name=project_name or f"{name} assistant")
        people = {
            role: make_user(f"{role}{n}@{slug}.example.com")
            for role in (Role.ADMIN, Role.REVIEWER, Role.AUDITOR, Role.VIEWER)
        }
        for role, user in people.items():
            Membership.objects.create(user=user, role=role)
        keys = {}
        for scopes_name, scopes in {
            "all": ["ingest", "read", "write"],
            "ingest": ["ingest"],
            "read": ["read"],
            "write": ["write"],
        }.items():
            _key, raw = services.api_key_create(
                actor=actor, project=project, name=f"{scopes_name} key", scopes=scopes
            )
            keys[scopes_name] = raw
    return Tenant(
        organization=organization,
        project=project,
        owner=owner,
        admin=people[Role.ADMIN],
        reviewer=people[Role.REVIEWER],
        auditor=people[Role.AUDITOR],
        viewer=people[Role.VIEWER],
        keys=keys,
    )
