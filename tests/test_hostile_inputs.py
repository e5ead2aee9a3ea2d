"""Walks every API operation and every page form with hostile values: no request may
answer 5xx, and the server must still answer a plain request after each batch.

The API side comes from the OpenAPI schema matched to the URL conf: every body property
(and the properties of nested objects and of arrays of objects) and every query
parameter gets each value of ``tests.hostile.HOSTILE`` (NUL, a lone surrogate, NaN,
+-Infinity, 1e400, 1e-999999, a 400-digit integer, a +16:00 offset, 10,000-deep JSON,
100,000 characters, formula cells, RTL and zero-width characters, wrong types), with the
other required properties built from the schema's examples and types and references
pointing at real rows. Every API path is also called with broken Authorization headers.

The page side GETs every page of the URL conf as the organization's owner (and as a
visitor, for the sign-in pages) with real rows, parses each ``<form>``, and submits each
form once per field per value, the other fields as the page pre-filled them (a field
repeated per row, ``tol-4`` and ``tol-9``, gets the value in all its rows in one request:
``hostile.field_families``); then GETs
each page with each value in each query parameter the page knows: its GET forms' fields,
its links' query keys, and the query parameters of the API list it mirrors (the trace
explorer's filters are the traces API's).

URL kwargs are filled by the isolation walker's RouteFiller from each app's
``tests/<app>/isolation.py``; a route, form or field added tomorrow is walked without
editing this file. Each request runs in a savepoint that is rolled back, so the rows are
built once for the module (per pytest-xdist worker), and the pages are fetched and their
forms parsed once with them. The walk is one test per API operation (body, query) and
one per page route (its forms, its query parameters), so it spreads over the workers; a
form found on several pages is walked on the first of them. Each test records the
requests it made (``walked:...``, summed by tests/parallel.py).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests import hostile
from tests.factories import make_tenant
from tests.test_tenant_isolation import RouteFiller, _populate
from tests.worlds import built_once

# The rows are built once for the module (the ``world`` fixture); the mark makes pytest-django
# set up the test database and wraps each test in a savepoint inside the module's atomic.
pytestmark = pytest.mark.django_db
PLAIN = "/api/orgs/"  # a plain request every batch must leave answering 200
# HITL_HOSTILE_ONLY=<text>: walk only the operations and pages whose path contains it (to
# reproduce a finding); the walker's minimum counts are then not checked.
ONLY = os.environ.get("HITL_HOSTILE_ONLY", "")
DENIED = {401, 403}


def _route_id(route) -> str:
    return route.template or "/"


def _op_id(op: hostile.Operation) -> str:
    return f"{op.method.upper()} {op.path}"


OPERATIONS = [op for op in hostile.operations() if ONLY in op.path]
BODY_OPS = [op for op in OPERATIONS if op.body and op.body.get("properties")]
QUERY_OPS = [op for op in OPERATIONS if op.query and op.route is not None]
PAGE_ROUTES = [route for route in hostile.page_routes() if ONLY in route.template]


def _form_key(page: dict[str, Any], form: hostile.Form) -> tuple:
    return (page["who"], form.method, hostile.route_of(form.action), tuple(form.names))


class World:
    def __init__(self) -> None:
        self.tenant = make_tenant("Hostile")
        self.data = _populate(self.tenant)
        self.filler = RouteFiller(self.tenant, self.data)
        self.kwargs = {
            **self.data.kwargs,
            "org_slug": self.tenant.organization.slug,
            "project_slug": self.tenant.project.slug,
        }
        self.session = APIClient()
        self.session.force_login(self.tenant.owner)
        self.key = APIClient()
        self.key.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tenant.key('all')}")
        self.page_client = Client()
        self.page_client.force_login(self.tenant.owner)
        # The pages' own GETs (their server errors are reported by each route's test).
        self.discovery = hostile.Sender()
        self._pages: list[dict[str, Any]] | None = None
        # Each distinct form (as in _form_key) -> where it was first found: (page, form)
        # indexes. A form on several pages (a header's, a shared partial's) is walked once.
        self.first_seen: dict[tuple, tuple[int, int]] = {}

    def pages(self) -> list[dict[str, Any]]:
        """Every page as the owner and as a visitor: its URL, forms and query keys."""
        if self._pages is None:
            self._pages = []
            for route in PAGE_ROUTES:
                url = hostile.page_url(self.filler, route)
                if url is None:
                    continue
                for who, client in (("owner", self.page_client), ("visitor", Client())):
                    hostile.fresh_throttles()
                    response = self.discovery.send(
                        client, "get", url, where=(route.template, "", "GET")
                    )
                    content_type = response.get("Content-Type", "")
                    if response.status_code != 200 or "html" not in content_type:
                        continue
                    forms, link_keys = hostile.page_forms(url, response.content.decode())
                    page = {
                        "who": who,
                        "client": client,
                        "url": url,
                        "route": route,
                        "forms": forms,
                        "link_keys": link_keys,
                    }
                    at = len(self._pages)
                    for number, form in enumerate(forms):
                        self.first_seen.setdefault(_form_key(page, form), (at, number))
                    self._pages.append(page)
        return self._pages

    def pages_of(self, route) -> list[tuple[int, dict[str, Any]]]:
        return [(i, page) for i, page in enumerate(self.pages()) if page["route"] is route]

    def sender_for(self, route) -> hostile.Sender:
        """A sender holding the server errors the route's own pages answered."""
        self.pages()
        sender = hostile.Sender()
        sender.findings = [f for f in self.discovery.findings if f.path == route.template]
        return sender


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker), hostile.ERRORS.installed():
        yield World()


