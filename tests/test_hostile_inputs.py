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
form once per field per value, the other fields as the page pre-filled them; then GETs
each page with each value in each query parameter the page knows: its GET forms' fields,
its links' query keys, and the query parameters of the API list it mirrors (the trace
explorer's filters are the traces API's).

URL kwargs are filled by the isolation walker's RouteFiller from each app's
``tests/<app>/isolation.py``; a route, form or field added tomorrow is walked without
editing this file. Each request runs in a savepoint that is rolled back, so the rows are
built once for the module.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import pytest
from django.db import transaction
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tests import hostile
from tests.factories import make_tenant
from tests.test_tenant_isolation import RouteFiller, _populate

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The rows are built once for the module (the ``world`` fixture); the mark makes pytest-django
# set up the test database and wraps each test in a savepoint inside the module's atomic.
pytestmark = pytest.mark.django_db
PLAIN = "/api/orgs/"  # a plain request every batch must leave answering 200
# HITL_HOSTILE_ONLY=<text>: walk only the operations and pages whose path contains it (to
# reproduce a finding); the walker's minimum counts are then not checked.
ONLY = os.environ.get("HITL_HOSTILE_ONLY", "")
DENIED = {401, 403}


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
        self._pages: list[dict[str, Any]] | None = None

    def pages(self, sender: hostile.Sender) -> list[dict[str, Any]]:
        """Every page as the owner and as a visitor: its URL, forms and query keys."""
        if self._pages is None:
            self._pages = []
            for route in [r for r in hostile.page_routes() if ONLY in r.template]:
                url = hostile.page_url(self.filler, route)
                if url is None:
                    continue
                for who, client in (("owner", self.page_client), ("visitor", Client())):
                    hostile.fresh_throttles()
                    response = sender.send(client, "get", url, where=(route.template, "", "GET"))
                    content_type = response.get("Content-Type", "")
                    if response.status_code != 200 or "html" not in content_type:
                        continue
                    forms, link_keys = hostile.page_forms(url, response.content.decode())
                    self._pages.append(
                        {
                            "who": who,
                            "client": client,
                            "url": url,
                            "route": route,
                            "forms": forms,
                            "link_keys": link_keys,
                        }
                    )
        return self._pages


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        hostile.ERRORS.installed(),
    ):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield World()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _operations() -> list[hostile.Operation]:
    return [op for op in hostile.operations() if ONLY in op.path]


