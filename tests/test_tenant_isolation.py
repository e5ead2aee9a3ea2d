"""Walks every route in the URL conf as another organization and proves that nothing of
the victim organization is read or written.

For each route and each method its view handles (and one it does not), the attacker
(the other organization's owner by session, its staff auditor, its all-scope API key,
and an anonymous caller) calls it twice: with the victim's organization and project slugs
and ids, and with the attacker's own slugs and the victim's ids. No response may
contain a marker of the victim's data, API routes addressed with the victim's slugs must
answer 401/403/404/405, nothing may answer 5xx, and afterwards every tenant-owned row of
the victim must be exactly as before.

New routes are covered without a new test: URL kwargs are filled from the view's
``scoped_model`` and from each app's ``tests/<app>/isolation.py`` (see tests/isolation.py).
A route with a kwarg nobody can fill fails the test, naming it.

One test per route, over two organizations built once per module (per xdist worker);
each test runs in a savepoint of them. A route without slugs (the same URL both ways) is
called once; a staff auditor's GETs of admin pages are left to the admin walker
(tests/test_admin_walker.py), which makes them all.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from hitl.tenancy import TenantModel, tenant_scope
from projects.models import Membership, Organization, Project, Role
from tests.factories import Tenant, add_member, make_tenant, make_user
from tests.isolation import IsolationData
from tests.worlds import built_once

METHODS = ["get", "post", "put", "patch", "delete"]
DENIED = {401, 403, 404, 405}
PATH_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
REGEX_PARAM = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")
APP_TEST_PACKAGES = ["projects", "traces", "review", "datasets"]


@dataclass
class Route:
    template: str  # "api/orgs/<org_slug>/members/<pk>/"
    pattern: URLPattern
    kwarg_names: list[str]

    @property
    def view_class(self) -> Any:
        return getattr(self.pattern.callback, "cls", None) or getattr(
            self.pattern.callback, "view_class", None
        )

    @property
    def handled_methods(self) -> list[str] | None:
        """The methods of METHODS the route's view has a handler for (a viewset route's
        actions, a class view's methods, an admin view's GET and POST); None for another
        function view (any method)."""
        callback = self.pattern.callback
        actions = getattr(callback, "actions", None)
        if actions is not None:
            return [method for method in METHODS if method in actions]
        if self.template.startswith("admin/"):
            return ["get", "post"]  # an admin view reads a POST, and any other as a GET
        view_class = self.view_class
        if view_class is None:
            return None
        return [method for method in METHODS if callable(getattr(view_class, method, None))]

    def methods_to_call(self) -> list[str]:
        """The methods the walkers send: every handled one, and one the route does not
        handle (it must be refused the same way: the others would be refused alike
        before any handler runs)."""
        handled = self.handled_methods
        if handled is None:
            return list(METHODS)
        unhandled = [method for method in METHODS if method not in handled]
        return handled + unhandled[:1]


def _normalise(fragment: str) -> str:
    fragment = fragment.lstrip("^").rstrip("$")
    fragment = REGEX_PARAM.sub(lambda m: f"<{m.group('name')}>", fragment)
    return PATH_PARAM.sub(lambda m: f"<{m.group('name')}>", fragment).replace("\\", "")


def iter_routes(patterns=None, prefix: str = "") -> list[Route]:
    routes: list[Route] = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        fragment = _normalise(str(entry.pattern))
        if isinstance(entry, URLResolver):
            routes.extend(iter_routes(entry.url_patterns, prefix + fragment))
        elif isinstance(entry, URLPattern):
            template = prefix + fragment
            names = re.findall(r"<(\w+)>", template)
            routes.append(Route(template, entry, names))
    return routes


def _admin_model_for(template: str) -> type | None:
    match = re.match(r"admin/(\w+)/(\w+)/", template)
    if not match:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))
    except LookupError:
        return None


def _first_row_of(model: type, tenant: Tenant) -> Any:
    organization = tenant.organization
    if model is Organization:
        return organization
    # Rows that belong to no tenant: use the victim's own person (and a group).
    if model is get_user_model():
        return tenant.owner
    if model is EmailAddress:
        return EmailAddress.objects.filter(user=tenant.owner).first()
    if model is Group:
        return Group.objects.get_or_create(name="victim-group")[0]
    model_admin = admin.site._registry.get(model)
    if model_admin is not None and hasattr(model, "instance_type"):  # a history browser
        field = model_admin.organization_field
        return model.objects.filter(**{field: organization.pk}).first()
    manager = getattr(model, "unscoped_across_tenants", model._base_manager)
    if "organization" in {f.name for f in model._meta.fields}:
        return manager.filter(organization=organization).order_by("pk").first()
    return None


class RouteFiller:
    """Fills URL kwargs for one organization's data."""

    def __init__(self, tenant: Tenant, data: IsolationData) -> None:
        self.tenant = tenant
        self.data = data

    def value(self, route: Route, name: str) -> Any:
        if name == "org_slug":
            return self.tenant.organization.slug
        if name == "project_slug":
            return self.tenant.project.slug
        if name in self.data.kwargs:
            return self.data.kwargs[name]
        view_class = route.view_class
        model = getattr(view_class, "scoped_model", None)
        if model is not None:
            lookup_kwarg = view_class.lookup_url_kwarg or view_class.lookup_field
            if name in ("pk", lookup_kwarg):
                row = _first_row_of(model, self.tenant)
                if row is None:
                    raise LookupError(f"no {model.__name__} row of the victim to use for {name}")
                return getattr(row, view_class.lookup_field)
        admin_model = _admin_model_for(route.template)
        if admin_model is not None and name == "object_id":
            row = _first_row_of(admin_model, self.tenant)
            if row is None:
                raise LookupError(f"no {admin_model.__name__} row of the victim")
            return row.pk
        if name == "id" and route.template.startswith("admin/auth/user/"):
            return self.tenant.owner.pk
        if route.template.startswith("admin/r/"):
            # The admin's "view on site" shortcut, aimed at the victim's project.
            if name == "content_type_id":
                return ContentType.objects.get_for_model(Project).pk
            return self.tenant.project.pk
        generic = {
            # Not tenant data: any value exercises the route.
            "app_label": "projects",
            "content_type_id": 1,
            "url": "x",
            "path": "x",
            "key": "abc",
            "uidb36": "1",
            "version_id": 1,
        }
        if name in generic:
            return generic[name]
        raise LookupError(name)

    def url(self, route: Route, overrides: dict[str, Any] | None = None) -> str:
        values = {name: self.value(route, name) for name in route.kwarg_names}
        values.update(overrides or {})
        url = "/" + route.template
        for name, value in values.items():
            url = url.replace(f"<{name}>", str(value), 1)
        return url


