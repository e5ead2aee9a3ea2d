"""OTLP/HTTP at /v1/traces, proven with the real OpenTelemetry SDK and exporter."""

from __future__ import annotations

import gzip
import json

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from hitl.tenancy import tenant_scope
from traces.models import Span, Thread, Trace

PROTOBUF = "application/x-protobuf"
RESOURCE = Resource.create(
    {"service.name": "support-bot", "service.version": "2.1.0",
     "deployment.environment.name": "staging"}
)  # fmt: skip


def _dumps(value) -> str:
    return json.dumps(value)


def run_agent(tracer, *, fail_tool: bool = False) -> None:
    """A multi-step agent run: agent -> llm -> tool -> retrieval -> llm, in the
    OpenTelemetry GenAI conventions and (retrieval, last llm) OpenInference."""
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.conversation.id": "conv-42",
            "user.id": "end-user-7",
            "tag.tags": ["prod", "refunds"],
            "gen_ai.input.messages": _dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "Can I get a refund?"}]}]
            ),
            "gen_ai.output.messages": _dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": "Yes, within 30 days."}],
                    }
                ]
            ),
        },
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.usage.cache_read.input_tokens": 40,
                "gen_ai.usage.reasoning.output_tokens": 8,
                "gen_ai.system_instructions": _dumps([{"type": "text", "content": "Be brief."}]),
                "gen_ai.input.messages": _dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": "Can I get a refund?"}],
                        }
                    ]
                ),
                "gen_ai.output.messages": _dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "name": "lookup_order",
                                    "arguments": {"order": 7},
                                }
                            ],
                        }
                    ]
                ),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool lookup_order",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.call.arguments": _dumps({"order": 7}),
                "gen_ai.tool.call.result": _dumps({"status": "delivered", "days_ago": 3}),
            },
        ) as tool_span:
            if fail_tool:
                try:
                    raise TimeoutError("orders service timed out")
                except TimeoutError as exc:
                    tool_span.record_exception(exc)
                    tool_span.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span(
            "retrieve policy",
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "input.value": "refund policy",
                "retrieval.documents.0.document.id": "doc-1",
                "retrieval.documents.0.document.content": "Refunds within 30 days.",
                "retrieval.documents.0.document.score": 0.92,
                "retrieval.documents.1.document.id": "doc-2",
                "retrieval.documents.1.document.content": "Shipping is free.",
                "retrieval.documents.1.document.score": 0.41,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "ChatAnthropic",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "claude-sonnet-4",
                "llm.provider": "anthropic",
                "session.id": "conv-42",
                "llm.token_count.prompt": 300,
                "llm.token_count.completion": 25,
                "llm.token_count.prompt_details.cache_read": 100,
                "llm.token_count.completion_details.reasoning": 5,
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Answer from the policy.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "Can I get a refund?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Yes, within 30 days.",
            },
        ):
            pass


def _provider(exporter) -> TracerProvider:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _spans(tenant):
    with tenant_scope(tenant.organization.pk):
        return {s.name: s for s in Span.objects.filter(project=tenant.project)}


def _traces(tenant):
    with tenant_scope(tenant.organization.pk):
        return list(Trace.objects.filter(project=tenant.project).select_related("thread"))