def _client_for(
    world: World, sender: hostile.Sender, op: hostile.Operation, url: str, body: str | None
) -> APIClient:
    """The owner's session, or the project's API key where the session is refused."""
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
    response = sender.send(world.session, op.method, url, where=(op.path, "(probe)", ""), **kwargs)
    return world.key if response.status_code in DENIED else world.session


def _base_body(world: World, sender: hostile.Sender, op: hostile.Operation, url: str) -> dict:
    base = hostile.build_body(op.body, world.kwargs)
    if op.method == "put":
        # A whole replacement: start from what the resource holds now.
        current = sender.send(world.session, "get", url, where=(op.path, "(current)", ""))
        if current.status_code == 200 and isinstance(current.json(), dict):
            writable = set((op.body or {}).get("properties") or {})
            base = {k: v for k, v in current.json().items() if k in writable} | base
    return base


def _body_paths(op: hostile.Operation) -> list[tuple]:
    paths = list(hostile.body_fields(op.body))
    if op.content_type == "multipart/form-data":
        paths = [path for path in paths if len(path) == 1]
    return paths


def _send_body(sender, client, op, url, base, path, value, kwargs) -> Any:
    label = hostile.field_label(path)
    if op.content_type == "multipart/form-data":
        raw = value.raw if value.raw is not None and value.raw != hostile.REPEAT else b"[]"
        prop = hostile.resolve_ref((op.body.get("properties") or {}).get(path[0], {}))
        fields = [(k, str(v).encode()) for k, v in base.items() if k != path[0]]
        if prop.get("format") == "binary":
            files = [(path[0], b'{"input": ' + value.json.encode() + b"}\n")]
        else:
            fields.append((path[0], raw))
            files = []
        data, content_type = hostile.multipart(fields, files)
    else:
        text = hostile.body_with(base, path, op.body, kwargs)
        data = text.replace('"\\u0001hostile-value\\u0001"', value.json, 1)
        content_type = "application/json"
    return sender.send(
        client,
        op.method,
        url,
        where=(op.path, label, value.name),
        data=data,
        content_type=content_type,
    )


def test_the_walk_finds_the_api_operations():
    """Every operation of the schema is addressed, and the walk is not silently small."""
    unaddressed = [_op_id(op) for op in BODY_OPS if op.route is None]
    assert not unaddressed, f"schema operations matching no URL pattern: {unaddressed}"
    fields = sum(len(_body_paths(op)) for op in BODY_OPS)
    params = sum(len(op.query) for op in QUERY_OPS)
    assert ONLY or (len(BODY_OPS) >= 40 and fields >= 150), (len(BODY_OPS), fields)
    assert ONLY or (len(QUERY_OPS) >= 40 and params >= 150), (len(QUERY_OPS), params)