def _digest_sql(queryset: Any, order_by: str) -> tuple[str, tuple]:
    """A SELECT of one md5 over every row ``queryset`` selects, in ``order_by`` order."""
    sql, params = queryset.query.sql_with_params()
    column = connection.ops.quote_name(order_by)
    # The inner SQL and the column come from the ORM and the models, not from input.
    digest = f"md5(coalesce(string_agg(s::text, '|' ORDER BY s.{column}), ''))"
    return f"SELECT {digest} FROM ({sql}) s", params  # noqa: S608


def _victim_digest_query(victim: Tenant) -> tuple[str, list]:
    """One query of an md5 per table over every tenant-owned row of the victim (with its
    many-to-many links), its organization and its people. Compiled once per world and run
    after every route: the rows serialized instead were a quarter of this walker's time."""
    organization = victim.organization
    user_ids = [victim.owner.pk, victim.admin.pk, victim.reviewer.pk, victim.auditor.pk]
    users = get_user_model().objects.filter(pk__in=user_ids)
    selects = [
        _digest_sql(Organization.objects.filter(pk=organization.pk), "id"),
        _digest_sql(users, "id"),
    ]
    with tenant_scope(organization.pk):
        for model in apps.get_models():
            if not issubclass(model, TenantModel):
                continue
            rows = model.objects.all()
            selects.append(_digest_sql(rows, model._meta.pk.column))
            for field in model._meta.many_to_many:
                through = field.remote_field.through
                links = through.objects.filter(
                    **{f"{field.m2m_field_name()}__in": rows.values("pk")}
                )
                selects.append(_digest_sql(links, through._meta.pk.column))
    sql = " UNION ALL ".join(
        f"SELECT {n} AS n, ({select}) AS digest" for n, (select, _) in enumerate(selects)
    )
    return f"{sql} ORDER BY n", [param for _, params in selects for param in params]


