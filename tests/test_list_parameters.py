"""Every list endpoint reads its query parameters through a FilterSet: an unknown
parameter or an invalid value answers 400 in the error shape, pagination and format
parameters pass, and a valid filter narrows the list.

The list routes are found by walking the URL conf (a GET mapped to a viewset's
``list``), so a new list endpoint is covered the day it is added: its invalid values
are derived from its FilterSet's fields, and ``VALID_FILTERS`` must name a filter that
narrows it (the test fails, naming the route, until it does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import django_filters
import pytest
from rest_framework.test import APIClient

from hitl.api.filters import RESPONSE_PARAMETERS, StrictBooleanFilter
from hitl.audit import Actor
from hitl.filtering import FiniteFloatField
from hitl.tenancy import tenant_scope
from projects import services as project_services
from projects.models import Role
from tests.factories import Tenant, add_member, make_tenant
from tests.isolation import IsolationData
from tests.review.helpers import make_config, make_queue
from tests.test_tenant_isolation import Route, RouteFiller, _populate, iter_routes
from tests.worlds import built_once
from traces.filters import RepeatedValuesFilter

UNKNOWN = "no_such_parameter"


def list_routes() -> list[Route]:
    return [
        route
        for route in iter_routes()
        if route.template.startswith("api/")
        and (getattr(route.pattern.callback, "actions", None) or {}).get("get") == "list"
    ]


def _route_id(route: Route) -> str:
    return route.pattern.name or route.template


LIST_ROUTES = list_routes()


@dataclass
class World:
    tenant: Tenant
    data: IsolationData
    other: Tenant

    def client(self, who: str = "owner") -> APIClient:
        client = APIClient()
        client.force_login(getattr(self.tenant, who))
        return client

    def url(self, route: Route) -> str:
        return RouteFiller(self.tenant, self.data).url(route)


@pytest.fixture(scope="module")
def _world(django_db_setup, django_db_blocker):
    """Built once per module (per xdist worker); each test runs in a savepoint of it."""
    with built_once(django_db_blocker):
        tenant = make_tenant("Lists")
        data = _populate(tenant)
        # A second organization of the owner's, so the organization list has one to leave out.
        other = make_tenant("Elsewhere")
        add_member(other.organization, tenant.owner, Role.VIEWER)
        # Rows a filter can leave out: another config type, a blind queue.
        make_config(tenant, name="is-it-safe", data_type="boolean", min_value=None, max_value=None,
                    step=None)  # fmt: skip
        make_queue(tenant, name="blind-second-opinion", blind_mode=True)
        with tenant_scope(tenant.organization.pk):
            project_services.project_create(actor=Actor(user=tenant.owner), name="Other app")
        yield World(tenant=tenant, data=data, other=other)


@pytest.fixture
def world(_world, db) -> World:
    return _world


def _results(response) -> list[dict[str, Any]]:
    body = response.json()
    return body["results"] if isinstance(body, dict) else body


def _assert_400_naming(response, parameter: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content)
    error = response.json()["error"]
    assert error["request_id"] == response["X-Request-Id"] and error["message"]
    assert parameter in error["details"], error


# --- what an invalid value is, per filter type ----------------------------------------------


# Numbers no column can compare against (NaN and the infinities, past a double, past a
# bigint) and UTC offsets no time zone has: each must be a 400 naming the parameter
# (hitl.filtering), never a database error.
HOSTILE_NUMBERS = ("abc", "NaN", "Infinity", "-Infinity", "1e400", "9" * 400)
HOSTILE_TIMES = ("not-a-date", "2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-14:30")


def invalid_values(filter_: django_filters.Filter) -> tuple[str, ...]:
    """Values the filter must refuse; empty if it accepts any text."""
    if isinstance(filter_, StrictBooleanFilter):
        return ("maybe",)
    if isinstance(filter_, django_filters.ChoiceFilter):
        return ("bogus",)
    if isinstance(filter_, django_filters.NumberFilter):
        tiny = ("1e-999999",) if filter_.field_class is not FiniteFloatField else ()
        return HOSTILE_NUMBERS + tiny
    if isinstance(filter_, django_filters.IsoDateTimeFilter | django_filters.DateTimeFilter):
        return HOSTILE_TIMES
    if isinstance(filter_, RepeatedValuesFilter):
        return ("x" * 300,)
    max_length = filter_.extra.get("max_length")
    if max_length:
        return ("x" * (max_length + 1),)
    return ()


def _filterset_class(route: Route) -> type[django_filters.FilterSet] | None:
    return getattr(route.view_class, "filterset_class", None)


def _our_filtersets() -> list[type[django_filters.FilterSet]]:
    # Every FilterSet is imported by now: LIST_ROUTES walked the URL conf and its views.
    found, stack = [], [django_filters.FilterSet]
    while stack:
        for subclass in stack.pop().__subclasses__():
            stack.append(subclass)
            if subclass.__module__.split(".")[0] in ("hitl", "projects", "traces", "review",
                                                     "datasets"):  # fmt: skip
                found.append(subclass)
    return found


def test_every_filterset_checks_its_values_before_sql():
    """A FilterSet of ours inherits hitl.filtering.FilterSet, which bounds every number
    and time filter by its column (declared or generated, today's and tomorrow's)."""
    from hitl.filtering import FilterSet

    ours = _our_filtersets()
    assert len(ours) >= 10
    strays = [c.__qualname__ for c in ours if not issubclass(c, FilterSet)]
    assert not strays, f"FilterSets not built on hitl.filtering.FilterSet: {strays}"


# --- the walk ---------------------------------------------------------------------------------


def test_the_walk_finds_the_list_endpoints():
    names = {_route_id(r) for r in LIST_ROUTES}
    assert {"trace-list", "queue-item-list", "annotation-list", "member-list"} <= names


@pytest.mark.parametrize("route", LIST_ROUTES, ids=_route_id)
def test_every_list_endpoint_has_a_filterset(route):
    assert _filterset_class(route) is not None, f"{_route_id(route)} has no filterset_class"


@pytest.mark.parametrize("route", LIST_ROUTES, ids=_route_id)
def test_an_unknown_parameter_answers_400(world, route):
    response = world.client(_caller(route)).get(world.url(route), {UNKNOWN: "1"})
    _assert_400_naming(response, UNKNOWN)


@pytest.mark.parametrize("route", LIST_ROUTES, ids=_route_id)
def test_pagination_and_format_parameters_are_allowed(world, route):
    response = world.client(_caller(route)).get(
        world.url(route), {"page_size": "1", "format": "json"}
    )
    assert response.status_code == 200, response.content
    assert {"page_size", "format", "cursor"} <= RESPONSE_PARAMETERS


@pytest.mark.parametrize("route", LIST_ROUTES, ids=_route_id)
def test_every_invalid_filter_value_answers_400(world, route):
    filterset_class = _filterset_class(route)
    assert filterset_class is not None
    client, url = world.client(_caller(route)), world.url(route)
    checked = 0
    for name, filter_ in filterset_class.base_filters.items():
        for value in invalid_values(filter_):
            _assert_400_naming(client.get(url, {name: value}), name)
            checked += 1
    assert checked, f"{_route_id(route)}: no filter with a value it refuses"


# --- valid filters narrow ---------------------------------------------------------------------


@dataclass
class Case:
    params: Callable[[World], dict[str, str]]
    matches: Callable[[World, dict[str, Any]], bool]
    # A value of the same filter that matches none of the rows (the filter is applied).
    empty: Callable[[World], dict[str, str]]
    caller: str = "owner"


def _ids(world: World) -> dict[str, Any]:
    from review.models import Adjudication, Annotation, QueueItem

    with tenant_scope(world.tenant.organization.pk):
        adjudicated = Adjudication.objects.values_list("item_id", flat=True).first()
        other_item = QueueItem.objects.exclude(pk=adjudicated).values_list("pk", flat=True)[0]
        annotation = Annotation.objects.first()
    return {"adjudicated": adjudicated, "other_item": other_item, "annotation": annotation}


def _calibration_set_id(world: World) -> int:
    from review.quality.models import CalibrationSet

    with tenant_scope(world.tenant.organization.pk):
        return CalibrationSet.objects.values_list("pk", flat=True).get()


_PAST = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
_FUTURE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()

VALID_FILTERS: dict[str, Case] = {
    "organization-list": Case(
        lambda w: {"name_contains": w.tenant.organization.name},
        lambda w, r: r["slug"] == w.tenant.organization.slug,
        lambda w: {"name_contains": "no such organization"},
    ),
    "member-list": Case(
        lambda w: {"role": "reviewer"},
        lambda w, r: r["role"] == "reviewer",
        lambda w: {"email": "nobody@example.com"},
    ),
    "invitation-list": Case(
        lambda w: {"status": "pending"},
        lambda w, r: r["status"] == "pending",
        lambda w: {"status": "accepted"},
    ),
    "project-list": Case(
        lambda w: {"name_contains": w.tenant.project.name},
        lambda w, r: r["slug"] == w.tenant.project.slug,
        lambda w: {"name_contains": "no such project"},
    ),
    "api-key-list": Case(
        lambda w: {"active": "true"},
        lambda w, r: r["is_active"],
        lambda w: {"active": "false"},
    ),
    "destination-list": Case(
        lambda w: {"kind": "webhook"},
        lambda w, r: r["kind"] == "webhook",
        lambda w: {"kind": "slack"},
    ),
    "queue-alert-list": Case(
        lambda w: {"queue": str(10**9)},
        lambda w, r: r["queue_id"] == 10**9,
        lambda w: {"queue": "1"},
    ),
    "delivery-list": Case(
        lambda w: {"state": "pending"},
        lambda w, r: r["state"] == "pending",
        lambda w: {"state": "failed"},
    ),
    "score-config-list": Case(
        lambda w: {"data_type": "numeric"},
        lambda w, r: r["data_type"] == "numeric",
        lambda w: {"data_type": "text"},
    ),
    "review-queue-list": Case(
        lambda w: {"blind_mode": "true"},
        lambda w, r: r["blind_mode"] is True,
        lambda w: {"name_contains": "no such queue"},
    ),
    "queue-item-list": Case(
        lambda w: {"target_type": "trace"},
        lambda w, r: r["target_type"] == "trace",
        lambda w: {"target_type": "thread"},
    ),
    "assignment-list": Case(
        lambda w: {"state": "leased"},
        lambda w, r: r["state"] == "leased",
        lambda w: {"state": "expired"},
        caller="reviewer",
    ),
    "annotation-list": Case(
        lambda w: {"reviewer": str(w.tenant.reviewer.pk)},
        lambda w, r: r["reviewer"] == w.tenant.reviewer.pk,
        lambda w: {"reviewer": str(w.tenant.owner.pk)},
    ),
    "adjudication-list": Case(
        lambda w: {"item": str(_ids(w)["adjudicated"])},
        lambda w, r: r["item"] == _ids(w)["adjudicated"],
        lambda w: {"item": str(_ids(w)["other_item"])},
    ),
    "comment-list": Case(
        lambda w: {"author": str(w.tenant.reviewer.pk)},
        lambda w, r: r["author"] == w.tenant.reviewer.pk,
        lambda w: {"q": "wordthatappearsnowhere"},
    ),
    "routing-rule-list": Case(
        lambda w: {"signal": "error"},
        lambda w, r: r["signal"] == "error",
        lambda w: {"signal": "thumbs_down"},
    ),
    "calibration-set-list": Case(
        lambda w: {"name_contains": "calibration-only"},
        lambda w, r: r["name"].startswith("calibration-only"),
        lambda w: {"name_contains": "no such set"},
    ),
    "calibration-round-list": Case(
        lambda w: {"calibration_set": str(_calibration_set_id(w))},
        lambda w, r: r["calibration_set"] == _calibration_set_id(w),
        lambda w: {"calibration_set": str(10**9)},
    ),
    "queue-calibration-list": Case(
        lambda w: {"queue": str(w.data.kwargs["queue_pk"])},
        lambda w, r: r["queue"] == w.data.kwargs["queue_pk"],
        lambda w: {"queue": str(10**9)},
    ),
    "alignment-mapping-list": Case(
        lambda w: {"score_name": f"judge-only-{w.tenant.organization.slug}"},
        lambda w, r: r["score_name"].startswith("judge-only"),
        lambda w: {"score_name": "no-such-score"},
    ),
    "comparison-list": Case(
        lambda w: {"source": "api"},
        lambda w, r: r["source"] == "api",
        lambda w: {"source": "experiments"},
    ),
    "quality-alert-list": Case(
        lambda w: {"kind": "gold_accuracy"},
        lambda w, r: r["kind"] == "gold_accuracy",
        lambda w: {"kind": "alignment"},
    ),
    "trace-list": Case(
        lambda w: {"status": "error"},
        lambda w, r: r["status"] == "error",
        lambda w: {"name": "no such trace"},
    ),
    "thread-list": Case(
        lambda w: {"created_from": _PAST},
        lambda w, r: True,
        lambda w: {"created_from": _FUTURE},
    ),
    "dataset-list": Case(
        lambda w: {"name_contains": "dataset-only"},
        lambda w, r: r["name"].startswith("dataset-only"),
        lambda w: {"name_contains": "no such dataset"},
    ),
    "dataset-item-list": Case(
        lambda w: {"source_type": "trace"},
        lambda w, r: r["source_type"] == "trace",
        lambda w: {"source_type": "thread"},
    ),
    "dataset-version-list": Case(
        lambda w: {"number_from": "1"},
        lambda w, r: r["number"] >= 1,
        lambda w: {"number_from": "999"},
    ),
    "dataset-export-list": Case(
        lambda w: {"file_format": "jsonl"},
        lambda w, r: r["format"] == "jsonl",
        lambda w: {"file_format": "csv"},
    ),
    "experiment-list": Case(
        lambda w: {"status": "finished"},
        lambda w, r: r["status"] == "finished",
        lambda w: {"status": "running"},
    ),
    "experiment-result-list": Case(
        lambda w: {"id_prefix": "trace:"},
        lambda w, r: r["id"].startswith("trace:"),
        lambda w: {"id_prefix": "no-such-item"},
    ),
}


def _caller(route: Route) -> str:
    case = VALID_FILTERS.get(_route_id(route))
    return case.caller if case else "owner"


@pytest.mark.parametrize("route", LIST_ROUTES, ids=_route_id)
def test_a_valid_filter_narrows_the_list(world, route):
    case = VALID_FILTERS.get(_route_id(route))
    assert case is not None, f"add a VALID_FILTERS case for {_route_id(route)}"
    client, url = world.client(case.caller), world.url(route)

    everything = client.get(url)
    filtered = client.get(url, case.params(world))
    assert filtered.status_code == 200, filtered.content
    rows = _results(filtered)
    assert rows, f"{_route_id(route)}: the filter matched nothing"
    assert all(case.matches(world, row) for row in rows), rows
    assert len(_results(everything)) >= len(rows)

    nothing = client.get(url, case.empty(world))
    assert nothing.status_code == 200, nothing.content
    assert _results(nothing) == []
