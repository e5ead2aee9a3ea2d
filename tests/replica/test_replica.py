"""Read replicas for real: a streaming replica of the test PostgreSQL (conftest.py).

Heavy reads (the trace list and its count, the trace detail, the board) go to the
replica; writes, claims and who-may-see-what stay on the primary; a person or key who
just wrote reads from the primary until the replica has replayed their write (shown
with a replica delayed on purpose); a stopped replica is skipped and reported; and the
isolation walker's reads of the replica routes leak nothing of another organization.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from hitl import replica, tenancy
from hitl.audit import Actor
from hitl.tenancy import TenantScopeError
from review.services import queue_item_add
from tests.factories import make_tenant
from tests.replica.conftest import ALIAS
from tests.review.helpers import make_config, make_queue, make_trace
from tests.traces.ingest_helpers import post, span, trace
from traces.models import Trace

pytestmark = [
    pytest.mark.xdist_group("replica"),
    pytest.mark.django_db(transaction=True, databases=["default", ALIAS]),
]

WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def page(tenant) -> str:
    return f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _ingest(client, tenant, trace_id: str, *, spans: int = 1) -> None:
    events = [trace(trace_id, name=f"run {trace_id}")]
    events += [span(trace_id, f"{trace_id}-s{n}", name=f"step {n}") for n in range(spans)]
    response = post(client, tenant, events)
    assert response.status_code < 300, response.content


def _listed(client, tenant) -> set[str]:
    response = client.get(f"{base(tenant)}/traces/")
    assert response.status_code == 200, response.content
    return {row["trace_id"] for row in response.json()["results"]}


def _sql(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def test_heavy_reads_go_to_the_replica_and_writes_claims_and_scope_checks_to_the_primary(
    replica_server, client_for
):
    tenant = make_tenant("Acme")
    key = client_for(key=tenant.key("all"))
    _ingest(key, tenant, "first", spans=3)
    queue = make_queue(tenant, configs=[make_config(tenant)], overlap=1)
    with tenancy.tenant_scope(tenant.organization.pk):
        first = Trace.objects.get(external_id="first")
        queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=first.pk)
    replica_server.wait_replayed()
    viewer, owner = client_for(tenant.viewer), client_for(tenant.owner)

    with (
        CaptureQueriesContext(connections[ALIAS]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        assert _listed(viewer, tenant) == {"first"}
        detail = viewer.get(f"{base(tenant)}/traces/first/").json()
        assert len(detail["spans"]) == 3
        explorer = viewer.get(f"{page(tenant)}/traces/")
        assert explorer.status_code == 200 and b"run first" in explorer.content
        board = owner.get(f"{base(tenant)}/queues/{queue.pk}/board/").json()
        assert board["columns"]["pending"] == 1
        assert owner.get(f"{page(tenant)}/queues/{queue.pk}/board/").status_code == 200
    replica_sql, primary_sql = _sql(on_replica), _sql(on_primary)
    # The list, its count, the detail's spans and the board's counts came from the replica.
    assert any('FROM "traces_trace"' in q for q in replica_sql)
    assert any('FROM "traces_span"' in q for q in replica_sql)
    assert any('FROM "review_queueitem"' in q for q in replica_sql)
    assert any("unnest(qi.assignees)" in q for q in replica_sql)  # the board's raw SQL
    assert not [q for q in primary_sql if 'FROM "traces_span"' in q]
    # Who may see what was read from the primary only.
    assert any('FROM "projects_membership"' in q for q in primary_sql)
    for table in ("projects_membership", "projects_apikey", "projects_organization"):
        assert not any(f'FROM "{table}"' in q for q in replica_sql), table

    # Writes (ingestion) and claims touch the primary only.
    reviewer = client_for(tenant.reviewer)
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        _ingest(key, tenant, "second")
        claim = reviewer.post(f"{base(tenant)}/queues/{queue.pk}/claim/")
        assert claim.status_code == 200, claim.content
    assert _sql(on_replica) == []
    # A read inside a transaction stays on the primary, even inside reads_from_replica.
    from django.db import transaction

    with replica.reads_from_replica() as alias:
        assert alias == ALIAS
        with transaction.atomic():
            assert replica.read_alias() == "default"
        assert replica.read_alias() == ALIAS


def test_read_your_writes_with_a_replica_delayed_on_purpose(replica_server, client_for, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 600  # delayed on purpose, not skipped as lagging
    tenant = make_tenant("Acme")
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config], overlap=1)
    older = make_trace(tenant, external_id="older", name="older run")
    with tenancy.tenant_scope(tenant.organization.pk):
        queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=older.pk)
    replica_server.wait_replayed()
    owner, key = client_for(tenant.owner), client_for(key=tenant.key("all"))
    reviewer = client_for(tenant.reviewer)
    replica_server.set_apply_delay(600_000)
    try:
        # An API client reads the trace it has just posted, spans and all.
        _ingest(key, tenant, "fresh", spans=2)
        assert "fresh" in _listed(key, tenant)
        detail = key.get(f"{base(tenant)}/traces/fresh/")
        assert detail.status_code == 200 and len(detail.json()["spans"]) == 2
        # Someone who wrote nothing reads the delayed replica: no "fresh" yet.
        assert _listed(owner, tenant) == {"older"}, replica._states
        # A task (no request) reads the primary while the replica is behind.
        with replica.reads_from_replica() as alias:
            assert alias == "default"

        # A reviewer sees their own submit at once.
        claim = reviewer.post(f"{base(tenant)}/queues/{queue.pk}/claim/").json()
        submitted = reviewer.post(
            f"{base(tenant)}/assignments/{claim['assignment']['id']}/submit/",
            {"values": {str(config.pk): 0.75}, "explanation": "Mine.", "failure_modes": []},
            format="json",
        )
        assert submitted.status_code == 201, submitted.content
        mine = reviewer.get(f"{base(tenant)}/traces/older/").json()
        assert [a["values"] for a in mine["annotations"]] == [{str(config.pk): 0.75}]
        assert owner.get(f"{base(tenant)}/traces/older/").json()["annotations"] == []
    finally:
        replica_server.set_apply_delay(0)
    replica_server.wait_replayed()
    # Replayed: everyone reads it from the replica now.
    assert _listed(owner, tenant) == {"older", "fresh"}
    assert len(owner.get(f"{base(tenant)}/traces/older/").json()["annotations"]) == 1
    with replica.reads_from_replica() as alias:
        assert alias == ALIAS


def test_a_stopped_replica_is_skipped_logged_and_reported(
    replica_server, client_for, client, caplog
):
    tenant = make_tenant("Acme")
    key = client_for(key=tenant.key("all"))
    _ingest(key, tenant, "kept")
    replica_server.wait_replayed()
    healthy = client.get("/healthz").json()
    assert healthy["status"] == "ok" and healthy["replicas"] == {ALIAS: "ok"}

    viewer = client_for(tenant.viewer)
    with replica_server.stopped(), caplog.at_level(logging.WARNING, logger="hitl.replica"):
        # Reads succeed from the primary, nobody notices.
        assert _listed(viewer, tenant) == {"kept"}
        assert viewer.get(f"{base(tenant)}/traces/kept/").status_code == 200
        assert viewer.get(f"{page(tenant)}/traces/").status_code == 200
        with replica.reads_from_replica() as alias:
            assert alias == "default"
        report = client.get("/healthz")
        assert report.status_code == 200
        body = report.json()
        assert body["status"] == "degraded" and body["database"] == "ok"
        assert body["replicas"][ALIAS].startswith("error: ")
        assert any("read replica replica_1: error" in r.getMessage() for r in caplog.records)
    replica_server.wait_replayed()
    assert client.get("/healthz").json()["replicas"] == {ALIAS: "ok"}


def test_a_lagging_replica_is_skipped(replica_server, client_for, client, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 0.001
    tenant = make_tenant("Acme")
    replica_server.wait_replayed()
    replica_server.set_apply_delay(600_000)
    try:
        _ingest(client_for(key=tenant.key("all")), tenant, "behind")
        replica.forget_states()
        # The owner wrote nothing over HTTP, yet reads the primary: the replica lags.
        assert _listed(client_for(tenant.owner), tenant) == {"behind"}
        assert client.get("/healthz").json()["replicas"][ALIAS].startswith("lagging: ")
    finally:
        replica_server.set_apply_delay(0)


def test_tenancy_holds_on_the_replica_for_the_isolation_walkers_reads(replica_server):
    from tests.test_tenant_isolation import RouteFiller as Filler
    from tests.test_tenant_isolation import _callers, _populate, iter_routes

    victim = make_tenant("Victim", project_name="Assistant")
    attacker = make_tenant("Attacker", project_name="Assistant")
    victim_data, attacker_data = _populate(victim), _populate(attacker)
    replica_server.wait_replayed()
    victim_fill, attacker_fill = Filler(victim, victim_data), Filler(attacker, attacker_data)
    markers = [m for m in victim_data.markers if m]
    wanted = {
        "api/orgs/<org_slug>/projects/<project_slug>/traces/",
        "api/orgs/<org_slug>/projects/<project_slug>/traces/<trace_external_id>/",
        "api/orgs/<org_slug>/projects/<project_slug>/queues/<pk>/board/",
        "api/orgs/<org_slug>/projects/<project_slug>/queues/<queue_pk>/agreement/",
        "orgs/<org_slug>/projects/<project_slug>/traces/",
        "orgs/<org_slug>/projects/<project_slug>/traces/t/<trace_external_id>/",
        "orgs/<org_slug>/projects/<project_slug>/queues/<queue_pk>/board/",
    }
    routes = [route for route in iter_routes() if route.template in wanted]
    assert {route.template for route in routes} == wanted
    callers = {
        name: client
        for name, client in _callers(attacker, attacker.owner).items()
        if name in ("owner", "api-key")
    }
    failures = []
    with CaptureQueriesContext(connections[ALIAS]) as on_replica:
        for route in routes:
            victim_url = victim_fill.url(route)
            mixed_url = attacker_fill.url(
                route,
                {
                    name: victim_fill.value(route, name)
                    for name in route.kwarg_names
                    if name not in ("org_slug", "project_slug")
                },
            )
            own_url = attacker_fill.url(route)
            for url in (victim_url, mixed_url, own_url):
                for name, client in callers.items():
                    response = client.get(url, HTTP_ACCEPT="application/json")
                    body = response.content.decode("utf-8", "replace")
                    where = f"{name} GET {url}"
                    if response.status_code >= 500:
                        failures.append(f"{where}: {response.status_code}")
                    if leaked := [m for m in markers if m in body]:
                        failures.append(f"{where}: leaked {leaked}")
                    denied = response.status_code in (401, 403, 404)
                    if url == victim_url and url.startswith("/api/") and not denied:
                        failures.append(f"{where}: answered {response.status_code}")
    assert not failures, "\n".join(failures)
    # The attacker's own lists, details and boards were read from the replica.
    replica_sql = _sql(on_replica)
    assert any('FROM "traces_trace"' in q for q in replica_sql)
    assert any('FROM "review_queueitem"' in q for q in replica_sql)
    # The tenant managers filter on the replica exactly as on the primary.
    with tenancy.tenant_scope(attacker.organization.pk), replica.reads_from_replica() as alias:
        assert alias == ALIAS
        organizations = set(Trace.objects.values_list("organization_id", flat=True))
        assert organizations == {attacker.organization.pk}
    with replica.reads_from_replica(), pytest.raises(TenantScopeError):
        Trace.objects.count()


def test_exports_and_agreement_inputs_read_a_caught_up_replica(replica_server, settings):
    from django.db import transaction

    from datasets.models import DatasetVersion
    from datasets.selectors import version_records_raw
    from review.quality.models import AgreementReport
    from review.quality.services import agreement
    from tests.datasets.helpers import import_rows, make_dataset
    from tests.review.test_agreement_freshness import _queue, _submit_one

    settings.REPLICA_MAX_LAG_SECONDS = 600
    settings.REPLICA_WAIT_SECONDS = 0.05
    tenant = make_tenant("Acme")
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": f"case-{n}", "input": {"q": n}} for n in range(3)])
    config, reviewers, queue = _queue(tenant, items=2)
    _submit_one(tenant, queue, config, reviewers[0], "right")
    _submit_one(tenant, queue, config, reviewers[1], "wrong")
    replica_server.wait_replayed()
    org = tenant.organization.pk
    # Caught up: the snapshot is the replica's, even inside a primary transaction.
    with transaction.atomic(), replica.replica_snapshot() as database:
        assert database.alias == ALIAS
    with tenancy.tenant_scope(org):
        version = DatasetVersion.objects.get(dataset=dataset, number=1)
        assert len(list(version_records_raw(version))) == 3
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=0) == "computed"
        assert AgreementReport.objects.filter(queue=queue).latest("id").n_answers == 2

    replica_server.set_apply_delay(600_000)
    try:
        # Behind the primary: the third answer is read from the primary, never missed.
        _submit_one(tenant, queue, config, reviewers[2], "right")
        with replica.replica_snapshot() as database:
            assert database.alias == "default"
        with tenancy.tenant_scope(org):
            assert agreement.agreement_refresh(queue_id=queue.pk, resamples=0) == "computed"
            assert AgreementReport.objects.filter(queue=queue).latest("id").n_answers == 3
            assert len(list(version_records_raw(version))) == 3
    finally:
        replica_server.set_apply_delay(0)


def test_the_quality_and_comparison_reports_read_the_replica(replica_server, client_for):
    from review.quality.models import AgreementReport
    from review.quality.services import agreement
    from tests.review.comparison_helpers import make_comparison_queue
    from tests.review.test_agreement_freshness import _queue, _submit_one

    tenant = make_tenant("Acme")
    config, reviewers, queue = _queue(tenant, items=2)
    _submit_one(tenant, queue, config, reviewers[0], "right")
    _submit_one(tenant, queue, config, reviewers[1], "wrong")
    with tenancy.tenant_scope(tenant.organization.pk):
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=0) == "computed"
        report = AgreementReport.objects.filter(queue=queue).latest("id")
    compared = make_comparison_queue(tenant)
    replica_server.wait_replayed()
    owner = client_for(tenant.owner)
    pages = [
        f"{page(tenant)}/reports/quality/",
        f"{page(tenant)}/reports/quality/agreement/{queue.pk}/{report.config_id}/",
        f"{page(tenant)}/reports/comparison/{compared.pk}/",
    ]
    for url in pages:
        with CaptureQueriesContext(connections[ALIAS]) as on_replica:
            response = owner.get(url)
        assert response.status_code == 200, (url, response.status_code)
        replica_sql = _sql(on_replica)
        assert any('FROM "review_' in q for q in replica_sql), url  # the report's rows
        for table in ("projects_membership", "projects_apikey", "projects_organization"):
            assert not any(f'FROM "{table}"' in q for q in replica_sql), (url, table)


def test_threads_calibration_and_alignment_read_the_replica(replica_server, client_for):
    """The thread list and a conversation's turns (API), the calibration set's rounds
    compared and a round's detail (pages), and the alignment report's inputs (a task)
    read the replica; who may see what stays on the primary."""
    from review.quality.models import AlignmentReport
    from review.quality.services import alignment
    from tests.review.isolation import _calibration

    tenant = make_tenant("Acme")
    key = client_for(key=tenant.key("all"))
    events = [trace(f"turn-{n}", name=f"turn {n}", thread_id="chat-1") for n in range(3)]
    assert post(key, tenant, events).status_code < 300
    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config], overlap=1)
    with tenancy.tenant_scope(tenant.organization.pk):
        turn = Trace.objects.get(external_id="turn-0")
        queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=turn.pk)
        from review import services

        lease = services.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
        annotation = services.assignment_submit(
            actor=Actor(user=tenant.reviewer), assignment_id=lease.pk, values={str(config.pk): 0.5}
        )
        calibration_set, calibration_round = _calibration(tenant, config, queue, annotation)
        mapping_id = AlignmentReport.objects.latest("id").mapping_id
    replica_server.wait_replayed()
    owner = client_for(tenant.owner)
    reads = [
        (f"{base(tenant)}/threads/", 'FROM "traces_thread"'),
        (f"{base(tenant)}/threads/chat-1/", 'FROM "traces_trace"'),
        (f"{page(tenant)}/calibration/{calibration_set.pk}/", 'FROM "review_calibrationround"'),
        (
            f"{page(tenant)}/calibration/rounds/{calibration_round.pk}/",
            'FROM "review_annotation"',
        ),
    ]
    for url, table in reads:
        with CaptureQueriesContext(connections[ALIAS]) as on_replica:
            response = owner.get(url)
        assert response.status_code == 200, (url, response.status_code)
        replica_sql = _sql(on_replica)
        assert any(table in q for q in replica_sql), (url, table)
        for scoped in ("projects_membership", "projects_apikey", "projects_organization"):
            assert not any(f'FROM "{scoped}"' in q for q in replica_sql), (url, scoped)
    turns = owner.get(f"{base(tenant)}/threads/chat-1/").json()
    assert turns["count"] == 3 and turns["thread"]["thread_id"] == "chat-1"

    with (
        tenancy.tenant_scope(tenant.organization.pk),
        CaptureQueriesContext(connections[ALIAS]) as on_replica,
        CaptureQueriesContext(connections["default"]) as on_primary,
    ):
        report = alignment.alignment_refresh(mapping_id=mapping_id)
    assert report is not None and report.figures["n_items"] >= 0
    replica_sql = _sql(on_replica)
    assert any('FROM "review_annotation"' in q for q in replica_sql)
    assert any('FROM "traces_score"' in q for q in replica_sql)
    assert not [q for q in replica_sql if WRITES.match(q)]
    assert any('INSERT INTO "review_alignmentreport"' in q for q in _sql(on_primary))