def _victim_snapshot(query: tuple[str, list]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(*query)
        return "\n".join(digest for _, digest in cursor.fetchall())


def _populate(tenant: Tenant) -> IsolationData:
    merged = IsolationData()
    for package in APP_TEST_PACKAGES:
        try:
            module = importlib.import_module(f"tests.{package}.isolation")
        except ModuleNotFoundError:
            continue
        data = module.populate(tenant)
        merged.kwargs.update(data.kwargs)
        merged.markers.extend(data.markers)
        merged.secret_kwargs |= data.secret_kwargs
    return merged


def _body_for(method: str, victim_ids: dict[str, Any]) -> str | None:
    if method in ("get", "delete"):
        return None
    # Point every plausible reference at the victim's objects.
    return json.dumps(
        {
            "name": "attacker",
            "project_ids": [victim_ids["project"]],
            "member_ids": victim_ids["members"],
            "role": Role.OWNER,
            "email": "attacker@example.com",
            "events": [],
        }
    )


@dataclass
class World:
    victim: Tenant
    victim_data: IsolationData
    attacker: Tenant
    attacker_data: IsolationData
    attacker_auditor: Any

    def __post_init__(self) -> None:
        self.victim_fill = RouteFiller(self.victim, self.victim_data)
        self.attacker_fill = RouteFiller(self.attacker, self.attacker_data)
        self.markers = [m for m in self.victim_data.markers if m]
        self.victim_ids = {
            "project": self.victim.project.pk,
            "members": list(
                Membership.unscoped_across_tenants.filter(
                    organization=self.victim.organization
                ).values_list("pk", flat=True)
            ),
        }
        self.victim_digest = _victim_digest_query(self.victim)
        self.victim_before = _victim_snapshot(self.victim_digest)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> World:
    """Both organizations, built once per module (per xdist worker); each route's test
    runs in a savepoint of it, so what one route's calls wrote is gone for the next."""
    with built_once(django_db_blocker):
        # The same project slug in both: slugs are unique per organization only, and a
        # check that compared project slugs alone must not pass.
        victim = make_tenant("Victim", project_name="Assistant")
        attacker = make_tenant("Attacker", project_name="Assistant")
        victim_data = _populate(victim)
        attacker_data = _populate(attacker)
        # A staff auditor of the attacker's organization, for the admin routes.
        attacker_auditor = make_user("staff-auditor@attacker.example.com", is_staff=True)
        add_member(attacker.organization, attacker_auditor, Role.AUDITOR)
        yield World(victim, victim_data, attacker, attacker_data, attacker_auditor)


def _callers(attacker: Tenant, attacker_auditor) -> dict[str, APIClient]:
    owner = APIClient()
    owner.force_login(attacker.owner)
    auditor = APIClient()
    auditor.force_login(attacker_auditor)
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {attacker.key('all')}")
    return {"owner": owner, "staff-auditor": auditor, "api-key": key, "anonymous": APIClient()}


ROUTES = iter_routes()


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.template)
def test_every_route_is_isolated_between_organizations(world, db, route, record_property):
    victim_fill, attacker_fill = world.victim_fill, world.attacker_fill
    callers = _callers(world.attacker, world.attacker_auditor)
    markers = world.markers
    assert markers, "the victim's data must provide markers"

    secrets = {
        name: attacker_fill.value(route, name)
        for name in route.kwarg_names
        if name in world.victim_data.secret_kwargs
    }
    try:
        victim_url = victim_fill.url(route, secrets)
        # The attacker's own slugs with the victim's ids.
        mixed_url = attacker_fill.url(
            route,
            {
                name: victim_fill.value(route, name)
                for name in route.kwarg_names
                if name not in ("org_slug", "project_slug", *secrets)
            }
            | secrets,
        )
    except LookupError as exc:
        pytest.fail(
            "A route with URL kwargs the isolation test cannot fill; add them to the app's "
            f"tests/<app>/isolation.py populate(): {route.template}: {exc}"
        )
    failures, requests = [], 0
    addressed_to_victim = "<org_slug>" in route.template
    is_api = route.template.startswith(("api/", "v1/"))
    is_admin = route.template.startswith("admin/")
    urls = [(victim_url, addressed_to_victim)]
    if mixed_url != victim_url:  # a route without slugs: the same requests again
        urls.append((mixed_url, False))
    for url, uses_victim_slug in urls:
        for caller_name, client in callers.items():
            for method in route.methods_to_call():
                if is_admin and caller_name == "staff-auditor" and method == "get":
                    # The admin walker opens every admin page of the other organization's
                    # rows as a staff auditor (404, no marker): not asked twice.
                    continue
                response = getattr(client, method)(
                    url,
                    data=_body_for(method, world.victim_ids),
                    content_type="application/json",
                    HTTP_ACCEPT="application/json",
                )
                requests += 1
                where = f"{caller_name} {method.upper()} {url}"
                body = response.content.decode("utf-8", "replace")
                if response.status_code >= 500:
                    failures.append(f"{where}: server error {response.status_code}")
                leaked = [m for m in markers if m in body]
                if leaked:
                    failures.append(f"{where}: leaked {leaked}")
                if uses_victim_slug and is_api and response.status_code not in DENIED:
                    failures.append(f"{where}: answered {response.status_code}")
    record_property("walked:isolation walker requests", requests)
    # Every route's test starts from the world as built: the victim's rows as then.
    if _victim_snapshot(world.victim_digest) != world.victim_before:
        failures.append(f"{route.template}: the victim's rows changed")
    assert not failures, "\n".join(failures[:50])


