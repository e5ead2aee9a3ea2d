"""Health and readiness, for monitoring and for a load balancer.

- ``/healthz``: is everything the site depends on reachable (database and broker)?
  503 when either is down; for monitoring and alerts. With read replicas configured
  it also reports each one (``replicas``: ``ok``, ``lagging: ...``, ``error: ...``); a
  replica down or lagging is skipped by reads (``hitl.replica``), so it makes the status
  ``degraded`` with 200, not a 503.
- ``/readyz``: can this web process serve requests? Only the database decides: with
  Redis down, throttles fail open, sessions live in PostgreSQL and work waits in the
  outbox, so the process serves and a load balancer must keep sending it traffic.
"""

from __future__ import annotations

import json

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from hitl import replica
from hitl.celery import app as celery_app

# A health check answers in about a second, whatever is down.
BROKER_TIMEOUT = 1.0


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure means unhealthy; the reason is reported
        return f"error: {type(exc).__name__}"


def _broker() -> str:
    try:
        with celery_app.connection_for_write(
            connect_timeout=BROKER_TIMEOUT,
            transport_options={
                "max_retries": 0,
                "socket_connect_timeout": BROKER_TIMEOUT,
                "socket_timeout": BROKER_TIMEOUT,
            },
        ) as conn:
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
            conn.default_channel.client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def _answer(checks: dict[str, str], *, ok: str, failed: str) -> JsonResponse:
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": ok if healthy else failed, **checks}, status=200 if healthy else 503
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    answer = _answer({"database": _database(), "broker": _broker()}, ok="ok", failed="unhealthy")
    replicas = replica.replica_report()
    if not replicas:
        return answer
    body = json.loads(answer.content)
    body["replicas"] = replicas
    if body["status"] == "ok" and any(value != "ok" for value in replicas.values()):
        body["status"] = "degraded"
    return JsonResponse(body, status=answer.status_code)


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    return _answer({"database": _database()}, ok="ready", failed="unavailable")
