"""Small builders for ingestion tests: URLs and event bodies."""

from __future__ import annotations

from typing import Any


def ingest_url(tenant, project=None) -> str:
    project = project or tenant.project
    return f"/api/orgs/{tenant.organization.slug}/projects/{project.slug}/ingest/"


def event(type_: str, body: dict[str, Any], id_: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type_, "body": body}
    if id_ is not None:
        data["id"] = id_
    return data


def trace(id_: str, **fields: Any) -> dict[str, Any]:
    return event("trace", {"id": id_, **fields})


def span(trace_id: str, id_: str, **fields: Any) -> dict[str, Any]:
    return event("span", {"id": id_, "trace_id": trace_id, **fields})


def post(client, tenant, events: list[dict[str, Any]], project=None):
    return client.post(ingest_url(tenant, project), {"events": events}, format="json")
