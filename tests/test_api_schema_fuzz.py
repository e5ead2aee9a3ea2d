"""schemathesis over the OpenAPI schema: generated requests, authenticated as a member,
must never produce a server error."""

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


def _load_schema() -> schemathesis.schemas.BaseSchema:
    # Built the way /api/schema/ builds it, without a request: no database is needed
    # at collection time. Requests then go to the WSGI application in process.
    generated = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(generated, default=str)))
    loaded.app = application
    return loaded


schema = _load_schema()


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
    headers, cookies = admin_session
    response = case.call_and_validate(
        headers=dict(headers), cookies=dict(cookies), checks=[not_a_server_error]
    )
    _record("admin", case, response)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES // 2,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_with_an_api_key(case, fuzz_tenant):
    _pin_tenant(case, fuzz_tenant)
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_tenant.key('all')}"},
        checks=[not_a_server_error],
    )
    _record("api-key", case, response)
