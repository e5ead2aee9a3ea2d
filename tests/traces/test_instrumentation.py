"""Spans from the real instrumentation packages, end to end: the ``openai`` client,
instrumented by the official OpenTelemetry GenAI instrumentation
(``opentelemetry-instrumentation-openai-v2``) or by OpenInference
(``openinference-instrumentation-openai``), calls a local OpenAI-compatible server (a
tool call, its result, an answer, then a failed call); the SDK exports OTLP/HTTP to our
live server. The stored spans hold the canonical messages (``traces.messages``), the
failed call its model, and the trace and review pages show the conversation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from django.test import Client
from django.urls import reverse
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from tests.review.helpers import make_config, make_queue
from traces.models import Span

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


class FakeOpenAI(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: asks for ``get_weather`` when the last message is
    the user's and tools are offered, answers once the tool result is in, and refuses
    the model ``broken`` (400, OpenAI's error body)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        if body["model"] == "broken":
            return self._send(400, {"error": {"message": "The model `broken` does not exist",
                                              "type": "invalid_request_error",
                                              "code": "model_not_found"}})  # fmt: skip
        last = body["messages"][-1]
        if last["role"] == "user" and body.get("tools"):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": '{"city": "Paris"}'}}],
            }  # fmt: skip
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": "It is 18C in Paris."}
            finish = "stop"
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_767_000_000,
            "model": f"{body['model']}-2026-01-01",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
        })  # fmt: skip

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def model_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _run_app(provider: TracerProvider, base_url: str) -> None:
    """An agent turn: the model asks for a tool, gets its result, answers; then a call
    to a model that does not exist fails."""
    client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
    tracer = provider.get_tracer("weather-app")
    with tracer.start_as_current_span("weather agent", attributes={"session.id": "chat-9"}):
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
        ]
        first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C"})
        client.chat.completions.create(model="gpt-4o", messages=messages, tools=TOOLS)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="broken", messages=[{"role": "user", "content": "hi"}]
            )


def _export(tenant, live_server, model_server, instrumentor) -> list[Span]:
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"{live_server.url}/v1/traces",
                headers={"Authorization": f"Bearer {tenant.key('ingest')}"},
            )
        )
    )
    instrumentor.instrument(tracer_provider=provider)
    try:
        _run_app(provider, model_server)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(
            Span.objects.filter(project=tenant.project)
            .select_related("trace")
            .order_by("start_time", "id")
        )


def text(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


CALL = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
RESULT = {"type": "tool_call_response", "id": "call_1", "response": "18C"}


def _strip(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without ``finish_reason`` (sent by one library, not the other)."""
    return [{k: v for k, v in m.items() if k != "finish_reason"} for m in messages]


def _assert_stored_and_shown(tenant, spans: list[Span]) -> None:
    agent, first, second, failed = spans
    assert agent.name == "weather agent" and {s.parent_external_id for s in spans[1:]} == {
        agent.external_id}  # fmt: skip
    assert (first.kind, first.model, first.input_tokens) == ("llm", "gpt-4o-2026-01-01", 20)
    assert _strip(first.input) == [text("system", "Be brief."), text("user", "Weather in Paris?")]
    assert _strip(first.output) == [{"role": "assistant", "parts": [CALL]}]
    assert _strip(second.input) == [
        text("system", "Be brief."), text("user", "Weather in Paris?"),
        {"role": "assistant", "parts": [CALL]}, {"role": "tool", "parts": [RESULT]},
    ]  # fmt: skip
    assert _strip(second.output) == [text("assistant", "It is 18C in Paris.")]
    # The failed call: an error, with its model, so a model filter finds it.
    assert failed.status == "error" and failed.model == "broken"
    assert _strip(failed.input) == [text("user", "hi")]

    admin = Client()
    admin.force_login(tenant.admin)
    kwargs = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    trace_page = admin.get(
        reverse("traces-detail", kwargs={**kwargs, "trace_external_id": agent.trace.external_id})
    ).content.decode()
    explorer = reverse("traces-explorer", kwargs=kwargs)
    assert agent.trace.external_id in admin.get(f"{explorer}?model=broken").content.decode()

    queue = make_queue(tenant, configs=[make_config(tenant, name="Right")], name="Weather")
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=agent.trace_id
        )
    reviewer = Client()
    reviewer.force_login(tenant.reviewer)
    start = reverse("review-queue-start", kwargs={**kwargs, "queue_pk": queue.pk})
    review_page = reviewer.get(reviewer.post(start).url).content.decode()
    for page in (trace_page, review_page):
        assert 'class="msg system"' in page and "Be brief." in page
        assert "Weather in Paris?" in page and "It is 18C in Paris." in page
        assert "Tool call: get_weather · call_1" in page
        assert "&quot;city&quot;: &quot;Paris&quot;" in page
        assert 'class="msg tool"' in page and "Tool result" in page
        assert "Tool call: tool" not in page and "&quot;parts&quot;" not in page


def test_official_genai_instrumentation(tenant, live_server, model_server, monkeypatch):
    from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    # Message content reaches spans only with the latest conventions, in span mode.
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setattr(_OpenTelemetrySemanticConventionStability, "_initialized", False)
    spans = _export(tenant, live_server, model_server, OpenAIInstrumentor())
    # Its messages are canonical as sent: stored once (moved out of the attributes).
    assert spans[1].attributes["otel.moved"] == {
        "gen_ai.input.messages": "input", "gen_ai.output.messages": "output"}  # fmt: skip
    _assert_stored_and_shown(tenant, spans)


def test_openinference_instrumentation(tenant, live_server, model_server):
    from openinference.instrumentation.openai import OpenAIInstrumentor

    spans = _export(tenant, live_server, model_server, OpenAIInstrumentor())
    failed = spans[-1]
    # OpenInference names the model of a failed call only in its invocation parameters.
    assert "llm.model_name" not in failed.attributes
    assert "llm.invocation_parameters" in failed.attributes
    _assert_stored_and_shown(tenant, spans)
