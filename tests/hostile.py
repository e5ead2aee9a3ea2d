"""The hostile-input walker's parts: the values, the API operations found in the OpenAPI
schema, the forms found in the pages' HTML, and a sender that runs each request in its
own savepoint and records every server error.

Nothing here names a route, a form or a field: operations come from drf-spectacular's
schema matched to the URL conf, forms from the HTML of every page of the URL conf, URL
kwargs from the isolation walker's ``RouteFiller`` (tests/isolation.py), and request
bodies from the schema's examples and types. A route, form or field added tomorrow is
walked without editing this module.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote_from_bytes, urljoin, urlsplit

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test import Client
from django.urls import Resolver404, resolve

from tests.test_tenant_isolation import Route, RouteFiller, iter_routes

# --------------------------------------------------------------------------- values


REPEAT = b"\x00repeat-the-field\x00"  # a form field sent twice: a list where one is expected


@dataclass(frozen=True)
class Hostile:
    """One hostile value: as a JSON text fragment (``json``) for request bodies, and as
    raw bytes (``raw``) for form fields, query strings and headers. ``None``: not sent
    that way."""

    name: str
    json: str | None
    raw: bytes | None


def _numeric(name: str, text: str) -> list[Hostile]:
    # A bare JSON number (or NaN/Infinity literal) and the same text as a string.
    return [
        Hostile(name, text, text.encode()),
        Hostile(f"{name} (as a JSON string)", json.dumps(text), None),
    ]


HOSTILE: list[Hostile] = [
    Hostile("NUL", '"a\\u0000b"', b"a\x00b"),
    Hostile("lone surrogate", '"\\ud800"', b"\xed\xa0\x80"),
    *_numeric("NaN", "NaN"),
    *_numeric("Infinity", "Infinity"),
    *_numeric("-Infinity", "-Infinity"),
    *_numeric("1e400", "1e400"),
    *_numeric("1e-999999", "1e-999999"),
    *_numeric("huge integer", "9" * 400),
    Hostile("+16:00 offset", '"2026-01-01T00:00:00+16:00"', b"2026-01-01T00:00:00+16:00"),
    Hostile("10,000-deep JSON", "[" * 10_000 + "]" * 10_000, b"[" * 10_000),
    Hostile("100,000 characters", json.dumps("x" * 100_000), b"x" * 100_000),
    Hostile("formula =HYPERLINK", json.dumps('=HYPERLINK("http://x")'), b'=HYPERLINK("http://x")'),
    Hostile("formula +1", '"+1"', b"+1"),
    Hostile("formula @SUM", '"@SUM(A1)"', b"@SUM(A1)"),
    Hostile("RTL override", '"\\u202eevil"', "\u202eevil".encode()),
    Hostile("zero-width space", '"a\\u200bb"', "a\u200bb".encode()),
    Hostile("object (wrong type)", '{"hostile": {"nested": [1]}}', b'{"hostile": 1}'),
    Hostile("string (wrong type)", '"hostile"', b"hostile"),
    Hostile("list (wrong type)", '[{"hostile": 1}, "x"]', REPEAT),
]
JSON_VALUES = [value for value in HOSTILE if value.json is not None]
RAW_VALUES = [value for value in HOSTILE if value.raw is not None]
# Authorization headers as a client or an attacker sends them, as bytes on the wire; a WSGI
# server hands them to Django decoded as latin-1 (PEP 3333), and so does the walker.
HEADER_VALUES: list[tuple[str, bytes]] = [
    ("lone no-break space (byte A0)", b"\xa0"),
    ("lone no-break space (UTF-8)", "\u00a0".encode()),
    ("empty", b""),
    ("scheme only", b"Bearer"),
    ("scheme and no-break space", b"Bearer \xa0"),
    ("NUL", b"Bearer hitl_\x00"),
    ("lone surrogate bytes", b"Bearer \xed\xa0\x80"),
    ("RTL override", "Bearer \u202e".encode()),
    ("basic, not base64", b"Basic !!!"),
    ("three words", b"Bearer a b"),
    ("100,000 characters", b"Bearer " + b"x" * 100_000),
]


def encode_query(pairs: list[tuple[str, bytes]]) -> str:
    """A query string (or urlencoded body) from raw byte values, every byte escaped."""
    return "&".join(
        f"{quote_from_bytes(k.encode(), safe='')}={quote_from_bytes(v, safe='')}" for k, v in pairs
    )


def with_hostile(
    pairs: list[tuple[str, bytes]], name: str, value: bytes
) -> list[tuple[str, bytes]]:
    """``pairs`` with every value of ``name`` replaced by ``value`` (sent twice for REPEAT)."""
    kept = [(k, v) for k, v in pairs if k != name]
    if value == REPEAT:
        return [*kept, (name, b"first"), (name, b"second")]
    return [*kept, (name, value)]


def with_hostile_all(
    pairs: list[tuple[str, bytes]], names: list[str], value: bytes
) -> list[tuple[str, bytes]]:
    """``pairs`` with every field of ``names`` holding ``value`` (see :func:`with_hostile`)."""
    for name in names:
        pairs = with_hostile(pairs, name, value)
    return pairs


def field_families(names: list[str]) -> list[list[str]]:
    """``names`` grouped by their shape, numbers aside: one form's ``tol-4``, ``tol-9``
    and ``tol-12`` are one field repeated per row (a question, a pool member), built by
    the same form field, so a hostile value goes to all of them in one request. Each
    field still receives every value: a form validates each field on its own."""
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(re.sub(r"\d+", "#", name), []).append(name)
    return list(families.values())


# --------------------------------------------------------------------------- sending


class ErrorLog(logging.Handler):
    """Keeps the exception of the last logged server error (an API exception handler
    answers 500 itself, so the test client sees no exception)."""

    LOGGERS = ("django.request", "hitl.api.errors")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = record.exc_info

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Takes the walk's error log lines: thousands of tracebacks would bury the report."""
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        saved = [(logger.propagate, logger.level) for logger in loggers]
        for logger in loggers:
            logger.addHandler(self)
            logger.propagate = False
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, (propagate, level) in zip(loggers, saved, strict=True):
                logger.removeHandler(self)
                logger.propagate = propagate
                logger.setLevel(level)