@pytest.mark.parametrize("op", [op for op in BODY_OPS if op.route is not None], ids=_op_id)
def test_every_api_body_property_with_hostile_values(world, op, record_property):
    sender = hostile.Sender()
    url = world.filler.url(op.route)
    hostile.fresh_throttles()
    base = _base_body(world, sender, op, url)
    client = _client_for(world, sender, op, url, _json(base))
    edge = hostile.EdgeSkip()
    for path in _body_paths(op):
        hostile.fresh_throttles()
        for value in hostile.json_values_for(hostile.schema_at(op.body, path)):
            if not edge.skip(value):
                edge.record(
                    value, _send_body(sender, client, op, url, base, path, value, world.kwargs)
                )
    sender.still_answers(world.session, PLAIN, _op_id(op))
    record_property("walked:hostile walker: API body requests", sender.sent)
    assert not sender.findings, sender.report()


def _json(body: dict) -> str:
    import json

    return json.dumps(body)


def _query_variants(param: dict[str, Any], value: hostile.Hostile) -> list[bytes]:
    """The value as sent, and after a ``key:`` prefix where the parameter takes
    ``key:value`` pairs (its description or example says so)."""
    text = f"{param.get('description', '')} {param.get('example', '')}"
    variants = [value.raw]
    if value.raw != hostile.REPEAT and re.search(r"\w:\w|key:value|<key>:", text):
        variants.append(b"k:" + value.raw)
    return variants


@pytest.mark.parametrize("op", QUERY_OPS, ids=_op_id)
def test_every_api_query_parameter_with_hostile_values(world, op, record_property):
    sender = hostile.Sender()
    url = world.filler.url(op.route)
    base = _json(hostile.build_body(op.body, world.kwargs)) if op.body else None
    body = {"data": base, "content_type": "application/json"} if base is not None else {}
    hostile.fresh_throttles()
    client = _client_for(world, sender, op, url, base)
    edge = hostile.EdgeSkip()
    for param in op.query:
        hostile.fresh_throttles()
        for value in hostile.RAW_VALUES:
            if edge.skip(value):
                continue
            for raw in _query_variants(param, value):
                query = hostile.encode_query(hostile.with_hostile([], param["name"], raw))
                response = sender.send(
                    client,
                    op.method,
                    f"{url}?{query}",
                    where=(op.path, f"?{param['name']}", value.name),
                    **body,
                )
                edge.record(value, response)
    sender.still_answers(world.session, PLAIN, _op_id(op))
    record_property("walked:hostile walker: API query requests", sender.sent)
    assert not sender.findings, sender.report()


def test_every_api_path_with_broken_authorization_headers(world, record_property):
    sender = hostile.Sender()
    paths = {}
    for op in OPERATIONS:
        if op.route is not None:
            paths.setdefault(op.path, (op.method, world.filler.url(op.route)))
    stranger = APIClient()  # no session, no credentials: each request starts without cookies
    for template, (method, url) in paths.items():
        hostile.fresh_throttles()
        for name, header in hostile.HEADER_VALUES:
            stranger.cookies.clear()
            sender.send(
                stranger,
                method,
                url,
                where=(template, "Authorization", name),
                HTTP_AUTHORIZATION=header.decode("latin-1"),
            )
    sender.still_answers(world.session, PLAIN, "the Authorization headers")
    record_property("walked:hostile walker: Authorization header requests", sender.sent)
    assert not sender.findings, sender.report()


def _submit(sender, client, form: hostile.Form, pairs, files, where) -> Any:
    if form.method == "get":
        query = hostile.encode_query(pairs)
        return sender.send(client, "get", f"{form.action}?{query}", where=where)
    if form.files or "multipart" in form.enctype:
        data, content_type = hostile.multipart(pairs, files)
        return sender.send(
            client, "post", form.action, where=where, data=data, content_type=content_type
        )
    return sender.send(
        client,
        "post",
        form.action,
        where=where,
        data=hostile.encode_query(pairs),
        content_type="application/x-www-form-urlencoded",
    )


