"""The blind rule, as a table: lease states x every read endpoint x roles.

In a blind queue with overlap 2, reviewer A has submitted on six items, each on its own
trace (with a span, a judge score on each, and A's comment on the item). The subject,
pool reviewer B, holds a different lease state on each item: never claimed, leased,
skipped, released, expired, submitted (B's answer disagrees, so that item awaits a
senior's decision). Every GET route under the organization in the URL conf is walked
with every row of the project filled into its URL kwargs, as each role; then, per item,
the other reviewer's markers (answer, explanation, human score, judge scores, item
comment) must be absent from every response when the role is still blind on that item,
and present in some response when it is not.

What each role sees:

| role | sees others' answers and scores on an item |
| --- | --- |
| pool reviewer | only once they submitted on it, whatever their lease |
| senior of the queue (in the pool) | once they submitted, or the item awaits a decision |
| admin in the pool, owner | always (managers) |
| auditor (outside the pool) | always: they give no review to anchor |
| API key with the read scope | always: a key is the project's automation, holds no lease |

Routes are discovered from the URL conf, so a new read endpoint is walked without
editing this test: kwargs the blind rows cannot fill come from the apps'
``tests/<app>/isolation.py`` rows for the same organization, as in the isolation walker;
a kwarg nobody can fill fails it by name.

The world is built once per module and xdist worker (``tests.worlds.built_once``); each
test runs in a savepoint of it, so what a walk writes (its sign-in's session) is undone
before the next test. Each walk records its requests (``walked:blind walker requests``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone
from rest_framework.test import APIClient

from hitl import tenancy
from hitl.audit import Actor
from hitl.tenancy import TenantModel
from review import services
from review.models import Assignment, AssignmentState, ItemStatus, QueueItem
from tests.factories import Tenant, make_tenant
from tests.review.helpers import add_reviewers, make_config, make_queue, make_span, make_trace
from tests.test_tenant_isolation import Route, RouteFiller, _populate, iter_routes
from tests.worlds import built_once
from traces.models import Score, Thread

STATES = ("never", "leased", "skipped", "released", "expired", "submitted")
ROLES = ("reviewer", "senior", "admin_in_pool", "owner", "auditor", "api_key_read")
DECIDING = (ItemStatus.NEEDS_ADJUDICATION, ItemStatus.ADJUDICATED)
# Claim order: B's claims take the items in this order (highest priority first).
CLAIM_ORDER = ("skipped", "released", "expired", "submitted", "leased")


@dataclass
class World:
    tenant: Tenant
    queue: Any
    subject: Any  # pool reviewer B
    senior: Any
    items: dict[str, QueueItem]
    # Per state: marker kind -> text that only the other reviewer's data carries.
    markers: dict[str, dict[str, str]]
    own_markers: dict[str, str]
    claim_bodies: dict[str, str] = field(default_factory=dict)
    # Every app's isolation rows for this organization: fills the kwargs of routes the
    # blind rows cannot (datasets, rubrics, settings pages, ...), so they are walked too.
    filler: Any = None


def _other_reviewer_data(tenant: Tenant, queue, item: QueueItem, other, texts, token: str, state):
    numeric, text = texts
    markers = {
        "answer": f"answer-{state}-{token}",
        "explanation": f"explanation-{state}-{token}",
        "judge_name": f"judge-{state}-{token}",
        "judge_rationale": f"rationale-{state}-{token}",
        "span_judge": f"span-rationale-{state}-{token}",
        "item_comment": f"item-comment-{state}-{token}",
    }
    with tenancy.tenant_scope(tenant.organization.pk):
        span = item.trace.spans.get()
        Score.objects.create(
            project=tenant.project, trace_id=item.trace_id, name=markers["judge_name"],
            data_type="numeric", value=0.3, source="llm_judge", source_name="judge",
            rationale=markers["judge_rationale"],
        )  # fmt: skip
        Score.objects.create(
            project=tenant.project, trace_id=item.trace_id, span=span, name="span-judge",
            data_type="numeric", value=0.4, source="code", source_name="checker",
            rationale=markers["span_judge"],
        )  # fmt: skip
        lease = services.queue_claim_next(actor=Actor(user=other), queue=queue)
        assert lease.item_id == item.pk
        annotation = services.assignment_submit(
            actor=Actor(user=other),
            assignment_id=lease.pk,
            values={str(numeric.pk): 0.0, str(text.pk): markers["answer"]},
            explanation=markers["explanation"],
        )
        # An edit, so the annotation's history shows the explanation before and after.
        services.annotation_update(
            actor=Actor(user=other),
            annotation_id=annotation.pk,
            expected_version=1,
            explanation=f"{markers['explanation']} (edited)",
        )
        services.comment_create(
            actor=Actor(user=other), project=tenant.project, body=markers["item_comment"],
            item_id=item.pk,
        )  # fmt: skip
    return markers


def _build_world(client_for) -> World:
    tenant = make_tenant("Blind")
    token = secrets.token_hex(3)
    numeric = make_config(tenant, name=f"accuracy-{token}")
    text = make_config(
        tenant, name=f"why-{token}", data_type="text", min_value=None, max_value=None, step=None
    )
    other, subject, senior = add_reviewers(tenant, 3)
    queue = make_queue(
        tenant,
        configs=[numeric, text],
        reviewers=[other, subject, senior, tenant.admin],
        seniors=(senior,),
        overlap=2,
        blind_mode=True,
    )
    items: dict[str, QueueItem] = {}
    markers: dict[str, dict[str, str]] = {}
    priorities = {state: len(CLAIM_ORDER) - i for i, state in enumerate(CLAIM_ORDER)}
    for state in sorted(STATES, key=lambda s: -priorities.get(s, -1)):
        with tenancy.tenant_scope(tenant.organization.pk):
            thread = Thread.objects.create(project=tenant.project, external_id=f"thread-{state}")
        trace = make_trace(tenant, external_id=f"trace-{state}", thread=thread)
        make_span(trace, external_id=f"span-{state}", name="retrieve")
        with tenancy.tenant_scope(tenant.organization.pk):
            items[state] = services.queue_item_add(
                actor=Actor(user=tenant.owner),
                queue=queue,
                trace_id=trace.pk,
                priority=priorities.get(state, -1),
            )
        markers[state] = _other_reviewer_data(
            tenant, queue, items[state], other, (numeric, text), token, state
        )

    world = World(tenant, queue, subject, senior, items, markers, own_markers={})
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    b = client_for(subject)
    for state in CLAIM_ORDER:
        response = b.post(f"{base}/queues/{queue.pk}/claim/")
        assert response.status_code == 200, response.content
        claimed = response.json()
        assert claimed["item"]["id"] == items[state].pk, state
        world.claim_bodies[state] = response.content.decode()
        lease = claimed["assignment"]["id"]
        if state == "skipped":
            b.post(f"{base}/assignments/{lease}/skip/", {"reason": "unsure"}, format="json")
        elif state == "released":
            b.post(f"{base}/assignments/{lease}/release/")
        elif state == "expired":
            with tenancy.tenant_scope(tenant.organization.pk):
                Assignment.objects.filter(pk=lease).update(
                    expires_at=timezone.now() - timedelta(seconds=1)
                )
                assert services.leases_expire(queue_id=queue.pk) == 1
        elif state == "submitted":
            world.own_markers[state] = f"own-explanation-{token}"
            response = b.post(
                f"{base}/assignments/{lease}/submit/",
                {
                    "values": {str(numeric.pk): 1.0, str(text.pk): f"own-answer-{token}"},
                    "explanation": world.own_markers[state],
                },
                format="json",
            )
            assert response.status_code == 201, response.content
    with tenancy.tenant_scope(tenant.organization.pk):
        states = dict(Assignment.objects.filter(reviewer=subject).values_list("item_id", "state"))
        for item in items.values():
            item.refresh_from_db()
    expected_states = {
        "leased": AssignmentState.LEASED,
        "skipped": AssignmentState.SKIPPED,
        "released": AssignmentState.RELEASED,
        "expired": AssignmentState.EXPIRED,
        "submitted": AssignmentState.SUBMITTED,
    }
    assert {s: states.get(items[s].pk) for s in STATES} == {
        s: expected_states.get(s) for s in STATES
    }
    world.filler = RouteFiller(tenant, _populate(tenant))
    return world


# --- walking the URL conf -----------------------------------------------------------------


def _candidates(route: Route, world: World) -> list[dict[str, Any]]:
    """Every way to fill ``route``'s kwargs with the project's rows."""
    tenant = world.tenant
    fixed = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    names = [n for n in route.kwarg_names if n not in fixed]
    if not names:
        return [fixed]
    with tenancy.tenant_scope(tenant.organization.pk):
        if set(names) == {"trace_external_id", "span_external_id"}:
            return [
                {**fixed, "trace_external_id": f"trace-{s}", "span_external_id": f"span-{s}"}
                for s in STATES
            ]
        if names == ["trace_external_id"]:
            return [{**fixed, "trace_external_id": f"trace-{s}"} for s in STATES]
        if set(names) == {"trace_external_id", "action_key"}:
            # The trace page's actions: review's "queue" (a POST; read as a GET here).
            return [
                {**fixed, "trace_external_id": f"trace-{s}", "action_key": "queue"} for s in STATES
            ]
        if names == ["thread_external_id"]:
            return [{**fixed, "thread_external_id": f"thread-{s}"} for s in STATES]
        view_class = route.view_class
        model = getattr(view_class, "scoped_model", None)
        lookup = getattr(view_class, "lookup_url_kwarg", None) or "pk"
        filled: dict[str, Any] = {}
        if "queue_pk" in names:
            filled["queue_pk"] = world.queue.pk
        rest = [n for n in names if n not in filled]
        if rest == [lookup] and model is not None:
            rows = model.objects.all()
            if "queue_pk" in filled:
                rows = rows.filter(queue_id=world.queue.pk)
            field_name = getattr(view_class, "lookup_field", "pk")
            values = list(rows.values_list(field_name, flat=True))
            return [{**fixed, **filled, lookup: value} for value in values]
        if len(rest) == 1 and rest[0].endswith("_pk") and _model_named(rest[0][:-3]):
            # A page's "<model>_pk": every row of that model in the organization.
            values = list(_model_named(rest[0][:-3]).objects.values_list("pk", flat=True))
            return [{**fixed, **filled, rest[0]: value} for value in values]
        if not rest:
            return [{**fixed, **filled}]
        try:
            return [{**fixed, **filled, **{n: world.filler.value(route, n) for n in rest}}]
        except LookupError:
            pass
    raise LookupError(f"{route.template}: cannot fill {rest}")


def _model_named(name: str) -> Any:
    for model in apps.get_models():
        if model._meta.model_name == name and issubclass(model, TenantModel):
            return model
    return None


def _url(route: Route, values: dict[str, Any]) -> str:
    url = "/" + route.template
    for name, value in values.items():
        url = url.replace(f"<{name}>", str(value), 1)
    return url


def _get_routes() -> list[Route]:
    routes = []
    for route in iter_routes():
        if "<org_slug>" not in route.template:
            continue
        actions = getattr(route.pattern.callback, "actions", None)
        if actions is not None and "get" not in actions:
            continue
        routes.append(route)
    return routes


def _client(role: str, world: World, client_for) -> APIClient:
    tenant = world.tenant
    if role == "api_key_read":
        return client_for(key=tenant.key("read"))
    user = {
        "reviewer": world.subject,
        "senior": world.senior,
        "admin_in_pool": tenant.admin,
        "owner": tenant.owner,
        "auditor": tenant.auditor,
    }[role]
    return client_for(user)


def _walk(client: APIClient, world: World, record_property) -> dict[str, str]:
    """GET every route with every filling: url -> body (successful answers only). The
    requests made are recorded (``walked:...``, summed by tests/parallel.py)."""
    bodies: dict[str, str] = {}
    sent = 0
    unfillable = []
    for route in _get_routes():
        try:
            fillings = _candidates(route, world)
        except LookupError as exc:
            unfillable.append(str(exc))
            continue
        for values in fillings:
            url = _url(route, values)
            response = client.get(url, HTTP_ACCEPT="application/json")
            sent += 1
            assert response.status_code < 500, f"{url}: {response.status_code}"
            if response.status_code == 200:
                body = (
                    b"".join(response.streaming_content)  # a file (an export's download)
                    if response.streaming
                    else response.content
                )
                bodies[url] = body.decode(errors="replace")
    record_property("walked:blind walker requests", sent)
    assert not unfillable, "\n".join(unfillable)
    return bodies


def _sees(role: str, state: str, world: World) -> bool:
    if role == "reviewer":
        return state == "submitted"
    if role == "senior":
        return world.items[state].status in DECIDING
    return True


def _signed_in(user=None, *, key: str | None = None) -> APIClient:
    """The ``client_for`` fixture's clients, for the module-scoped world."""
    client = APIClient()
    if user is not None:
        client.force_login(user)
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once per module (per xdist worker); each test runs in a savepoint of it
    (``db``), so what a test's requests change is undone before the next one."""
    with built_once(django_db_blocker):
        yield _build_world(_signed_in)


