"""The OpenAI fine-tuning export builds every conversation through the one message model
(``traces.messages``), for every source kind, and every line it writes is valid; an item
that cannot become a line is skipped with its reason on the export."""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.test import Client
from django.urls import reverse
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from datasets import services
from datasets.models import DatasetExport, DatasetVersion
from hitl import tenancy
from hitl.audit import Actor
from tests.datasets.helpers import import_rows, make_dataset
from tests.review.helpers import make_span, make_trace
from traces.models import Span, Thread

ROLES = {"system", "user", "assistant", "tool"}
KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "weight"},
    "tool": {"role", "content", "tool_call_id"},
}


def fine_tuning_problems(line: bytes) -> list[str]:
    """The chat fine-tuning format's rules (OpenAI's file validation): a JSON object with
    a list of messages; known roles and keys; string content (or text parts); assistant
    tool calls with an id, type function, a function name and JSON arguments; each tool
    message answers an earlier unanswered call, right after its assistant message; at
    least one assistant message, and the example ends with the assistant."""
    problems = []
    example = json.loads(line)
    if not isinstance(example, dict) or set(example) - {"messages", "tools",
                                                        "parallel_tool_calls"}:  # fmt: skip
        return ["not an object of messages"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["no messages"]
    pending: list[str] = []
    for n, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            problems.append(f"{n}: role {role!r}")
            continue
        if set(message) - KEYS[role]:
            problems.append(f"{n}: keys {sorted(set(message) - KEYS[role])}")
        content = message.get("content")
        text_parts = isinstance(content, list) and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in content
        )
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                problems.append(f"{n}: tool result for no pending call")
            else:
                pending.remove(message["tool_call_id"])
            if not isinstance(content, str):
                problems.append(f"{n}: tool content is not text")
            continue
        if pending:
            problems.append(f"{n}: calls {pending} have no result")
            pending = []
        calls = message.get("tool_calls")
        if calls is not None:
            if role != "assistant" or not isinstance(calls, list) or not calls:
                problems.append(f"{n}: bad tool_calls")
                continue
            for call in calls:
                function = call.get("function") or {}
                if not (
                    isinstance(call.get("id"), str)
                    and call["id"]
                    and call.get("type") == "function"
                    and isinstance(function.get("name"), str)
                    and function["name"]
                    and isinstance(function.get("arguments"), str)
                ):
                    problems.append(f"{n}: malformed tool call {call}")
                    continue
                try:
                    json.loads(function["arguments"])
                except ValueError:
                    problems.append(f"{n}: arguments are not JSON")
                pending.append(call["id"])
        if content is None and calls:
            continue
        if not (isinstance(content, str) and content.strip()) and not text_parts:
            problems.append(f"{n}: {role} content is neither text nor text parts: {content!r}")
    if not any(m.get("role") == "assistant" for m in messages):
        problems.append("no assistant message")
    if messages[-1].get("role") != "assistant":
        problems.append("does not end with the assistant")
    return problems