ERRORS = ErrorLog()


@dataclass
class Finding:
    method: str
    path: str
    field: str
    value: str
    status: int
    error: str

    def __str__(self) -> str:
        return (
            f"{self.method} {self.path} field={self.field!r} value={self.value!r} -> "
            f"{self.status} {self.error}"
        )


# What a request-wide check answers before any field is read: the API's JSON parser
# (``parse_error``: NUL, lone surrogates, non-finite or 64-bit-overflowing numbers, deep
# JSON) and the middleware's check of every query parameter and form field (hitl.text).
_EDGE_MARKS = (
    b'"code":"parse_error"',
    b"This cannot be saved",
    b'"message": "Query parameter ',
    b'"message": "Form field ',
)


def refused_at_edge(response: Any) -> bool:
    content = getattr(response, "content", b"") if not response.streaming else b""
    return response.status_code == 400 and any(mark in content for mark in _EDGE_MARKS)


class EdgeSkip:
    """Per request shape (an operation, a form, a page): a value refused by a
    request-wide check on the first field it was sent in is refused the same way in
    every other field, so it is not sent to them. A value the shape let through (an
    ingestion body strips NUL; a form decodes bad UTF-8) is sent to every field."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.skipped = 0

    def skip(self, value: Hostile) -> bool:
        if value.name in self.refused:
            self.skipped += 1
            return True
        return False

    def record(self, value: Hostile, response: Any) -> None:
        if refused_at_edge(response):
            self.refused.add(value.name)


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """Runs the block in a savepoint that is then rolled back, as
    ``transaction.atomic()`` with ``set_rollback(True)`` does, in two round trips to the
    database instead of three: the rollback and the release go as one statement. A
    walk sends thousands of requests of about ten queries each, so the third round trip
    was about a tenth of the walk's queries. What the block registered with
    ``on_commit`` is dropped with its writes, and a transaction the block broke (an
    error the view caught, ``needs_rollback``) is whole again afterwards."""
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:  # no transaction to hold a savepoint
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
        return
    callbacks = len(connection.run_on_commit)
    needs_rollback = connection.needs_rollback
    sid = connection.savepoint()
    try:
        yield
    finally:
        connection.needs_rollback = False
        name = connection.ops.quote_name(sid)
        with connection.cursor() as cursor:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
        del connection.run_on_commit[callbacks:]
        connection.needs_rollback = needs_rollback


@dataclass
class Sender:
    """Sends requests in process, each in a savepoint rolled back afterwards (the walked
    rows stay as built, and a request that breaks the transaction breaks only itself)."""

    findings: list[Finding] = field(default_factory=list)
    sent: int = 0

    def send(
        self, client: Client, method: str, path: str, *, where: tuple[str, str, str], **kwargs: Any
    ) -> Any:
        cookies = {name: morsel.value for name, morsel in client.cookies.items()}
        client.raise_request_exception = False
        ERRORS.last = None
        with rolled_back():
            response = client.generic(method.upper(), path, **kwargs)
        # Keep the walker signed in whatever the request did to the session.
        for name, value in cookies.items():
            client.cookies[name] = value
        self.sent += 1
        if response.status_code >= 500:
            exc = getattr(response, "exc_info", None) or ERRORS.last
            if exc:
                error = f"{exc[0].__name__}: {str(exc[1])[:160]}"
            else:  # answered by an exception handler: its body names the error
                error = response.content[:200].decode("utf-8", "replace")
            template, field_name, value = where
            self.findings.append(
                Finding(method.upper(), template, field_name, value, response.status_code, error)
            )
        return response

    def still_answers(self, client: Client, path: str, after: str) -> None:
        """A plain request after a batch: the server must still answer it."""
        response = self.send(client, "get", path, where=(path, "(plain request)", after))
        if response.status_code != 200:
            self.findings.append(
                Finding(
                    "GET",
                    path,
                    f"(plain request after {after})",
                    "",
                    response.status_code,
                    "the server no longer answers a plain request",
                )
            )

    def report(self) -> str:
        grouped: dict[tuple[str, str, str, int], list[str]] = defaultdict(list)
        errors: dict[tuple[str, str, str, int], str] = {}
        for finding in self.findings:
            key = (finding.method, finding.path, finding.field, finding.status)
            grouped[key].append(finding.value)
            errors.setdefault(key, finding.error)
        lines = [
            f"{method} {path} field={name!r} -> {status} for {sorted(set(values))}: {errors[key]}"
            for key in sorted(grouped)
            for method, path, name, status in [key]
            for values in [grouped[key]]
        ]
        return f"{len(self.findings)} server errors in {len(lines)} groups:\n" + "\n".join(lines)


def fresh_throttles() -> None:
    """Throttle and login rate-limit counters live in the cache: a walker sends thousands
    of requests, each of which must reach the code under test, not a 429."""
    cache.clear()


# --------------------------------------------------------------------------- the schema


@functools.cache
def api_schema() -> dict[str, Any]:
    """The OpenAPI schema, built as /api/schema/ builds it (see test_api_schema_fuzz)."""
    from drf_spectacular.generators import SchemaGenerator

    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(generated, default=str))


def _template_key(template: str) -> str:
    template = re.sub(r"\{[^}]+\}", "<>", template.lstrip("/"))
    return re.sub(r"<\w+>", "<>", template)


@functools.cache
def _routes_by_key() -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for route in iter_routes():
        routes.setdefault(_template_key(route.template), route)
    return routes


@dataclass
class Operation:
    method: str
    path: str  # the schema's template: /api/orgs/{org_slug}/members/{id}/
    route: Route | None
    query: list[dict[str, Any]]  # the schema's query parameters
    content_type: str | None
    body: dict[str, Any] | None  # the request body's schema, references resolved


def resolve_ref(schema: Any) -> Any:
    components = api_schema().get("components", {}).get("schemas", {})
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
        seen += 1
    return schema


def operations() -> list[Operation]:
    found = []
    for path, item in api_schema()["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query = [p for p in op.get("parameters", []) if p.get("in") == "query"]
            content = op.get("requestBody", {}).get("content", {})
            content_type = next(iter(content), None)
            body = resolve_ref(content[content_type]["schema"]) if content_type else None
            route = _routes_by_key().get(_template_key(path))
            found.append(Operation(method, path, route, query, content_type, body))
    return found


# --------------------------------------------------------------------------- bodies

MISSING = object()


def _id_for(name: str, kind: str, kwargs: dict[str, Any]) -> Any:
    """A real id of the walked organization for a property named like a reference
    (``queue_id``, ``queue``, ``trace_ids``), or MISSING."""
    stem = re.sub(r"_(id|ids|pk|pks)$", "", name)
    stem = stem.removesuffix("s") if name.endswith("s") and not name.endswith("_ids") else stem
    for candidate in (
        (f"{stem}_pk",) if kind == "integer" else (f"{stem}_external_id", f"{stem}_pk")
    ):
        if candidate in kwargs:
            return kwargs[candidate] if kind == "integer" else str(kwargs[candidate])
    return MISSING


def example_value(schema: Any, name: str, kwargs: dict[str, Any], depth: int = 0) -> Any:
    """A value the schema would accept, from its example, default, enum or type."""
    schema = resolve_ref(schema)
    if not isinstance(schema, dict) or depth > 6:
        return MISSING
    for key in ("allOf", "oneOf", "anyOf"):
        if schema.get(key):
            return example_value(schema[key][0], name, kwargs, depth + 1)
    if "example" in schema:
        return schema["example"]
    if schema.get("default") is not None:
        return schema["default"]
    enum = [value for value in schema.get("enum", []) if value not in (None, "")]
    if enum:
        return enum[0]
    kind = schema.get("type")
    if kind == "array":
        item = example_value(schema.get("items", {}), name, kwargs, depth + 1)
        return [] if item is MISSING else [item]
    if kind in ("integer", "string"):
        reference = _id_for(name, kind, kwargs)
        if reference is not MISSING:
            return reference
    if kind == "object" or "properties" in schema:
        return build_body(schema, kwargs, depth + 1)
    return {
        "integer": 1,
        "number": 0.5,
        "boolean": True,
        "string": {
            "date-time": "2026-01-01T00:00:00Z",
            "date": "2026-01-01",
            "email": "walker@example.com",
            "uri": "https://example.com/",
            "uuid": "00000000-0000-4000-8000-000000000000",
        }.get(schema.get("format", ""), "walker"),
    }.get(kind, MISSING)


def build_body(schema: Any, kwargs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """An object with every required, writable property of ``schema`` filled."""
    schema = resolve_ref(schema)
    body = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = resolve_ref(prop)
        if name not in schema.get("required", []) or prop.get("readOnly"):
            continue
        value = example_value(prop, name, kwargs, depth)
        if value is not MISSING:
            body[name] = value
    return body


def body_fields(schema: Any, prefix: tuple = (), depth: int = 0) -> Iterator[tuple]:
    """Every writable property path of a body: top-level names, and inside objects and
    the first item of arrays of objects (``("events", 0, "body")``)."""
    schema = resolve_ref(schema)
    if not isinstance(schema, dict) or depth > 3:
        return
    for name, prop in (schema.get("properties") or {}).items():
        prop = resolve_ref(prop)
        if prop.get("readOnly"):
            continue
        yield (*prefix, name)
        for key in ("allOf", "oneOf", "anyOf"):
            if prop.get(key):
                prop = resolve_ref(prop[key][0])
        if prop.get("properties"):
            yield from body_fields(prop, (*prefix, name), depth + 1)
        items = resolve_ref(prop.get("items") or {})
        if prop.get("type") == "array" and isinstance(items, dict) and items.get("properties"):
            yield from body_fields(items, (*prefix, name, 0), depth + 1)


SENTINEL = "\x01hostile-value\x01"


def body_with(base: dict[str, Any], path: tuple, schema: Any, kwargs: dict[str, Any]) -> str:
    """JSON text of ``base`` with the value at ``path`` replaced by the sentinel (then
    swapped for the hostile fragment by the caller): the containers on the way are
    built from the schema when the base lacks them."""
    body = json.loads(json.dumps(base))
    node: Any = body
    schema = resolve_ref(schema)
    for step, following in zip(path, (*path[1:], None), strict=True):
        if following is None:
            node[step] = SENTINEL
            break
        if isinstance(step, int):
            schema = resolve_ref(schema.get("items") or {})
            while len(node) <= step:
                node.append(build_body(schema, kwargs))
        else:
            schema = resolve_ref((schema.get("properties") or {}).get(step) or {})
            for key in ("allOf", "oneOf", "anyOf"):
                if schema.get(key):
                    schema = resolve_ref(schema[key][0])
            wanted: Any = [] if isinstance(following, int) else build_body(schema, kwargs)
            if not isinstance(node.get(step), type(wanted)):
                node[step] = wanted
        node = node[step]
    return json.dumps(body)


def schema_at(schema: Any, path: tuple) -> dict[str, Any]:
    """The schema of the property at ``path`` in a body schema."""
    schema = resolve_ref(schema)
    for step in path:
        for key in ("allOf", "oneOf", "anyOf"):
            if isinstance(schema, dict) and schema.get(key):
                schema = resolve_ref(schema[key][0])
        if not isinstance(schema, dict):
            return {}
        if isinstance(step, int):
            schema = resolve_ref(schema.get("items") or {})
        else:
            schema = resolve_ref((schema.get("properties") or {}).get(step) or {})
    return schema if isinstance(schema, dict) else {}


def json_values_for(prop: dict[str, Any]) -> list[Hostile]:
    """Every JSON value, but a number spelled as a string only where it could be parsed
    as one: in a text property it is plain text, which the text values already cover."""
    if prop.get("type") == "string" and not prop.get("format"):
        return [value for value in JSON_VALUES if not value.name.endswith("(as a JSON string)")]
    return JSON_VALUES


def field_label(path: tuple) -> str:
    return ".".join(str(step) for step in path)


def multipart(fields: list[tuple[str, bytes]], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body from raw bytes (Django's encoder takes text only)."""
    boundary = "hostile-walker-boundary"
    parts = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    for name, value in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="hostile.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