def test_sdk_export_of_an_agent_run_arrives_as_a_correct_tree(tenant, live_server):
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {tenant.key('ingest')}"},
    )
    results = []
    original_export = exporter.export

    def export(spans):
        results.append(original_export(spans))
        return results[-1]

    exporter.export = export
    provider = _provider(exporter)  # one request per span: children arrive before the root
    run_agent(provider.get_tracer("tests"), fail_tool=True)
    provider.shutdown()
    assert results == [SpanExportResult.SUCCESS] * 5

    [trace] = _traces(tenant)
    spans = _spans(tenant)
    root = spans["invoke_agent support"]
    assert not trace.is_placeholder and trace.external_id == root.trace.external_id
    assert len(trace.external_id) == 32 and len(root.external_id) == 16
    # The tree: every child hangs off the agent span.
    assert root.parent_external_id == "" and root.kind == "agent"
    for name in ("chat gpt-4o", "execute_tool lookup_order", "retrieve policy", "ChatAnthropic"):
        assert spans[name].parent_external_id == root.external_id, name
    # The trace: named by the root, its input/output, resource metadata, thread, user, tags.
    assert trace.name == "invoke_agent support"
    assert trace.input[0]["parts"][0]["content"] == "Can I get a refund?"
    assert trace.output[0]["parts"][0]["content"] == "Yes, within 30 days."
    assert trace.metadata["service.name"] == "support-bot"
    assert (trace.release, trace.environment) == ("2.1.0", "staging")
    assert trace.thread.external_id == "conv-42" and trace.user_id == "end-user-7"
    assert trace.tags == ["prod", "refunds"]
    # GenAI LLM span.
    chat = spans["chat gpt-4o"]
    assert (chat.kind, chat.model, chat.provider) == ("llm", "gpt-4o-2024-08-06", "openai")
    assert (chat.input_tokens, chat.output_tokens, chat.total_tokens) == (120, 30, 150)
    assert (chat.cached_tokens, chat.reasoning_tokens) == (40, 8)
    assert chat.input[0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
    assert chat.input[1]["role"] == "user"
    assert chat.output[0]["parts"][0]["name"] == "lookup_order"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o"  # originals kept
    # Tool span, failed.
    tool = spans["execute_tool lookup_order"]
    assert tool.kind == "tool" and tool.input == {"order": 7}
    assert tool.output == {"status": "delivered", "days_ago": 3}
    assert tool.status == "error" and "timed out" in tool.error_message
    assert tool.attributes["otel.events"][0]["name"] == "exception"
    # OpenInference retriever and LLM.
    retrieval = spans["retrieve policy"]
    assert retrieval.kind == "retrieval" and retrieval.input == "refund policy"
    assert retrieval.output == [
        {"id": "doc-1", "content": "Refunds within 30 days.", "score": 0.92},
        {"id": "doc-2", "content": "Shipping is free.", "score": 0.41},
    ]
    anthropic = spans["ChatAnthropic"]
    assert (anthropic.kind, anthropic.model, anthropic.provider) == (
        "llm", "claude-sonnet-4", "anthropic")  # fmt: skip
    assert (anthropic.input_tokens, anthropic.output_tokens) == (300, 25)
    assert (anthropic.cached_tokens, anthropic.reasoning_tokens) == (100, 5)
    assert anthropic.input == [  # canonical messages (traces.messages)
        {"role": "system", "parts": [{"type": "text", "content": "Answer from the policy."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Can I get a refund?"}]},
    ]
    assert anthropic.output == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Yes, within 30 days."}]}
    ]
    assert anthropic.attributes["llm.input_messages.1.message.content"] == "Can I get a refund?"
    # Roll-up over both model calls; any failed span makes the trace an error.
    assert (trace.input_tokens, trace.output_tokens) == (420, 55)
    assert trace.status == "error" and "timed out" in trace.error_message
    assert trace.latency_ms is not None and trace.latency_ms >= 0


def _captured_request(**run_options) -> tuple[ExportTraceServiceRequest, list]:
    memory = InMemorySpanExporter()
    provider = _provider(memory)
    run_agent(provider.get_tracer("tests"), **run_options)
    provider.shutdown()
    spans = memory.get_finished_spans()
    return encode_spans(spans), spans


def _post(client, tenant, body, content_type=PROTOBUF, scope="ingest", **headers):
    return client.generic(
        "POST",
        "/v1/traces",
        body,
        content_type,
        HTTP_AUTHORIZATION=f"Bearer {tenant.key(scope)}",
        **headers,
    )


def test_gzip_protobuf_resend_is_idempotent(tenant, live_server):
    _request, spans = _captured_request()
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"x-api-key": tenant.key("ingest")},  # the other accepted header
        compression=Compression.Gzip,
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    first = {name: s.pk for name, s in _spans(tenant).items()}
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert {name: s.pk for name, s in _spans(tenant).items()} == first
    assert len(_traces(tenant)) == 1 and len(first) == 5
    with tenant_scope(tenant.organization.pk):
        assert Thread.objects.filter(project=tenant.project).count() == 1
    exporter.shutdown()


def _to_otlp_json(request: ExportTraceServiceRequest) -> dict:
    """The OTLP/JSON encoding: protobuf JSON, except ids are hex, not base64."""
    document = json_format.MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = __import__("base64").b64decode(span[key]).hex()
    return document


def test_json_body_with_hex_ids_and_a_json_response(tenant, client):
    request, spans = _captured_request()
    document = _to_otlp_json(request)
    response = _post(client, tenant, json.dumps(document), "application/json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {}  # full success: partial_success left unset
    stored = _spans(tenant)
    root = next(s for s in spans if s.parent is None)
    assert stored[root.name].external_id == format(root.context.span_id, "016x")
    assert stored["chat gpt-4o"].parent_external_id == format(root.context.span_id, "016x")
    assert _traces(tenant)[0].external_id == format(root.context.trace_id, "032x")


def test_partial_success_lists_rejected_spans_in_the_request_content_type(tenant, client):
    request, _ = _captured_request()
    scope_spans = request.resource_spans[0].scope_spans[0]
    scope_spans.spans[0].trace_id = b"\x01" * 8  # wrong length
    scope_spans.spans[1].span_id = b"\x00" * 8  # all zero
    scope_spans.spans[2].start_time_unix_nano = 1  # 1970, but end is 2026: fine by range
    scope_spans.spans[2].end_time_unix_nano = 4_102_444_800 * 10**9  # year 2100
    response = _post(client, tenant, request.SerializeToString())
    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert "traceId must be 16 bytes" in answer.partial_success.error_message
    assert "out of range" in answer.partial_success.error_message
    assert len(_spans(tenant)) == 2

    document = _to_otlp_json(request)
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][3]["spanId"] = "not-hex!"
    response = _post(client, tenant, json.dumps(document), "application/json")
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "4"


def test_bad_requests_get_the_spec_status_codes(tenant, client):
    request, _ = _captured_request()
    good = request.SerializeToString()
    response = _post(client, tenant, b"\xff\xff\xff not protobuf")
    assert response.status_code == 400 and response["Content-Type"] == PROTOBUF
    assert b"not a valid ExportTraceServiceRequest" in response.content
    response = _post(client, tenant, b"{not json", "application/json")
    assert response.status_code == 400 and response.json()["code"] == 3
    assert _post(client, tenant, b"[1, 2]", "application/json").status_code == 400
    response = _post(client, tenant, good, "text/plain")
    assert response.status_code == 415
    response = _post(client, tenant, b"\x1f\x8b garbage", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    response = _post(client, tenant, good, HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 400
    # Keys: none, unknown, without the ingest scope.
    response = client.generic("POST", "/v1/traces", good, PROTOBUF)
    assert response.status_code == 401
    response = client.generic(
        "POST", "/v1/traces", good, PROTOBUF, HTTP_AUTHORIZATION="Bearer hitl_deadbeef_nope0000000"
    )
    assert response.status_code == 401
    assert _post(client, tenant, good, scope="read").status_code == 403
    assert _spans(tenant) == {}
    # And the server still works.
    assert _post(client, tenant, good).status_code == 200


def test_gzip_bomb_answers_413(tenant, client):
    from traces.ingest import limits

    bomb = gzip.compress(b"\x00" * (limits.MAX_BODY_BYTES + 1024))
    response = _post(client, tenant, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_throttled_export_answers_429_with_retry_after(tenant, client):
    from hitl.api.throttling import CallerRateThrottle

    request, _ = _captured_request()
    saved = CallerRateThrottle.THROTTLE_RATES
    CallerRateThrottle.THROTTLE_RATES = {**saved, "ingest": "1/min"}
    try:
        assert _post(client, tenant, request.SerializeToString()).status_code == 200
        response = _post(client, tenant, request.SerializeToString())
    finally:
        CallerRateThrottle.THROTTLE_RATES = saved
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1


def test_older_genai_conventions_map_too(tenant, client):
    memory = InMemorySpanExporter()
    provider = _provider(memory)
    tracer = provider.get_tracer("legacy")
    with tracer.start_as_current_span(
        "openai.chat",
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-3.5-turbo",
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.completion_tokens": 4,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "hello",
            "gen_ai.completion.0.finish_reason": "stop",
        },
    ):
        with tracer.start_as_current_span("legacy events", attributes={"gen_ai.system": "x"}) as s:
            s.add_event("gen_ai.content.prompt", {"gen_ai.prompt": _dumps([{"role": "user"}])})
            s.add_event("gen_ai.content.completion", {"gen_ai.completion": "plain text"})
        with tracer.start_as_current_span(
            "oi tool", attributes={"tool.name": "search", "tool.parameters": '{"q": "x"}'}
        ):
            pass
        with tracer.start_as_current_span("message events") as s:
            s.add_event("gen_ai.system.message", {"content": "be kind", "gen_ai.system": "x"})
            s.add_event("gen_ai.user.message", {"content": "hi"})
            s.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                          "message": _dumps({"content": "hello"})})  # fmt: skip
    provider.shutdown()
    response = _post(client, tenant, encode_spans(memory.get_finished_spans()).SerializeToString())
    assert response.status_code == 200
    spans = _spans(tenant)
    chat = spans["openai.chat"]
    assert (chat.kind, chat.provider, chat.model) == ("llm", "openai", "gpt-3.5-turbo")
    assert (chat.input_tokens, chat.output_tokens) == (11, 4)
    assert chat.input == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert chat.output == [
        {"role": "assistant", "parts": [{"type": "text", "content": "hello"}],
         "finish_reason": "stop"}
    ]  # fmt: skip
    legacy = spans["legacy events"]
    assert legacy.input == [{"role": "user"}] and legacy.output == "plain text"
    tool = spans["oi tool"]
    assert tool.kind == "tool" and tool.input == {"q": "x"}
    events = spans["message events"]
    assert events.input == [
        {"role": "system", "parts": [{"type": "text", "content": "be kind"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
    ]
    assert events.output == [
        {"role": "assistant", "parts": [{"type": "text", "content": "hello"}],
         "finish_reason": "stop"}
    ]  # fmt: skip


def test_large_payloads_are_kept_and_oversized_spans_rejected_alone(tenant, client):
    from traces.ingest import limits

    memory = InMemorySpanExporter()
    provider = _provider(memory)
    tracer = provider.get_tracer("big")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span(
            "big but fine", attributes={"input.value": "a" * 300_000, "output.value": "b" * 300_000}
        ):
            pass
        with tracer.start_as_current_span(
            "too big", attributes={"input.value": "c" * (limits.MAX_PAYLOAD_BYTES + 10)}
        ):
            pass
    provider.shutdown()
    response = _post(client, tenant, encode_spans(memory.get_finished_spans()).SerializeToString())
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "over the limit" in answer.partial_success.error_message
    spans = _spans(tenant)
    assert set(spans) == {"root", "big but fine"}
    assert len(spans["big but fine"].input) == 300_000
    # Stored once, in ``output``; the span detail gives the attribute back.
    assert "output.value" not in spans["big but fine"].attributes
    big = spans["big but fine"]
    detail = client.get(
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/traces/"
        f"{big.trace.external_id}/spans/{big.external_id}/",
        HTTP_AUTHORIZATION=f"Bearer {tenant.key('read')}",
    ).json()
    assert detail["attributes"]["output.value"] == "b" * 300_000


def test_message_content_is_stored_once_and_read_back_exactly_as_sent(tenant, client):
    """GenAI content attributes become the span's input/output and are not stored a
    second time; the span detail returns every attribute exactly as it was sent (JSON
    text with its own spacing and key order, plain text, NUL-free)."""
    from django.db import connection

    sent = {
        "chat": {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            # json.dumps spacing and a key order jsonb would not keep.
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": 'Héllo "there"'}]}]
            ),
            "gen_ai.output.messages": '[ {"role":"assistant","z":1, "a":2,"a":3} ]',
            "gen_ai.usage.input_tokens": 12,
        },
        "tool": {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.arguments": '{"b": 1, "a": [1.50, 2e3]}',
            "gen_ai.tool.call.result": "plain text, not JSON",
        },
        "with instructions": {
            # Input built from two attributes: nothing moves, both stay as sent.
            "gen_ai.system_instructions": '[{"type": "text", "content": "Be brief."}]',
            "gen_ai.input.messages": '[{"role": "user", "parts": []}]',
            "output.value": '"a JSON string literal"',
        },
    }
    memory = InMemorySpanExporter()
    provider = _provider(memory)
    tracer = provider.get_tracer("once")
    with tracer.start_as_current_span("root"):
        for name, attributes in sent.items():
            with tracer.start_as_current_span(name, attributes=attributes):
                pass
    provider.shutdown()
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    assert _post(client, tenant, body).status_code == 200

    spans = _spans(tenant)
    chat = spans["chat"]
    assert chat.input[0]["parts"][0]["content"] == 'Héllo "there"'
    stored = {name: span.attributes for name, span in spans.items()}
    assert "gen_ai.input.messages" not in stored["chat"]
    assert "gen_ai.output.messages" not in stored["chat"]
    assert stored["chat"]["otel.moved"] == {
        "gen_ai.input.messages": "input", "gen_ai.output.messages": "output"}  # fmt: skip
    assert stored["tool"]["otel.moved"] == {
        "gen_ai.tool.call.arguments": "input", "gen_ai.tool.call.result": "output"}  # fmt: skip
    assert stored["with instructions"]["gen_ai.input.messages"] == (
        sent["with instructions"]["gen_ai.input.messages"])  # fmt: skip
    # The content is in the row once: the payload column holds the sent text itself.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT input::text, octet_length(attributes::text) FROM traces_span WHERE id = %s",
            [chat.pk],
        )
        input_text, attributes_bytes = cursor.fetchone()
    assert input_text == sent["chat"]["gen_ai.input.messages"]
    assert attributes_bytes < len(sent["chat"]["gen_ai.input.messages"]) + 300

    base = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/traces/"
    for name, attributes in sent.items():
        span = spans[name]
        detail = client.get(
            f"{base}{span.trace.external_id}/spans/{span.external_id}/",
            HTTP_AUTHORIZATION=f"Bearer {tenant.key('read')}",
        ).json()
        read = {k: v for k, v in detail["attributes"].items() if not k.startswith("otel.")}
        assert read == attributes, name
        for key, value in attributes.items():
            assert type(read[key]) is type(value) and read[key] == value, (name, key)
