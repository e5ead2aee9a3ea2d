"""One message model: every conversation we accept, in one canonical shape.

The shape is the OpenTelemetry GenAI conventions' message list (``gen_ai.input.messages``
/ ``gen_ai.output.messages``), so what the official instrumentation sends is already
canonical and is stored as it came::

    [
      {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
      {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
      {"role": "assistant", "parts": [
          {"type": "tool_call", "id": "call_1", "name": "get_weather",
           "arguments": {"city": "Paris"}}]},
      {"role": "tool", "parts": [
          {"type": "tool_call_response", "id": "call_1", "response": "18°C"}]},
      {"role": "assistant", "parts": [{"type": "text", "content": "It is 18°C."}],
       "finish_reason": "stop"},
    ]

- ``role`` is ``system``, ``user``, ``assistant`` or ``tool`` (``developer`` is
  ``system``, ``human``/``ai`` are ``user``/``assistant``, ``function`` is ``tool``).
- ``parts`` (absent only when a message carries nothing) holds, in order:
  ``{"type": "text", "content": str}``; ``{"type": "tool_call", "id", "name",
  "arguments"}`` (arguments decoded from JSON text when they are JSON);
  ``{"type": "tool_call_response", "id", "response"}`` (the result of the call ``id``);
  ``{"type": "reasoning", "content": str}``; any other typed part (images, files) kept
  as sent.
- ``name`` and ``finish_reason`` are kept when given.

``to_messages`` turns into it: GenAI messages with parts (and ``system_instructions``),
GenAI span events (``gen_ai.user.message`` ... ``gen_ai.choice``, built by the OTLP
mapping), OpenInference messages (``message.contents``, ``message.tool_calls.N.tool_call``),
OpenAI chat (``content`` string or parts, ``tool_calls``, ``tool_call_id``, request
bodies with ``messages``, responses with ``choices``), Anthropic (``system``, ``tool_use``
and ``tool_result`` blocks), and, when asked, plain text and small records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

ROLES = ("system", "user", "assistant", "tool")
ROLE_ALIASES = {
    "developer": "system", "human": "user", "ai": "assistant", "model": "assistant",
    "function": "tool", "ipython": "tool",
}  # fmt: skip
KEPT_KEYS = ("name", "finish_reason")
TEXT_TYPES = ("text", "input_text", "output_text")
RECORD_TEXT_KEYS = ("content", "text", "question", "query", "input", "prompt", "message",
                    "answer", "output", "response")  # fmt: skip

Message = dict[str, Any]


def json_or_text(value: Any) -> Any:
    """A string holding a JSON object or list, decoded; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def role_of(value: Any) -> str | None:
    role = str(value or "").strip().lower()
    role = ROLE_ALIASES.get(role, role)
    return role if role in ROLES else None


def is_canonical(value: Any) -> bool:
    """Whether ``value`` is already a canonical message list (stored as it came)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(_canonical_message(message) for message in value)
    )


def _canonical_message(message: Any) -> bool:
    if not isinstance(message, Mapping) or message.get("role") not in ROLES:
        return False
    if set(message) - {"role", "parts", *KEPT_KEYS}:
        return False
    parts = message.get("parts")
    if parts is None:
        return "parts" not in message
    return isinstance(parts, list) and all(_canonical_part(part) for part in parts)


def _canonical_part(part: Any) -> bool:
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        return False
    kind = part["type"]
    if kind in ("text", "reasoning"):
        return isinstance(part.get("content"), str)
    if kind == "tool_call":
        return isinstance(part.get("name"), str)
    if kind == "tool_call_response":
        return "id" in part
    return kind not in TEXT_TYPES


def to_messages(value: Any, *, text_role: str | None = None) -> list[Message] | None:
    """``value`` as canonical messages, or None when it is no conversation.

    With ``text_role``, a value that is no conversation (plain text, a small record such
    as ``{"question": ...}``, any JSON) becomes one message of that role with its text.
    """
    value = json_or_text(value)
    try:
        found = _conversation(value)
    except RecursionError:  # conversations nested in message contents past Python's stack
        found = None
    if found is not None:
        return found
    if text_role is None or value is None or value == "":
        return None
    text = text_of(value)
    return [{"role": text_role, "parts": [text_part(text)]}] if text else None


def text_of(value: Any) -> str:
    """Text for a value that is no conversation: a string as it is, a record's one text
    field (``{"q": "..."}``, ``{"question": "..."}``), anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        texts = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and len(texts) == 1:
            return texts[0]
        for key in RECORD_TEXT_KEYS:
            if isinstance(value.get(key), str) and len(value) <= 2:
                return value[key]
    if value is None:
        return ""
    try:
        return orjson.dumps(value, default=str).decode()
    except (orjson.JSONEncodeError, TypeError):  # nested past orjson's depth limit
        return "(a value nested too deep to show)"


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def _conversation(value: Any) -> list[Message] | None:
    if is_canonical(value):
        return value
    if isinstance(value, Mapping):
        return _conversation_object(value)
    if isinstance(value, list) and value and all(_is_message(item) for item in value):
        messages: list[Message] = []
        for item in value:
            messages.extend(_message(item))
        return messages
    return None


