"""Concurrent batches on the same trace, and overload answered with Retry-After."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection, connections

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from tests.traces.ingest_helpers import post, span, trace
from traces import services
from traces.ingest.store import trace_lock_key
from traces.ingest.validation import parse_events
from traces.models import Span, Trace


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_on_one_trace_roll_up_every_span(tenant):
    errors: list[BaseException] = []

    def sender(worker: int) -> None:
        try:
            for batch_number in range(5):
                events = [
                    span("hot", f"w{worker}-b{batch_number}-s{n}", kind="llm", input_tokens=1,
                         output_tokens=2, cost=0.25)
                    for n in range(4)
                ]  # fmt: skip
                if worker == 0 and batch_number == 2:
                    events.append(trace("hot", name="hot trace"))
                with tenant_scope(tenant.organization.pk):
                    result = services.ingest_batch(
                        actor=Actor(source="api"),
                        project=tenant.project,
                        batch=parse_events(events),
                    )
                assert not result.rejections
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with tenant_scope(tenant.organization.pk):
        [hot] = Trace.objects.filter(project=tenant.project)
        assert Span.objects.filter(trace=hot).count() == 120
    assert (hot.input_tokens, hot.output_tokens, hot.total_tokens) == (120, 240, 360)
    assert float(hot.cost) == pytest.approx(30.0)
    assert hot.name == "hot trace" and not hot.is_placeholder


def test_a_batch_waiting_too_long_for_its_trace_answers_503_with_retry_after(
    tenant, client_for, monkeypatch
):
    from django.test import Client

    monkeypatch.setattr(services, "LOCK_TIMEOUT", "200ms")
    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST']} port={settings['PORT']} user={settings['USER']} "
        f"dbname={settings['NAME']}"
    )
    # Another writer holds the trace for longer than the lock timeout.
    with psycopg.connect(dsn) as other:
        other.execute(
            "SELECT pg_advisory_xact_lock(%s)", [trace_lock_key(tenant.project.pk, "busy")]
        )
        response = post(client_for(key=tenant.key("ingest")), tenant, [trace("busy")])
        assert response.status_code == 503
        assert int(response["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "overloaded"

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        otel_span = request.resource_spans.add().scope_spans.add().spans.add()
        otel_span.trace_id = bytes(range(1, 17))
        otel_span.span_id = bytes(range(1, 9))
        other.execute(
            "SELECT pg_advisory_xact_lock(%s)",
            [trace_lock_key(tenant.project.pk, bytes(range(1, 17)).hex())],
        )
        response = Client().post(
            "/v1/traces",
            request.SerializeToString(),
            content_type="application/x-protobuf",
            HTTP_AUTHORIZATION=f"Bearer {tenant.key('ingest')}",
        )
        assert response.status_code == 503 and int(response["Retry-After"]) > 0
    # Once the other writer is done, the same batch goes through.
    assert post(client_for(key=tenant.key("ingest")), tenant, [trace("busy")]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_thread_deleted_while_a_batch_writes_into_it_is_created_again(tenant, client_for):
    """Retention deletes a thread whose last trace expired; a batch resuming that
    conversation read the thread's id just before, and its commit fails the foreign key.
    Ingestion retries it, the thread is created again, and nothing is lost."""
    from traces.hooks import traces_changed
    from traces.models import Thread

    client = client_for(key=tenant.key("ingest"))
    assert post(client, tenant, [trace("old", session_id="conv")]).status_code == 200
    with tenant_scope(tenant.organization.pk):
        Trace.objects.filter(external_id="old").delete()  # expired; the thread is left
        [first_thread] = Thread.objects.filter(external_id="conv").values_list("pk", flat=True)
    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST']} port={settings['PORT']} user={settings['USER']} "
        f"dbname={settings['NAME']}"
    )
    attempts: list[int] = []

    def delete_the_thread(sender, project, trace_ids, **kwargs) -> None:
        # Inside the batch's transaction, after its rows are written: retention's delete
        # commits from another connection (the batch's trace is not visible to it yet).
        attempts.append(1)
        if len(attempts) == 1:
            with psycopg.connect(dsn, autocommit=True) as other:
                other.execute("DELETE FROM traces_thread WHERE id = %s", [first_thread])

    traces_changed.connect(delete_the_thread)
    try:
        response = post(client, tenant, [trace("new", session_id="conv", name="resumed")])
    finally:
        traces_changed.disconnect(delete_the_thread)
    assert response.status_code == 200, response.content
    assert len(attempts) == 2  # the first commit failed and the batch ran again
    with tenant_scope(tenant.organization.pk):
        stored = Trace.objects.select_related("thread").get(external_id="new")
    assert stored.name == "resumed" and stored.thread.external_id == "conv"
    assert stored.thread_id != first_thread
