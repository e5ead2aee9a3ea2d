"""schemathesis over the OpenAPI schema: generated requests, authenticated as a member,
must never produce a server error.

One test per operation and caller (tests/parallel.py keeps each its own id, so pytest-xdist
runs all 348). Each case is sent as its caller (``_as_caller``), not with the credentials
schemathesis generates for the schema's security schemes: those answer 401 before a
parameter is read. ``HITL_FUZZ_RECORD`` shows what the cases reached; in one run the
admin's ended 200/201/204/207 about 900 times, 400 about 4,700, 404 (ids that are not
rows) about 3,500, 409 116, and never 5xx."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from hitl.wsgi import application
from tests.factories import make_tenant
from tests.worlds import built_once

# Generated examples per operation: enough to hit validation paths, bounded for CI time.
# Derandomized, so every CI run replays the same cases (a new server error shows up as a
# change in the schema or the code, never as luck); explore with HITL_FUZZ_RANDOM=1.
MAX_EXAMPLES = int(os.environ.get("HITL_FUZZ_EXAMPLES", "8"))
DERANDOMIZE = os.environ.get("HITL_FUZZ_RANDOM") != "1"
# HITL_FUZZ_RECORD=<file>: each call's "<caller> <METHOD> <path> <status>" is appended to
# it, to compare which status codes each operation reached before and after a change of
# the examples per operation.
RECORD = os.environ.get("HITL_FUZZ_RECORD", "")


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # As Django's test client does: requests must not close the connection that holds
    # the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def _fuzz_tenant(django_db_setup, django_db_blocker):
    """Built once per module (per xdist worker); each operation's test runs in a
    savepoint of it, so what its cases wrote is gone for the next operation."""
    with built_once(django_db_blocker):
        yield make_tenant("Fuzz")


@pytest.fixture
def fuzz_tenant(_fuzz_tenant, db):
    return _fuzz_tenant


# Built the way /api/schema/ builds it, without a request: no database is needed at
# collection time. Requests then go to the WSGI application in process.
SCHEMA = json.loads(
    json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str)
)


def _load_schema(phases: list[str] | None = None) -> schemathesis.schemas.BaseSchema:
    loaded = schemathesis.openapi.from_dict(SCHEMA)
    loaded.app = application
    if phases is not None:
        loaded.config.phases.update(phases=phases)
    # Methods a path does not take are the isolation walker's (one per route, for every
    # caller): here they were a seventh of the requests, all 405.
    loaded.config.phases.coverage.unexpected_methods = set()
    return loaded


# The admin's tests take every phase, the coverage phase's boundary and wrong-type cases
# of each parameter included (about 300 requests for the traces list); the API key's
# take the generated examples only: the coverage cases are the same requests whoever
# sends them, and sending them twice doubled the fuzz for no new branch.
schema = _load_schema()
key_schema = _load_schema(phases=["examples", "fuzzing"])


def _session(user) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and cookies of a signed-in browser session. Cookies go as cookies:
    the WSGI transport's client sends its own cookie jar as the Cookie header (an empty
    jar removes the header)."""
    client = Client()
    client.force_login(user)
    csrf = _get_new_csrf_string()
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}
    return {"X-CSRFToken": csrf}, cookies


@pytest.fixture
def admin_session(fuzz_tenant) -> tuple[dict[str, str], dict[str, str]]:
    """The admin's session, signed in once per operation's test rather than per generated
    case: no API operation ends a session (none signs out, changes a password or
    deactivates a user), and each sign-in writes a session and the last login."""
    return _session(fuzz_tenant.admin)


def _pin_tenant(case, tenant) -> None:
    # Random slugs would only ever reach the 404 branch; aim at a real organization.
    if case.path_parameters:
        if "org_slug" in case.path_parameters:
            case.path_parameters["org_slug"] = tenant.organization.slug
        if "project_slug" in case.path_parameters:
            case.path_parameters["project_slug"] = tenant.project.slug


def _as_caller(case, headers: dict[str, str], cookies: dict[str, str]) -> None:
    """The case sent as the caller: schemathesis fills the schema's security schemes
    with values of its own (``Authorization: Bearer `` and an empty ``sessionid``), which
    would answer 401 before any parameter is read. They are replaced by the caller's."""
    generated = case.headers or {}
    case.headers = {k: v for k, v in generated.items() if k.lower() != "authorization"} | headers
    case.cookies = {k: v for k, v in (case.cookies or {}).items() if k != "sessionid"} | cookies


def _record(caller: str, case, response) -> None:
    if RECORD:
        with open(RECORD, "a") as record:
            method, path = case.operation.method.upper(), case.operation.path
            print(caller, method, path, response.status_code, file=record)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_as_an_admin(case, fuzz_tenant, admin_session):
    _pin_tenant(case, fuzz_tenant)
    _as_caller(case, *admin_session)
    response = case.call_and_validate(checks=[not_a_server_error])
    _record("admin", case, response)


@key_schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES // 2,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_with_an_api_key(case, fuzz_tenant):
    _pin_tenant(case, fuzz_tenant)
    _as_caller(case, {"Authorization": f"Bearer {fuzz_tenant.key('all')}"}, {})
    response = case.call_and_validate(checks=[not_a_server_error])
    _record("api-key", case, response)