def _conversation_object(value: Mapping) -> list[Message] | None:
    if isinstance(value.get("messages"), list):  # a chat request (OpenAI, Anthropic)
        inner = _conversation(value["messages"])
        if inner is None:
            return None
        system = value.get("system")
        if isinstance(system, str | list) and system:
            parts = _parts(system)
            return [{"role": "system", "parts": parts}, *inner] if parts else inner
        return inner
    if isinstance(value.get("choices"), list):  # a chat response
        messages = []
        for choice in value["choices"]:
            if not isinstance(choice, Mapping) or not _is_message(
                {"role": "assistant", **(choice.get("message") or {})}
            ):
                return None
            message = {"role": "assistant", **choice["message"]}
            if choice.get("finish_reason") and "finish_reason" not in message:
                message["finish_reason"] = choice["finish_reason"]
            messages.extend(_message(message))
        return messages or None
    if _is_message(value):
        return _message(value)
    return None


def _is_message(value: Any) -> bool:
    if not isinstance(value, Mapping) or role_of(value.get("role")) is None:
        return False
    return any(
        key in value
        for key in ("content", "parts", "contents", "tool_calls", "function_call", "message",
                    "tool_call_id", "text")
    ) or set(value) <= {"role", *KEPT_KEYS}  # fmt: skip


def _message(source: Mapping) -> list[Message]:
    """One sent message as canonical messages (an Anthropic user message carrying tool
    results becomes one tool message per result)."""
    role = role_of(source.get("role")) or "user"
    inner = source.get("message")
    if isinstance(inner, str):
        inner = json_or_text(inner)
    if isinstance(inner, Mapping):  # gen_ai.choice events: {"message": {...}, "index": 0}
        merged = {k: v for k, v in source.items() if k not in ("message", "index")}
        return _message({**merged, **inner, "role": inner.get("role") or role})
    call_id = source.get("tool_call_id") or (source.get("id") if role == "tool" else None)
    parts: list[dict[str, Any]] = []
    for key in ("parts", "contents", "content", "text"):
        if source.get(key) not in (None, "", []):
            parts = _parts(source[key], role=role, call_id=call_id)
            break
    for call in _list(source.get("tool_calls")):
        part = _tool_call(call)
        if part is not None:
            parts.append(part)
    if isinstance(source.get("function_call"), Mapping):
        part = _tool_call(source["function_call"])
        if part is not None:
            parts.append(part)
    if role == "tool" and not any(p["type"] == "tool_call_response" for p in parts):
        call_id = call_id or source.get("name") or ""
        response = _joined_text(parts) if parts else source.get("content", "")
        parts = [{"type": "tool_call_response", "id": str(call_id), "response": response}]
    kept = {key: source[key] for key in KEPT_KEYS if isinstance(source.get(key), str)}
    results = [p for p in parts if p["type"] == "tool_call_response"]
    if role == "user" and results:  # Anthropic: tool results ride in a user message
        rest = [p for p in parts if p["type"] != "tool_call_response"]
        messages = [{"role": "tool", "parts": [part]} for part in results]
        if rest:
            messages.append({"role": role, "parts": rest, **kept})
        return messages
    if role == "tool" and len(results) > 1:
        return [{"role": "tool", "parts": [part]} for part in results]
    message: Message = {"role": role}
    if parts:
        message["parts"] = parts
    message.update(kept)
    return [message]