def test_the_walk_finds_the_page_forms(world, record_property):
    """The pages answered, and the walk is not silently small."""
    pages = world.pages()
    record_property("walked:hostile walker: page GETs", world.discovery.sent)
    forms = [pages[index]["forms"][number] for index, number in world.first_seen.values()]
    fields = sum(len(form.names) for form in forms)
    with_query = [page for page in pages if _query_keys(page)]
    counts = Counter(page["who"] for page in pages)
    assert ONLY or (len(forms) >= 30 and fields >= 100), (len(forms), fields)
    assert ONLY or len(with_query) >= 5, len(with_query)
    assert ONLY or counts["visitor"] >= 1, counts


@pytest.mark.parametrize("route", PAGE_ROUTES, ids=_route_id)
def test_every_page_form_field_with_hostile_values(world, route, record_property):
    sender = world.sender_for(route)
    for index, page in world.pages_of(route):
        for number, form in enumerate(page["forms"]):
            if world.first_seen[_form_key(page, form)] != (index, number):
                continue  # walked on the page it was first found on
            template = f"{hostile.route_of(form.action)} (form on {page['route'].template})"
            edge = hostile.EdgeSkip()
            files_named = [[name] for name in form.names if name in form.files]
            fields_named = [name for name in form.names if name not in form.files]
            for names in files_named + hostile.field_families(fields_named):
                hostile.fresh_throttles()
                label = (
                    names[0] if len(names) == 1 else f"{names[0]} (and {len(names) - 1} like it)"
                )
                for value in hostile.RAW_VALUES:
                    if edge.skip(value):
                        continue
                    if names[0] in form.files:
                        files = [(names[0], value.raw if value.raw != hostile.REPEAT else b"[]")]
                        pairs = list(form.fields)
                    else:
                        files = [(file_name, b"{}\n") for file_name in form.files]
                        pairs = hostile.with_hostile_all(form.fields, names, value.raw)
                    where = (f"{form.method.upper()} {template}", label, value.name)
                    edge.record(value, _submit(sender, page["client"], form, pairs, files, where))
            sender.still_answers(world.session, PLAIN, f"the form {template}")
    record_property("walked:hostile walker: page form requests", sender.sent)
    assert not sender.findings, sender.report()


def _api_twin_params(template: str) -> dict[str, dict[str, Any]]:
    """The query parameters of the API list a page mirrors (the page
    ``orgs/<org_slug>/projects/<project_slug>/traces/`` and the operation
    ``/api/orgs/{org_slug}/projects/{project_slug}/traces/``)."""
    wanted = hostile._template_key("api/" + template)
    return {
        param["name"]: param
        for op in hostile.operations()
        if op.method == "get" and hostile._template_key(op.path) == wanted
        for param in op.query
        if param["name"] not in ("cursor", "page_size")
    }


def _query_keys(page: dict[str, Any]) -> set[str]:
    """The page's query keys: its links', its own GET forms' fields, its API twin's."""
    keys = set(page["link_keys"]) | set(_api_twin_params(page["route"].template))
    for form in page["forms"]:
        if form.method == "get" and form.action.split("?")[0] == page["url"]:
            keys |= set(form.names)
    return keys


@pytest.mark.parametrize("route", PAGE_ROUTES, ids=_route_id)
def test_every_page_query_parameter_with_hostile_values(world, route, record_property):
    sender = world.sender_for(route)
    for _index, page in world.pages_of(route):
        keys = _query_keys(page)
        if not keys:
            continue
        twin = _api_twin_params(page["route"].template)
        edge = hostile.EdgeSkip()
        for key in sorted(keys):
            hostile.fresh_throttles()
            for value in hostile.RAW_VALUES:
                if edge.skip(value):
                    continue
                for raw in _query_variants(twin.get(key, {}), value):
                    query = hostile.encode_query(hostile.with_hostile([], key, raw))
                    response = sender.send(
                        page["client"],
                        "get",
                        f"{page['url']}?{query}",
                        where=(f"GET /{page['route'].template}", f"?{key}", value.name),
                    )
                    edge.record(value, response)
        sender.still_answers(world.session, PLAIN, f"the page {page['route'].template}")
    record_property("walked:hostile walker: page query requests", sender.sent)
    assert not sender.findings, sender.report()