def _print(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\nhostile walker: {text}")


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


@pytest.mark.timeout(900)
def test_every_api_body_property_with_hostile_values(world, capsys):
    sender = hostile.Sender()
    ops = [op for op in _operations() if op.body and op.body.get("properties")]
    unaddressed = [f"{op.method.upper()} {op.path}" for op in ops if op.route is None]
    fields = skipped = 0
    for op in ops:
        if op.route is None:
            continue
        url = world.filler.url(op.route)
        hostile.fresh_throttles()
        base = _base_body(world, sender, op, url)
        client = _client_for(world, sender, op, url, _json(base))
        paths = list(hostile.body_fields(op.body))
        if op.content_type == "multipart/form-data":
            paths = [path for path in paths if len(path) == 1]
        fields += len(paths)
        edge = hostile.EdgeSkip()
        for path in paths:
            hostile.fresh_throttles()
            for value in hostile.json_values_for(hostile.schema_at(op.body, path)):
                if not edge.skip(value):
                    edge.record(
                        value, _send_body(sender, client, op, url, base, path, value, world.kwargs)
                    )
        skipped += edge.skipped
        sender.still_answers(world.session, PLAIN, f"{op.method.upper()} {op.path}")
    _print(
        capsys,
        f"{len(ops)} API operations with a body, {fields} body fields, "
        f"up to {len(hostile.JSON_VALUES)} values each, {sender.sent} requests "
        f"({skipped} field-value pairs a request-wide check refused in another field)",
    )
    assert not unaddressed, f"schema operations matching no URL pattern: {unaddressed}"
    assert ONLY or (len(ops) >= 40 and fields >= 150), (len(ops), fields)
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


@pytest.mark.timeout(900)
def test_every_api_query_parameter_with_hostile_values(world, capsys):
    sender = hostile.Sender()
    ops = [op for op in _operations() if op.query and op.route is not None]
    params = 0
    for op in ops:
        url = world.filler.url(op.route)
        base = _json(hostile.build_body(op.body, world.kwargs)) if op.body else None
        body = {"data": base, "content_type": "application/json"} if base is not None else {}
        hostile.fresh_throttles()
        client = _client_for(world, sender, op, url, base)
        edge = hostile.EdgeSkip()
        for param in op.query:
            params += 1
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
        sender.still_answers(world.session, PLAIN, f"{op.method.upper()} {op.path}")
    _print(
        capsys,
        f"{len(ops)} API operations with query parameters, {params} parameters, "
        f"{len(hostile.RAW_VALUES)} values, {sender.sent} requests",
    )
    assert ONLY or (len(ops) >= 40 and params >= 150), (len(ops), params)
    assert not sender.findings, sender.report()


@pytest.mark.timeout(600)
def test_every_api_path_with_broken_authorization_headers(world, capsys):
    sender = hostile.Sender()
    paths = {}
    for op in _operations():
        if op.route is not None:
            paths.setdefault(op.path, (op.method, world.filler.url(op.route)))
    for template, (method, url) in paths.items():
        hostile.fresh_throttles()
        for name, header in hostile.HEADER_VALUES:
            sender.send(
                APIClient(),
                method,
                url,
                where=(template, "Authorization", name),
                HTTP_AUTHORIZATION=header.decode("latin-1"),
            )
    sender.still_answers(world.session, PLAIN, "the Authorization headers")
    _print(
        capsys,
        f"{len(paths)} API paths, {len(hostile.HEADER_VALUES)} Authorization "
        f"values, {sender.sent} requests",
    )
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


@pytest.mark.timeout(900)
def test_every_page_form_field_with_hostile_values(world, capsys):
    sender = hostile.Sender()
    pages = world.pages(sender)
    seen: set[tuple] = set()
    forms = fields = 0
    for page in pages:
        for form in page["forms"]:
            key = (page["who"], form.method, hostile.route_of(form.action), tuple(form.names))
            if key in seen:
                continue
            seen.add(key)
            forms += 1
            template = f"{hostile.route_of(form.action)} (form on {page['route'].template})"
            edge = hostile.EdgeSkip()
            for name in form.names:
                fields += 1
                hostile.fresh_throttles()
                for value in hostile.RAW_VALUES:
                    if edge.skip(value):
                        continue
                    if name in form.files:
                        files = [(name, value.raw if value.raw != hostile.REPEAT else b"[]")]
                        pairs = list(form.fields)
                    else:
                        files = [(file_name, b"{}\n") for file_name in form.files]
                        pairs = hostile.with_hostile(form.fields, name, value.raw)
                    where = (f"{form.method.upper()} {template}", name, value.name)
                    edge.record(value, _submit(sender, page["client"], form, pairs, files, where))
            sender.still_answers(world.session, PLAIN, f"the form {template}")
    counts = Counter(page["who"] for page in pages)
    _print(
        capsys,
        f"{len(pages)} pages ({dict(counts)}), {forms} distinct forms, {fields} "
        f"form fields, {len(hostile.RAW_VALUES)} values, {sender.sent} requests",
    )
    assert ONLY or (forms >= 30 and fields >= 100), (forms, fields)
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


@pytest.mark.timeout(900)
def test_every_page_query_parameter_with_hostile_values(world, capsys):
    sender = hostile.Sender()
    walked = params = 0
    for page in world.pages(sender):
        twin = _api_twin_params(page["route"].template)
        keys = set(page["link_keys"]) | set(twin)
        for form in page["forms"]:
            if form.method == "get" and form.action.split("?")[0] == page["url"]:
                keys |= set(form.names)
        if not keys:
            continue
        walked += 1
        edge = hostile.EdgeSkip()
        for key in sorted(keys):
            params += 1
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
    _print(
        capsys,
        f"{walked} pages with query parameters, {params} parameters, "
        f"{len(hostile.RAW_VALUES)} values, {sender.sent} requests",
    )
    assert ONLY or walked >= 5, walked
    assert not sender.findings, sender.report()