# --------------------------------------------------------------------------- pages


@dataclass
class Form:
    method: str
    action: str  # a path, without the query string
    enctype: str
    fields: list[tuple[str, bytes]]  # as the page pre-filled them, in order
    files: list[str]
    page: str = ""

    @property
    def names(self) -> list[str]:
        seen: list[str] = []
        for name, _value in self.fields:
            if name not in seen and name != "csrfmiddlewaretoken":
                seen.append(name)
        return seen + [name for name in self.files if name not in seen]


class FormParser(HTMLParser):
    """The <form> elements of a page: inputs as a browser would submit them untouched
    (checked boxes, selected options, the first named submit button), plus the query
    keys of the page's links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.links: list[str] = []
        self._form: dict[str, Any] | None = None
        self._select: dict[str, Any] | None = None
        self._option: dict[str, Any] | None = None
        self._textarea: dict[str, Any] | None = None

    def _owner(self, attrs: dict[str, str | None]) -> dict[str, Any] | None:
        return self.by_id.get(attrs.get("form") or "") or self._form

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attr_list)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"] or "")
        elif tag == "form":
            self._form = {
                "method": (attrs.get("method") or "get").lower(),
                "action": attrs.get("action") or "",
                "enctype": attrs.get("enctype") or "",
                "fields": [],
                "files": [],
                "submitted": False,
            }
            self.forms.append(self._form)
            if attrs.get("id"):
                self.by_id[attrs["id"] or ""] = self._form
        elif tag in ("input", "button"):
            form, name = self._owner(attrs), attrs.get("name")
            if form is None or not name or "disabled" in attrs:
                return
            kind = (attrs.get("type") or ("submit" if tag == "button" else "text")).lower()
            value = attrs.get("value") or ""
            if kind == "file":
                form["files"].append(name)
            elif kind in ("submit", "image"):
                if not form["submitted"]:
                    form["submitted"] = True
                    form["fields"].append((name, value.encode()))
            elif kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    form["fields"].append((name, (attrs.get("value") or "on").encode()))
                else:
                    form.setdefault("unchecked", []).append(name)
            elif kind not in ("reset", "button"):
                form["fields"].append((name, value.encode()))
        elif tag == "select":
            form = self._owner(attrs)
            if form is not None and attrs.get("name") and "disabled" not in attrs:
                self._select = {"form": form, "name": attrs["name"], "chosen": [], "first": None}
        elif tag == "option" and self._select is not None:
            self._option = {
                "value": attrs.get("value"),
                "text": "",
                "selected": "selected" in attrs,
            }
        elif tag == "textarea":
            form = self._owner(attrs)
            if form is not None and attrs.get("name") and "disabled" not in attrs:
                self._textarea = {"form": form, "name": attrs["name"], "text": ""}

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "option" and self._select is not None and self._option is not None:
            option = self._option
            value = option["value"] if option["value"] is not None else option["text"].strip()
            if self._select["first"] is None:
                self._select["first"] = value
            if option["selected"]:
                self._select["chosen"].append(value)
            self._option = None
        elif tag == "select" and self._select is not None:
            select = self._select
            chosen = select["chosen"] or ([select["first"]] if select["first"] is not None else [])
            for value in chosen:
                select["form"]["fields"].append((select["name"], value.encode()))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            area = self._textarea
            area["form"]["fields"].append((area["name"], area["text"].lstrip("\n").encode()))
            self._textarea = None


def page_forms(page_url: str, html: str) -> tuple[list[Form], set[str]]:
    """The forms of a page aimed at this site, and the query keys of its links to itself."""
    parser = FormParser()
    parser.feed(html)
    page_path = urlsplit(page_url).path
    forms = []
    for raw in parser.forms:
        action = urljoin(page_url, raw["action"])
        parts = urlsplit(action)
        if parts.netloc and parts.netloc != "testserver":
            continue
        fields = list(raw["fields"])
        # A GET form's action query is replaced by its fields, as a browser does.
        if raw["method"] == "post" and parts.query:
            action_path = f"{parts.path}?{parts.query}"
        else:
            action_path = parts.path
        # Unchecked boxes are fields too: send them checked.
        for name in raw.get("unchecked", []):
            if name not in {n for n, _ in fields}:
                fields.append((name, b"on"))
        forms.append(
            Form(raw["method"], action_path, raw["enctype"], fields, raw["files"], page_path)
        )
    link_keys = set()
    for href in parser.links:
        parts = urlsplit(urljoin(page_url, href))
        if parts.path == page_path and parts.query:
            link_keys |= {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    return forms, link_keys


def route_of(path: str) -> str:
    """The URL pattern a path resolves to, to name findings and deduplicate forms."""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return urlsplit(path).path
    return "/" + match.route.replace("\\", "")


def page_routes() -> list[Route]:
    """Every page of the URL conf: not the API, not the admin (walked by the admin walker),
    not OTLP ingestion (an API), not sign-out (it would end the walk)."""
    return [
        route
        for route in iter_routes()
        if not route.template.startswith(("api/", "admin/", "v1/"))
        and route.pattern.name != "account_logout"
    ]


def page_url(filler: RouteFiller, route: Route) -> str | None:
    try:
        return filler.url(route)
    except LookupError:
        return None