def test_walker_sees_scoped_routes():
    templates = {route.template for route in iter_routes()}
    # Guard against a walker that silently walks little.
    assert len([t for t in templates if t.startswith("api/orgs/<org_slug>/")]) >= 8
    assert "api/orgs/<org_slug>/members/<pk>/" in templates
    assert "api/orgs/<org_slug>/projects/<project_slug>/api-keys/<pk>/" in templates
    assert any(t.startswith("admin/projects/membership/<object_id>/") for t in templates)


def test_admin_is_registered_for_every_tenant_model():
    missing = [
        model.__name__
        for model in apps.get_models()
        if issubclass(model, TenantModel) and model not in admin.site._registry
    ]
    assert not missing, f"tenant models without an admin: {missing}"


def test_the_victims_digest_sees_a_changed_row_a_new_link_and_a_renamed_person(db):
    victim = make_tenant("Victim")
    query = _victim_digest_query(victim)
    before = _victim_snapshot(query)
    assert _victim_snapshot(query) == before  # the same rows, the same digest
    with tenant_scope(victim.organization.pk):
        membership = Membership.objects.get(user=victim.reviewer)
        membership.projects.add(victim.project)
    with_link = _victim_snapshot(query)
    assert with_link != before
    with tenant_scope(victim.organization.pk):
        Project.objects.filter(pk=victim.project.pk).update(name="Renamed")
    assert _victim_snapshot(query) != with_link
    renamed = _victim_snapshot(query)
    get_user_model().objects.filter(pk=victim.auditor.pk).update(first_name="Mallory")
    assert _victim_snapshot(query) != renamed