@pytest.mark.parametrize("role", ROLES)
def test_blind_rule_on_every_read_endpoint(world, db, client_for, role, record_property):
    assert world.items["submitted"].status == ItemStatus.NEEDS_ADJUDICATION
    bodies = _walk(_client(role, world, client_for), world, record_property)
    assert len(bodies) >= 20, sorted(bodies)  # the walker reached the project's reads
    failures = []
    for state in STATES:
        expected = _sees(role, state, world)
        for kind, marker in world.markers[state].items():
            where = [url for url, body in bodies.items() if marker in body]
            if not expected and where:
                failures.append(f"{role}/{state}: {kind} leaked by {where}")
            if expected and not where:
                failures.append(f"{role}/{state}: {kind} shown nowhere")
    assert not failures, "\n".join(failures)
    if _sees(role, "never", world):
        # The walk reads annotation history, where the explanation shows as a change.
        explanation = world.markers["never"]["explanation"]
        assert any(
            "/annotations/" in url and url.endswith("/history/") and explanation in body
            for url, body in bodies.items()
        )


def test_the_blind_reviewer_sees_their_own_answer_and_the_item_itself(
    world, db, client_for, record_property
):
    bodies = _walk(_client("reviewer", world, client_for), world, record_property)
    own = world.own_markers["submitted"]
    assert any(own in body for body in bodies.values())
    base = f"/api/orgs/{world.tenant.organization.slug}/projects/{world.tenant.project.slug}"
    for state in STATES:
        item = world.items[state]
        url = f"{base}/queues/{world.queue.pk}/items/{item.pk}/"
        assert url in bodies, f"{state}: the item view itself must stay readable"
        assert f"{base}/traces/trace-{state}/" in bodies


def test_claim_responses_hide_the_other_answers(world, db):
    for state, body in world.claim_bodies.items():
        leaked = [kind for kind, marker in world.markers[state].items() if marker in body]
        assert not leaked, f"claim of the {state} item showed {leaked}"


def test_the_reported_leak_annotations_by_item_and_unfiltered(world, db, client_for):
    """Issue 7's report: after A submits, B (no lease, then after skipping) read A's
    values and explanation from the annotation list, filtered by item and not."""
    tenant = world.tenant
    b = client_for(world.subject)
    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    for state in ("never", "skipped"):
        item = world.items[state]
        filtered = b.get(f"{base}/annotations/?item={item.pk}")
        assert filtered.status_code == 200 and filtered.json()["results"] == []
    everything = b.get(f"{base}/annotations/").content.decode()
    assert world.markers["never"]["explanation"] not in everything
    assert world.markers["submitted"]["explanation"] in everything
