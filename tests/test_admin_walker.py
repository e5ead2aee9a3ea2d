"""Walks every URL of the admin site with real rows of every registered model.

Two organizations are built through the services (each app's ``tests/<app>/isolation.py``
plus a reviewed and edited annotation, so history has befores and afters). Every row a
tenant's build created is that tenant's: the walker snapshots the primary keys of every
model in ``admin.site._registry`` around each build, so a model registered tomorrow is
walked without editing this file, and the test fails if the fixture data holds no row
of it (extend the app's ``populate``).

Walked as a superuser, as the first organization's staff auditor and as the second
organization's staff auditor: the index, every app index, every site view, and for each
ModelAdmin every URL pattern it declares. Patterns without arguments (changelist, add)
are list pages; the changelist is walked again with each filter link and each date
hierarchy drill-down the page renders (its own, and the superuser's, which carry the
other tenant's ids), with a search, and as a raw-id popup. Patterns with an object id
(change, history, delete, ...) are walked for a spread sample of each tenant's rows (the
first, a middle one and the last), and ``.../history/<version_id>/`` for a spread sample
of each walked row's historical versions, and (as the superuser) with ids that are no
ids (``BOGUS_IDS``), which must be not found, never a server error.

The organizations are built once per module (per pytest-xdist worker); each test runs in
a savepoint of that world: one test walks the site views, one test per registered model
walks that model's admin, so the walk spreads over the workers. The module prints the
number of pages walked in the terminal summary (tests/parallel.py sums the workers').

The rules, checked on every response:

* nothing answers 5xx;
* a staff auditor never sees a marker of the other organization (body or redirect);
* per-object pages of the other organization's rows answer 404 when the model's admin is
  tenant-scoped, and 403 when the auditor may not use that admin at all (users, groups,
  email addresses: 403 for their own organization's rows too, so nothing is told);
* per-object pages of their own organization's rows answer 200 (delete: 403, auditors
  only read); the superuser gets 200 on every per-object page;
* changelists answer 200 (403 for admins the auditor may not use), with every filter.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import NoReverseMatch, Resolver404, URLPattern, URLResolver, resolve, reverse
from django.urls.resolvers import RoutePattern
from simple_history.admin import SimpleHistoryAdmin

from hitl import tenancy
from hitl.admin import ReadOnlyForAuditorsMixin
from hitl.audit import Actor
from projects.models import Role
from review import services as review_services
from tests.factories import Tenant, add_member, make_tenant, make_user
from tests.review.helpers import make_config, make_queue, make_trace
from tests.worlds import built_once

APP_TEST_PACKAGES = ["projects", "traces", "review", "datasets"]
# Site views that are not walked, and why.
SITE_VIEWS_NOT_WALKED = {
    "logout": "signs the walker out",
    "view_on_site": "no registered model has get_absolute_url (asserted below)",
}
SORT_OR_PAGE = {"o", "p", "_popup", "_to_field"}
DATE_DRILL = re.compile(r"__(year|month|day)$")


@dataclass
class Built:
    tenant: Tenant
    topic: str
    staff_auditor: Any
    markers: list[str]
    rows: dict[type, list[Any]] = field(default_factory=dict)  # model -> pks


def _registered_pks() -> dict[type, set[Any]]:
    return {
        model: set(model._base_manager.values_list("pk", flat=True))
        for model in admin.site._registry
    }


def _build(name: str, topic: str) -> Built:
    """One organization with rows of every app, and the rows it created per model."""
    before = _registered_pks()
    tenant = make_tenant(name, project_name=f"{topic} assistant {name}")
    slug = tenant.organization.slug
    markers: list[str] = []
    for app in APP_TEST_PACKAGES:
        try:
            module = importlib.import_module(f"tests.{app}.isolation")
        except ModuleNotFoundError:
            continue
        markers.extend(module.populate(tenant).markers)

    # A queue a person would name, a review, and an edit of it: history with a before
    # and an after for each answer.
    accuracy = make_config(tenant, name=f"{topic} accuracy {slug}")
    queue_name = f"{topic} second opinion {slug}"
    queue = make_queue(tenant, configs=[accuracy], name=queue_name, overlap=1)
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        trace = make_trace(tenant, name=f"{topic} consult {slug}")
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        assignment = review_services.queue_claim_next(actor=reviewer, queue=queue)
        annotation = review_services.assignment_submit(
            actor=reviewer,
            assignment_id=assignment.pk,
            values={str(accuracy.pk): 0.25},
            explanation=f"{topic} first read {slug}",
        )
        review_services.annotation_update(
            actor=reviewer,
            annotation_id=annotation.pk,
            expected_version=annotation.version,
            values={str(accuracy.pk): 0.75},
        )
    Group.objects.create(name=f"{topic} reviewers {slug}")
    staff_auditor = make_user(f"staff-auditor@{slug}.example.com", is_staff=True)
    add_member(tenant.organization, staff_auditor, Role.AUDITOR)
    markers += [queue_name, accuracy.name, f"{topic} first read {slug}", slug]

    after = _registered_pks()
    built = Built(tenant=tenant, topic=topic, staff_auditor=staff_auditor, markers=markers)
    built.rows = {model: sorted(after[model] - before[model]) for model in after}
    return built


@dataclass
class Page:
    url: str
    kind: str  # "site", "list", "filter", "object"
    model: type | None = None
    owner: Built | None = None  # the tenant whose row a per-object page shows
    pattern: str = ""


class Walker:
    def __init__(self, role: str, user: Any, own: Built | None, other: Built | None) -> None:
        self.role = role
        self.client = Client(raise_request_exception=False)  # a 500 is a failure to list
        self.client.force_login(user)
        self.user = user
        self.own = own
        self.other = other
        self.failures: list[str] = []
        self.walked = 0
        self.url_names: set[str] = set()

    # -- requests and rules -------------------------------------------------------
    def get(self, page: Page, expected: set[int] | str | None = None) -> str:
        response = self.client.get(page.url, follow=True)
        if expected == REFUSED:
            refused = response.status_code in (403, 404) or (
                response.redirect_chain and response.request["PATH_INFO"] == reverse("admin:index")
            )
            if not refused:
                self.failures.append(f"{self.role}: {page.url} was not refused")
            expected = None
        self.walked += 1
        with contextlib.suppress(Resolver404):  # a bogus URL is judged by its status
            self.url_names.add(resolve(page.url.split("?")[0]).url_name or "")
        status = response.status_code
        body = response.content.decode(errors="replace")
        if status >= 500:
            self.failures.append(f"{self.role}: {page.url} answered {status}")
        if expected is not None and status not in expected:
            self.failures.append(
                f"{self.role}: {page.url} answered {status}, expected {sorted(expected)}"
            )
        if self.other is not None:
            seen = body + " ".join(url for url, _ in response.redirect_chain)
            for marker in self.other.markers:
                if marker in seen or html.escape(marker) in seen:
                    self.failures.append(
                        f"{self.role}: {page.url} shows {marker!r} of another organization"
                    )
        return body if status == 200 else ""


def _admin_patterns(patterns: list, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found.extend(_admin_patterns(entry.url_patterns, prefix + str(entry.pattern)))
        else:
            found.append((prefix + str(entry.pattern), entry))
    return found


def _argument_count(pattern: URLPattern) -> int:
    regex = pattern.pattern.regex
    return regex.groups


def _filled(pattern: URLPattern, value: str) -> str:
    """The path of a one-argument pattern (named or not) relative to its ModelAdmin."""
    route = str(pattern.pattern)
    if isinstance(pattern.pattern, RoutePattern):
        return re.sub(r"<[^>]+>", lambda _: value, route)
    return re.sub(r"\([^)]*\)", lambda _: value, route.lstrip("^").rstrip("$"))


def _query_links(body: str) -> list[str]:
    """Query strings of the links a changelist renders for filters, facets and the date
    hierarchy (not sorting or pagination)."""
    links = []
    for raw in re.findall(r'href="\?([^"]*)"', body):
        query = html.unescape(raw)
        keys = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
        if keys & SORT_OR_PAGE:
            continue
        links.append(query)
    return links


def _date_keys(query: str) -> set[str]:
    return {key for key, _ in parse_qsl(query) if DATE_DRILL.search(key)}


def _history_versions(model: type, pk: Any) -> list[Any]:
    if not hasattr(model._meta, "simple_history_manager_attribute"):
        return []
    historical = model.history.model
    return list(
        historical._default_manager.filter(**{model._meta.pk.attname: pk}).values_list(
            "history_id", flat=True
        )
    )


# Per-object pages are walked for a sample of each tenant's rows of a model (the first,
# a middle and the last, so rows made early and late by different services are both
# seen) and of each row's history versions: the rules are per model and per tenant, and
# every row would multiply the walk (thousands of pages) without another kind of page.
# The superuser renders the sample; an auditor, whose rules are who may open a row
# (their organization's, never the other's), opens the first row and version of each.
SAMPLE = 3
# Object ids that are no ids of any row: a word, a path with a slash (``<path:...>``
# patterns take it), a number past every integer column.
BOGUS_IDS = ("abc", "1/change", "9" * 20)


def sample(values: list[Any], size: int = SAMPLE) -> list[Any]:
    """Up to ``size`` of ``values``, spread: the first, the last and evenly between."""
    if len(values) <= size:
        return list(values)
    if size == 1:
        return values[:1]
    step = (len(values) - 1) / (size - 1)
    return [values[round(n * step)] for n in range(size)]


REFUSED = "refused"  # 403, 404, or Django's "does not exist" redirect to the index


def _object_expectation(
    walker: Walker, model_admin: Any, owner: Built, name: str
) -> set[int] | str:
    if walker.role == "superuser":
        if name.endswith("_delete") and not model_admin.has_delete_permission(
            SimpleNamespace(user=walker.user)
        ):
            return {403}
        return {200}
    if not isinstance(model_admin, ReadOnlyForAuditorsMixin):
        # An admin auditors may not use at all (users, groups, the outbox): refused
        # the same way for their own organization's rows, so nothing is told.
        return REFUSED
    if owner is walker.own:
        return {403} if name.endswith("_delete") else {200}
    return {404}


def walk_site(walker: Walker) -> None:
    """Site views: index, app indexes, and every other view of the site itself."""
    walker.get(Page(reverse("admin:index"), "site"), {200})
    for app_label in sorted({model._meta.app_label for model in admin.site._registry}):
        walker.get(Page(reverse("admin:app_list", args=[app_label]), "site"))
    # Every other view of the site that takes no argument (the change log, a view added
    # tomorrow): found in the site's URLs, not listed here.
    model_names = {
        pattern.name
        for model_admin in admin.site._registry.values()
        for _template, pattern in _admin_patterns(model_admin.urls)
    }
    for _template, pattern in _admin_patterns(admin.site.get_urls()):
        name = pattern.name
        if (
            not name
            or name in model_names
            or name in SITE_VIEWS_NOT_WALKED
            or name in {"index", "app_list", "autocomplete"}
            or _argument_count(pattern)
        ):
            continue
        walker.get(Page(reverse(f"admin:{name}"), "site"))
    walker.get(Page("/admin/not-a-page/", "site"), {404})
    walker.get(Page(reverse("admin:autocomplete"), "site"))


def walk_model(
    walker: Walker, model: type, tenants: list[Built], superuser_links: dict[str, set[str]]
) -> None:
    """Every URL of the model's admin (and its autocomplete and raw-id popups)."""
    role = walker.role
    model_admin = admin.site._registry[model]
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    scoped = isinstance(model_admin, ReadOnlyForAuditorsMixin)
    list_ok = {200} if role == "superuser" or scoped else {403}

    # Autocomplete for every autocomplete field of this admin.
    for field_name in model_admin.autocomplete_fields:
        query = urlencode(
            {
                "app_label": opts.app_label,
                "model_name": opts.model_name,
                "field_name": field_name,
                "term": "",
            }
        )
        walker.get(Page(f"{reverse('admin:autocomplete')}?{query}", "site"))
    # Raw-id popups for every raw-id field of this admin.
    for field_name in model_admin.raw_id_fields:
        remote = opts.get_field(field_name).remote_field
        target = remote.model._meta
        to_field = remote.get_related_field().name
        url = reverse(f"admin:{target.app_label}_{target.model_name}_changelist")
        walker.get(Page(f"{url}?{urlencode({'_to_field': to_field, '_popup': 1})}", "list"))

    for template, pattern in _admin_patterns(model_admin.urls):
        name = pattern.name or ""
        arguments = _argument_count(pattern)
        if arguments == 0:
            url = reverse(f"admin:{name}")
            expected = list_ok if name.endswith("_changelist") else None
            body = walker.get(Page(url, "list", model), expected)
            if not name.endswith("_changelist"):
                continue
            links = set(_query_links(body)) | superuser_links.get(changelist, set())
            if role == "superuser":
                superuser_links[changelist] = set(links)
            seen: set[str] = set()
            queue = sorted(links)
            while queue:
                query = queue.pop()
                if query in seen:
                    continue
                seen.add(query)
                body = walker.get(Page(f"{changelist}?{query}", "filter", model), list_ok)
                if _date_keys(query):  # drill down the date hierarchy
                    queue.extend(
                        link for link in _query_links(body) if _date_keys(link) > _date_keys(query)
                    )
            for built in tenants:
                # A word of each tenant's names, not a marker: the page echoes it.
                term = built.topic
                walker.get(Page(f"{changelist}?{urlencode({'q': term})}", "filter"), list_ok)
            continue
        size = SAMPLE if walker.own is None else 1
        for built in tenants:
            for pk in sample(built.rows[model], size):
                expected = _object_expectation(walker, model_admin, built, name)
                if arguments == 1:
                    url = changelist + _filled(pattern, quote(str(pk)))
                    walker.get(Page(url, "object", model, built, name), expected)
                elif name.endswith("_simple_history") and isinstance(
                    model_admin, SimpleHistoryAdmin
                ):
                    versions = sample(_history_versions(model, pk), size)
                    if not versions:  # a model that keeps no edit history
                        url = reverse(f"admin:{name}", args=[quote(pk), 0])
                        walker.get(Page(url, "object", model, built, name), {404})
                    for version in versions:
                        url = reverse(f"admin:{name}", args=[quote(pk), version])
                        walker.get(Page(url, "object", model, built, name), expected)
                else:
                    walker.failures.append(f"no way to fill the admin URL {template!r}")
        if walker.own is None:
            rows = [pk for built in tenants for pk in built.rows[model]][:1]
            for bogus in BOGUS_IDS:  # every argument of the pattern is the bogus id
                walker.get(Page(changelist + _filled(pattern, bogus), "bogus", model))
                if arguments == 2 and rows:  # a real object, a bogus second argument
                    with contextlib.suppress(NoReverseMatch):
                        url = reverse(f"admin:{name}", args=[quote(rows[0]), bogus])
                        walker.get(Page(url, "bogus", model))


