"""One message model: every convention we accept becomes the canonical messages of
``traces.messages``, at ingestion (OTLP) and on the pages that show them."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from tests.review.helpers import make_config, make_queue
from traces.messages import is_canonical, to_messages
from traces.models import Span, Trace


def text(role: str, content: str, **extra) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": content}], **extra}


WEATHER = [
    text("system", "Be brief."),
    text("user", "Weather in Paris?"),
    {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather",
             "arguments": {"city": "Paris"}}
        ],
    },
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "18C"}]},
    text("assistant", "It is 18C.", finish_reason="stop"),
]  # fmt: skip

CONVENTIONS = {
    "genai parts (already canonical)": WEATHER,
    "openai chat": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "assistant", "content": "It is 18C.", "finish_reason": "stop"},
    ],
    "anthropic request": {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1",
                 "content": [{"type": "text", "text": "18C"}]}]},
            {"role": "assistant", "content": [{"type": "text", "text": "It is 18C."}],
             "finish_reason": "stop"},
        ],
    },
    "openinference (unflattened)": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "contents": [{"message_content": {"type": "text",
                                                           "text": "Weather in Paris?"}}]},
        {"role": "assistant", "tool_calls": [
            {"tool_call": {"id": "call_1", "function": {"name": "get_weather",
                                                        "arguments": '{"city": "Paris"}'}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "assistant", "content": "It is 18C.", "finish_reason": "stop"},
    ],
    "json text": json.dumps(WEATHER),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CONVENTIONS))
def test_every_convention_becomes_the_same_canonical_messages(name):
    messages = to_messages(CONVENTIONS[name])
    assert messages == WEATHER
    assert is_canonical(messages)
    assert to_messages(messages) is messages  # canonical stays as it is


def test_responses_events_plain_text_and_records():
    response = {"choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Hi."}}]}  # fmt: skip
    assert to_messages(response) == [text("assistant", "Hi.", finish_reason="stop")]
    choice_event = {"role": "assistant", "index": 0, "finish_reason": "stop",
                    "message": {"content": "Hi."}}  # fmt: skip
    assert to_messages([choice_event]) == [text("assistant", "Hi.", finish_reason="stop")]
    # No conversation: None, unless a role for plain text is given.
    for value in ("plain", {"q": "What?"}, {"status": "ok", "n": 3}, 7, None):
        assert to_messages(value) is None
    assert to_messages("plain", text_role="user") == [text("user", "plain")]
    assert to_messages({"q": "What?"}, text_role="user") == [text("user", "What?")]
    assert to_messages({"status": "ok", "n": 3}, text_role="assistant") == [
        text("assistant", '{"status":"ok","n":3}')
    ]
    # Several results in one message become one tool message each.
    results = {"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "a", "response": 1},
        {"type": "tool_call_response", "id": "b", "response": 2}], "x": 1}  # fmt: skip
    assert [m["parts"][0]["id"] for m in to_messages([results])] == ["a", "b"]


# --- OTLP ingestion ----------------------------------------------------------------------


def _ingest(tenant, client, build) -> dict[str, Span]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("conventions"))
    provider.shutdown()
    response = client.generic(
        "POST",
        "/v1/traces",
        encode_spans(memory.get_finished_spans()).SerializeToString(),
        "application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {tenant.key('ingest')}",
    )
    assert response.status_code == 200, response.content
    with tenancy.tenant_scope(tenant.organization.pk):
        return {s.name: s for s in Span.objects.filter(project=tenant.project)}


CALL = "llm.input_messages.2.message.tool_calls.0.tool_call"


def _every_convention(tracer) -> None:
    with tracer.start_as_current_span("agent"):
        with tracer.start_as_current_span(
            "genai parts",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.system_instructions": json.dumps(
                    [{"type": "text", "content": "Be brief."}]
                ),
                "gen_ai.input.messages": json.dumps(WEATHER[1:4]),
                "gen_ai.output.messages": json.dumps(WEATHER[4:]),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "span events", attributes={"gen_ai.operation.name": "chat"}
        ) as span:
            span.add_event(
                "gen_ai.system.message",
                {"gen_ai.event.content": json.dumps({"content": "Be brief."})},
            )
            span.add_event(
                "gen_ai.user.message",
                {
                    "gen_ai.event.content": json.dumps({"content": "Weather in Paris?"}),
                    "gen_ai.system": "openai",
                },
            )
            span.add_event(
                "gen_ai.assistant.message",
                {
                    "gen_ai.event.content": json.dumps(
                        {
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {
                                        "name": "get_weather",
                                        "arguments": '{"city": "Paris"}',
                                    },
                                }
                            ]
                        }
                    )
                },
            )
            span.add_event(
                "gen_ai.tool.message",
                {"gen_ai.event.content": json.dumps({"id": "call_1", "content": "18C"})},
            )
            span.add_event(
                "gen_ai.choice",
                {
                    "gen_ai.event.content": json.dumps(
                        {"index": 0, "finish_reason": "stop", "message": {"content": "It is 18C."}}
                    )
                },
            )
        with tracer.start_as_current_span(
            "openinference",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "Be brief.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.contents.0.message_content.type": "text",
                "llm.input_messages.1.message.contents.0.message_content.text": "Weather in Paris?",
                "llm.input_messages.2.message.role": "assistant",
                f"{CALL}.id": "call_1",
                f"{CALL}.function.name": "get_weather",
                f"{CALL}.function.arguments": '{"city": "Paris"}',
                "llm.input_messages.3.message.role": "tool",
                "llm.input_messages.3.message.tool_call_id": "call_1",
                "llm.input_messages.3.message.content": "18C",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "It is 18C.",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "failed openinference",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini"}),
                "input.value": json.dumps({"messages": [{"role": "user", "content": "x"}]}),
                "input.mime_type": "application/json",
            },
        ) as span:
            span.set_status(Status(StatusCode.ERROR, "Connection error."))  # fmt: skip


def test_every_ingested_convention_is_stored_as_the_canonical_messages(tenant, client):
    spans = _ingest(tenant, client, _every_convention)
    for name in ("genai parts", "span events", "openinference"):
        span = spans[name]
        assert span.input == WEATHER[:4], name
        output = WEATHER[4:] if name != "openinference" else [text("assistant", "It is 18C.")]
        assert span.output == output, name
    # Span-event content is no longer dropped; the events stay in the attributes.
    assert [e["name"] for e in spans["span events"].attributes["otel.events"]][:2] == [
        "gen_ai.system.message", "gen_ai.user.message"]  # fmt: skip
    # Canonical GenAI output is stored once, as sent.
    assert spans["genai parts"].attributes["otel.moved"] == {"gen_ai.output.messages": "output"}
    # A failed OpenInference call names its model from the invocation parameters.
    failed = spans["failed openinference"]
    assert (failed.model, failed.status) == ("gpt-4o-mini", "error")


def _page(client: Client, tenant, name: str, **kwargs) -> str:
    url = reverse(
        name,
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug,
                **kwargs},
    )  # fmt: skip
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _assert_conversation(html: str) -> None:
    """The weather conversation as people read it: roles, text, the tool call with its
    name and arguments, the tool result with its call id; never raw parts."""
    assert 'class="msg system"' in html and "Be brief." in html
    assert "Weather in Paris?" in html and "It is 18C." in html
    assert "Tool call: get_weather" in html and "call_1" in html
    assert "&quot;city&quot;: &quot;Paris&quot;" in html
    assert 'class="msg tool"' in html and "Tool result" in html and "18C" in html
    assert "Tool call: tool" not in html
    assert "&quot;type&quot;: &quot;text&quot;" not in html  # no part shown as JSON


def test_trace_and_review_pages_show_the_conversation(tenant, client):
    spans = _ingest(tenant, client, _every_convention)
    trace = spans["agent"].trace
    admin = Client()
    admin.force_login(tenant.admin)
    page = _page(admin, tenant, "traces-detail", trace_external_id=trace.external_id)
    _assert_conversation(page)
    assert page.count('class="conversation"') >= 7  # three spans' inputs and outputs
    # A model filter finds the failed call.
    explorer = _page(admin, tenant, "traces-explorer")
    assert trace.external_id in explorer
    url = reverse("traces-explorer", kwargs={"org_slug": tenant.organization.slug,
                                             "project_slug": tenant.project.slug})  # fmt: skip
    assert trace.external_id in admin.get(f"{url}?model=gpt-4o-mini").content.decode()
    assert trace.external_id not in admin.get(f"{url}?model=gpt-3").content.decode()

    queue = make_queue(tenant, configs=[make_config(tenant, name="Right")], name="Chats")
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner),
            queue=queue,
            trace_id=Trace.objects.get(pk=trace.pk).pk,
        )
    reviewer = Client()
    reviewer.force_login(tenant.reviewer)
    start = reverse(
        "review-queue-start",
        kwargs={"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug,
                "queue_pk": queue.pk},
    )  # fmt: skip
    response = reviewer.get(reviewer.post(start).url)
    assert response.status_code == 200
    _assert_conversation(response.content.decode())
