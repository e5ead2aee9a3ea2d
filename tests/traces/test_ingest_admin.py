"""The trace store in the admin: scoped, read-only for auditors, history of scores."""

from __future__ import annotations

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from tests.factories import make_user
from traces import services
from traces.ingest.validation import parse_events


def _ingest(tenant, marker):
    events = [
        {"type": "span", "body": {"id": f"{marker}-span", "trace_id": f"{marker}-trace",
                                  "name": f"{marker}-span-name", "input": {"big": "x" * 1000}}},
        {"type": "score", "body": {"id": f"{marker}-score", "trace_id": f"{marker}-trace",
                                   "name": f"{marker}-metric", "value": 1, "source": "code"}},
        {"type": "feedback", "body": {"trace_id": f"{marker}-trace", "kind": "thumbs",
                                      "value": "up", "end_user_id": f"{marker}-user"}},
    ]  # fmt: skip
    with tenant_scope(tenant.organization.pk):
        services.ingest_batch(
            actor=Actor(source="command"), project=tenant.project, batch=parse_events(events)
        )


def test_auditor_reads_only_own_organization_and_score_history(tenant, other_tenant, client):
    from tests.factories import add_member

    _ingest(tenant, "mine")
    _ingest(other_tenant, "theirs")
    auditor = make_user(is_staff=True)
    add_member(tenant.organization, auditor, "auditor")
    client.force_login(auditor)
    for model in ("trace", "span", "thread", "score", "feedback"):
        response = client.get(f"/admin/traces/{model}/")
        assert response.status_code == 200, model
        assert b"theirs" not in response.content, model
    page = client.get("/admin/traces/span/").content
    assert b"mine-span" in page and b"x" * 1000 not in page
    from traces.models import Score

    with tenant_scope(tenant.organization.pk):
        mine = Score.objects.get(external_id="mine-score")
    with tenant_scope(other_tenant.organization.pk):
        theirs = Score.objects.get(external_id="theirs-score")
    history = client.get("/admin/changelog/?model=traces.score").content.decode()
    assert f"score #{mine.pk}:" in history and f"score #{theirs.pk}:" not in history
    assert client.post("/admin/traces/trace/add/", {}).status_code == 403
