"""Demo data for a local stack: an organization, an admin, two reviewers, an auditor,
a project with an API key, then every demo step the other apps registered (sample
traces, review queues, ...), see :mod:`projects.demo`."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from projects.demo import DemoContext, demo_steps
from projects.models import Membership, Organization, Project, Role

DEMO_PASSWORD = "hitl-demo-password"  # noqa: S105 - local demo logins, printed on purpose
PEOPLE = [
    ("admin@demo.hitl.local", Role.ADMIN, False),
    ("reviewer1@demo.hitl.local", Role.REVIEWER, False),
    ("reviewer2@demo.hitl.local", Role.REVIEWER, False),
    ("auditor@demo.hitl.local", Role.AUDITOR, True),
]


class Command(BaseCommand):
    help = "Creates the demo organization and prints its logins (idempotent)."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        with transaction.atomic():
            users = {}
            for email, _role, is_staff in PEOPLE:
                user, created = User.objects.get_or_create(
                    username=email, defaults={"email": email, "is_staff": is_staff}
                )
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                EmailAddress.objects.get_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                users[email] = user
            admin = users["admin@demo.hitl.local"]
            organization = Organization.objects.filter(slug="northwind-health").first()
            if organization is None:
                organization = services.organization_create(
                    actor=Actor(user=admin, source="command"),
                    name="Northwind Health",
                    slug="northwind-health",
                )
            actor = Actor(user=admin, source="command")
            with tenancy.tenant_scope(organization.pk):
                for email, role, _staff in PEOPLE[1:]:
                    Membership.objects.get_or_create(user=users[email], defaults={"role": role})
                project = organization_project(actor)
                _key, raw_key = services.api_key_create(
                    actor=actor,
                    project=project,
                    name="demo key",
                    scopes=["ingest", "read", "write"],
                )
        context = DemoContext(organization=organization, project=project, actor=actor, people=users)
        lines = []
        with tenancy.tenant_scope(organization.pk):
            for _name, step in demo_steps():
                lines.append(step(context))
        self.stdout.write(self.style.SUCCESS("Demo organization: Northwind Health"))
        self.stdout.write(f"  password for every demo login: {DEMO_PASSWORD}")
        for email, role, is_staff in [("admin@demo.hitl.local", Role.OWNER, False), *PEOPLE[1:]]:
            staff = " (staff: can open /admin/)" if is_staff else ""
            self.stdout.write(f"  {role:9} {email}{staff}")
        self.stdout.write(f"  project: {project.slug}; API key (shown once): {raw_key}")
        for line in lines:
            if line:
                self.stdout.write(f"  {line}")


def organization_project(actor: Actor) -> Project:
    project = Project.objects.filter(slug="clinical-assistant").first()
    if project is None:
        project = services.project_create(
            actor=actor,
            name="Clinical assistant",
            slug="clinical-assistant",
            description="Answers clinicians' questions from the formulary and guidelines.",
        )
    return project