def _list(value: Any) -> list[Any]:
    value = json_or_text(value)
    return value if isinstance(value, list) else []


def _joined_text(parts: list[dict[str, Any]]) -> str:
    return "\n".join(p["content"] for p in parts if p["type"] == "text")


def _parts(content: Any, *, role: str = "user", call_id: Any = None) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if role == "tool":
            return [{"type": "tool_call_response", "id": str(call_id or ""), "response": content}]
        return [text_part(content)]
    if isinstance(content, Mapping):
        if _is_message(content):  # a turn whose value is itself one message
            return _nested(content, role)
        if not any(key in content for key in ("type", "text", "message_content")):
            return [text_part(text_of(content))]  # a record: {"q": "..."}
        content = [content]
    if not isinstance(content, list):
        return [text_part(text_of(content))]
    if content and all(_is_message(item) for item in content):
        return _nested(content, role)  # a turn whose value is a conversation
    parts = []
    for item in content:
        part = _part(item, role=role, call_id=call_id)
        if part is not None:
            parts.append(part)
    return parts


def _nested(value: Any, role: str) -> list[dict[str, Any]]:
    """The parts of a message whose content is itself a conversation (a thread turn
    whose trace input was a message list): those of its last message in that role, the
    turn's own words; else those of its last message."""
    messages = _conversation(value) or []
    own = [m for m in messages if m["role"] == role] or messages
    return list(own[-1].get("parts", [])) if own else []


def _part(item: Any, *, role: str, call_id: Any) -> dict[str, Any] | None:
    if isinstance(item, str):
        return text_part(item)
    if not isinstance(item, Mapping):
        return text_part(text_of(item)) if item is not None else None
    if isinstance(item.get("message_content"), Mapping):  # OpenInference contents
        item = item["message_content"]
    kind = str(item.get("type") or ("text" if "text" in item or "content" in item else ""))
    if kind in TEXT_TYPES:
        text = item.get("text", item.get("content"))
        text = text if isinstance(text, str) else text_of(text)
        if role == "tool" and call_id:
            return {"type": "tool_call_response", "id": str(call_id), "response": text}
        return text_part(text)
    if kind in ("reasoning", "thinking"):
        text = item.get("content", item.get("thinking", item.get("text", "")))
        return {"type": "reasoning", "content": text if isinstance(text, str) else text_of(text)}
    if kind in ("tool_call", "tool_use", "function_call"):
        return _tool_call(item)
    if kind in ("tool_call_response", "tool_result", "function_call_output"):
        ident = item.get("id", item.get("tool_use_id", item.get("call_id", call_id)))
        response = item.get("response", item.get("content", item.get("output")))
        if isinstance(response, list) and all(
            isinstance(p, Mapping) and p.get("type") == "text" for p in response
        ):
            response = "\n".join(str(p.get("text", "")) for p in response)
        return {"type": "tool_call_response", "id": str(ident or ""), "response": response}
    return dict(item) if kind else {"type": "data", "content": dict(item)}


def _tool_call(call: Any) -> dict[str, Any] | None:
    """OpenAI ``{"id", "function": {"name", "arguments"}}``, OpenInference
    ``{"tool_call": {...}}``, Anthropic ``tool_use``, GenAI ``tool_call`` parts."""
    if not isinstance(call, Mapping):
        return None
    if isinstance(call.get("tool_call"), Mapping):
        call = call["tool_call"]
    function = call.get("function") if isinstance(call.get("function"), Mapping) else call
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = function.get("arguments", function.get("input", function.get("args")))
    part = {"type": "tool_call", "id": str(call.get("id") or ""), "name": name}
    part["arguments"] = json_or_text(arguments) if arguments not in (None, "") else {}
    return part