MODELS = list(admin.site._registry)


@dataclass
class World:
    acme: Built
    globex: Built
    root: Any

    @property
    def tenants(self) -> list[Built]:
        return [self.acme, self.globex]

    def walkers(self) -> list[Walker]:
        # The superuser first: the auditors also walk the filter links it was shown.
        return [
            Walker("superuser", self.root, None, None),
            Walker("auditor of Acme", self.acme.staff_auditor, self.acme, self.globex),
            Walker("auditor of Globex", self.globex.staff_auditor, self.globex, self.acme),
        ]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Both organizations and a superuser, built once per module (per xdist worker)."""
    with built_once(django_db_blocker):
        acme = _build("Acme", "Cardiology")
        globex = _build("Globex", "Oncology")
        root = make_user("root-walker@example.com", is_staff=True)
        root.is_superuser = True
        root.save()
        yield World(acme, globex, root)


def _check(walkers: list[Walker], record_property) -> None:
    # Summed over the run (and the workers) in the terminal summary (tests/parallel.py).
    record_property("walked:admin walker requests", sum(w.walked for w in walkers))
    failures = [failure for walker in walkers for failure in walker.failures]
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:60])


def test_every_registered_model_has_rows_of_both_tenants(world, db):
    empty = [
        f"{model._meta.label} ({built.tenant.organization.name})"
        for model in admin.site._registry
        for built in world.tenants
        if not built.rows[model]
    ]
    assert not empty, (
        "Registered admin models without rows in the walker's data; extend the app's "
        f"tests/<app>/isolation.py populate() so the walker can open them: {empty}"
    )
    assert not [m for m in admin.site._registry if hasattr(m, "get_absolute_url")], (
        "A model has get_absolute_url: walk admin:view_on_site in this test"
    )


def test_every_admin_site_view(world, db, record_property):
    walkers = world.walkers()
    for walker in walkers:
        walk_site(walker)
    _check(walkers, record_property)
    # Every named URL of the site itself was requested (or is listed as not walked);
    # each model's test checks the URLs of its admin.
    model_names = {
        pattern.name
        for model_admin in admin.site._registry.values()
        for _template, pattern in _admin_patterns(model_admin.urls)
    }
    names = {
        pattern.name
        for _template, pattern in _admin_patterns(admin.site.get_urls())
        if pattern.name and pattern.name not in model_names
    }
    missing = names - walkers[0].url_names - set(SITE_VIEWS_NOT_WALKED)
    assert not missing, f"admin URLs the walker never requested: {sorted(missing)}"
    assert all(walker.walked >= len(names) - len(SITE_VIEWS_NOT_WALKED) for walker in walkers)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_every_admin_page_of_a_model(world, db, model, record_property):
    walkers = world.walkers()
    superuser_links: dict[str, set[str]] = defaultdict(set)
    for walker in walkers:
        walk_model(walker, model, world.tenants, superuser_links)
    _check(walkers, record_property)
    # Every named URL of the model's admin was requested.
    names = {pattern.name for _t, pattern in _admin_patterns(admin.site._registry[model].urls)}
    missing = {name for name in names if name} - walkers[0].url_names
    assert not missing, f"admin URLs the walker never requested: {sorted(missing)}"
    # Guard against a walker that silently walks little.
    assert all(walker.walked >= 1 for walker in walkers)
