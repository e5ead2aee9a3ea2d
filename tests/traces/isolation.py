"""Trace store rows for the route-walking isolation test (see tests/isolation.py).

Written through the ingestion service, so the victim's rows are exactly what the API
would store. The read side extends ``populate`` rather than writing its own.
"""

from __future__ import annotations

import secrets

from hitl import tenancy
from hitl.audit import Actor
from tests.factories import Tenant
from tests.isolation import IsolationData
from traces import services
from traces.ingest.validation import parse_events
from traces.models import Feedback, Score, Span, Thread, Trace


def populate(tenant: Tenant) -> IsolationData:
    marker = f"victim-{secrets.token_hex(4)}"
    events = [
        {"type": "trace", "body": {
            "id": f"{marker}-trace", "name": f"{marker} trace name",
            "thread_id": f"{marker}-thread",
            "input": {"question": f"{marker} question"}, "output": f"{marker} answer",
            "metadata": {"customer": f"{marker}-customer"}, "tags": [f"{marker}-tag"]}},
        {"type": "span", "body": {
            "id": f"{marker}-span", "trace_id": f"{marker}-trace", "kind": "llm",
            "name": f"{marker} span name", "model": f"{marker}-model",
            "input": [{"role": "user", "content": f"{marker} prompt"}], "input_tokens": 3}},
        {"type": "score", "body": {
            "id": f"{marker}-score", "trace_id": f"{marker}-trace", "name": f"{marker}-metric",
            "value": 0.5, "rationale": f"{marker} rationale", "source": "llm_judge"}},
        {"type": "feedback", "body": {
            "id": f"{marker}-feedback", "trace_id": f"{marker}-trace", "kind": "comment",
            "comment": f"{marker} feedback comment", "end_user_id": f"{marker}-user"}},
    ]  # fmt: skip
    actor = Actor(source="command")
    with tenancy.tenant_scope(tenant.organization.pk):
        result = services.ingest_batch(
            actor=actor, project=tenant.project, batch=parse_events(events)
        )
        assert not result.rejections, result.rejections
        trace = Trace.objects.get(project=tenant.project, external_id=f"{marker}-trace")
        span = Span.objects.get(trace=trace, external_id=f"{marker}-span")
        thread = Thread.objects.get(project=tenant.project, external_id=f"{marker}-thread")
        score = Score.objects.get(project=tenant.project, external_id=f"{marker}-score")
        feedback = Feedback.objects.get(project=tenant.project, external_id=f"{marker}-feedback")
        saved_view = services.saved_view_create(
            actor=actor,
            project=tenant.project,
            name=f"{marker} saved view",
            filter_params={"tags": [f"{marker}-tag"]},
        )
        # A retention policy, set by a person (its history names them).
        services.trace_retention_set(
            actor=Actor(user=tenant.owner), project=tenant.project, days=400
        )
    return IsolationData(
        kwargs={
            "pk": trace.pk,
            "trace_pk": trace.pk,
            "trace_external_id": trace.external_id,
            "thread_external_id": thread.external_id,
            "thread_pk": thread.pk,
            "span_external_id": span.external_id,
            "span_pk": span.pk,
            "score_pk": score.pk,
            "feedback_pk": feedback.pk,
            "saved_view_pk": saved_view.pk,
            "action_key": "queue",  # the trace page's action review offers
        },
        markers=[
            f"{marker} trace name",
            f"{marker} question",
            f"{marker} span name",
            f"{marker} prompt",
            f"{marker} rationale",
            f"{marker} feedback comment",
            f"{marker} saved view",
        ],
    )