def _ingest_genai_span(tenant, client) -> Span:
    """A chat span as the OpenTelemetry GenAI instrumentation sends it (parts, a tool
    call and its result, system instructions), through OTLP."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("genai").start_as_current_span(
        "chat gpt-4o",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
            "gen_ai.input.messages": json.dumps(
                [
                    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "call_1",
                                "name": "get_weather",
                                "arguments": {"city": "Paris"},
                            }
                        ],
                    },
                    {
                        "role": "tool",
                        "parts": [
                            {
                                "type": "tool_call_response",
                                "id": "call_1",
                                "response": {"celsius": 18},
                            }
                        ],
                    },
                ]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": "It is 18C."}],
                        "finish_reason": "stop",
                    }
                ]
            ),
        },
    ):
        pass
    provider.shutdown()
    response = client.generic(
        "POST",
        "/v1/traces",
        encode_spans(memory.get_finished_spans()).SerializeToString(),
        "application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {tenant.key('ingest')}",
    )  # fmt: skip
    assert response.status_code == 200
    with tenancy.tenant_scope(tenant.organization.pk):
        return Span.objects.select_related("trace").get(name="chat gpt-4o")


def _promote(tenant, dataset, **source: Any) -> None:
    """Promotes ``source`` with its output accepted as the expected answer."""
    with tenancy.tenant_scope(tenant.organization.pk):
        services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, accept_output=True, **source
        )


def _every_source(tenant, client):
    dataset = make_dataset(tenant, name="fine-tune")
    # (a) A thread: turns whose input and output are objects.
    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id="conv-1")
    make_trace(tenant, thread=thread, input={"q": "Dose for a child?"},
               output={"answer": "10 mg/kg."})  # fmt: skip
    make_trace(tenant, thread=thread, input={"q": "And for 20 kg?"}, output={"answer": "200 mg."})
    _promote(tenant, dataset, thread_id="conv-1")
    # (b) A span whose output is a message list.
    trace = make_trace(tenant, external_id="t-list")
    make_span(trace, external_id="s-list", kind="llm",
              input=[{"role": "user", "content": "dose?"}],
              output=[{"role": "assistant", "content": "2 g"}])  # fmt: skip
    _promote(tenant, dataset, trace_id="t-list", span_id="s-list")
    # (c) A GenAI span with parts, a tool call and its result.
    genai = _ingest_genai_span(tenant, client)
    _promote(tenant, dataset, trace_id=genai.trace.external_id, span_id=genai.external_id)
    import_rows(
        tenant,
        dataset,
        [
            # (d) Plain text.
            {"id": "plain", "input": "Capital of France?", "expected_output": "Paris."},
            # (e) An expected tool call.
            {"id": "tool-call", "input": [{"role": "user", "content": "Weather?"}],
             "expected_tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            # Items that cannot become a line, each for its own reason.
            {"id": "no-answer", "input": "Hello?"},
            {"id": "user-answer", "input": "Hi", "expected_output": [
                {"role": "user", "content": "not the assistant"}]},
            {"id": "orphan-result", "input": [
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "nope", "content": "42"}],
             "expected_output": "y"},
            {"id": "image-only", "input": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}],
             "expected_output": "a cat"},
        ],
    )  # fmt: skip
    return dataset


def test_every_source_kind_becomes_a_valid_line_or_a_reason(tenant, client, tmp_path):
    dataset = _every_source(tenant, client)
    with tenancy.tenant_scope(tenant.organization.pk):
        version = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
        path = tmp_path / "openai.jsonl"
        with open(path, "wb") as out:
            counts = services.export_version(version, "openai", out)
    lines = path.read_bytes().splitlines()
    assert counts["items"] == len(lines) == 5 and counts["skipped"] == 4
    for line in lines:
        assert fine_tuning_problems(line) == [], line
    examples = {
        json.dumps(m["messages"][0]): m["messages"] for m in map(orjson.loads, lines)
    }  # fmt: skip
    by_first = {json.loads(k).get("content"): v for k, v in examples.items()}
    # (a) thread turns as text, the last output as the answer.
    assert by_first["Dose for a child?"] == [
        {"role": "user", "content": "Dose for a child?"},
        {"role": "assistant", "content": "10 mg/kg."},
        {"role": "user", "content": "And for 20 kg?"},
        {"role": "assistant", "content": "200 mg."},
    ]
    # (b) the output message list is the assistant's text, not a JSON dump of it.
    assert by_first["dose?"][-1] == {"role": "assistant", "content": "2 g"}
    # (c) GenAI parts: system instructions, the call with JSON arguments, its result.
    assert by_first["Be brief."] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius":18}'},
        {"role": "assistant", "content": "It is 18C."},
    ]  # fmt: skip
    # (d) plain text, (e) an expected tool call as the answer.
    assert by_first["Capital of France?"][-1] == {"role": "assistant", "content": "Paris."}
    assert by_first["Weather?"][-1]["tool_calls"][0]["function"] == {
        "name": "get_weather", "arguments": '{"city":"Paris"}'}  # fmt: skip
    reasons = {r["item"]: r["reason"] for r in counts["skip_reasons"]}
    assert set(reasons) == {"no-answer", "user-answer", "orphan-result", "image-only"}
    assert "no expected output" in reasons["no-answer"]
    assert "not the assistant's" in reasons["user-answer"]
    assert "no earlier tool call" in reasons["orphan-result"]
    assert "image_url" in reasons["image-only"]


def test_the_export_report_says_why_items_were_skipped(
    tenant, client, client_for, settings, tmp_path
):
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    dataset = _every_source(tenant, client)
    with tenancy.tenant_scope(tenant.organization.pk):
        export = services.dataset_export_start(
            actor=Actor(user=tenant.owner), dataset=dataset, version=None, file_format="openai"
        )
        services.dataset_export_run(export_id=export.pk)
        export = DatasetExport.objects.get(pk=export.pk)
    assert (export.state, export.item_count, export.skipped) == ("done", 5, 4)
    assert {r["item"] for r in export.skip_reasons} == {
        "no-answer", "user-answer", "orphan-result", "image-only"}  # fmt: skip
    base = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{dataset.pk}/exports/{export.pk}/"
    )
    status = client_for(tenant.owner).get(base)
    assert status.status_code == 200, status.content
    assert status.json()["skip_reasons"] == export.skip_reasons
    owner = Client()
    owner.force_login(tenant.owner)
    kwargs = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    page = owner.get(reverse("datasets-exports", kwargs={**kwargs, "dataset_pk": dataset.pk}))
    body = page.content.decode()
    assert "(4 skipped)" in body and "Why skipped" in body
    assert "it has no expected output" in body
