"""Span and trace payloads rendered for people (the trace page and the review page).

Chat messages, in any convention ``traces.messages.to_messages`` reads, become a
conversation of the canonical messages (system, user, assistant, tool calls with their
name and arguments, tool results with their call id), retrieved documents numbered
cards with their scores, plain fields labelled text, long text folded, anything else
collapsible JSON. Everything is escaped: every string goes through
``format_html``/``escape``, and image parts are named, never loaded (no remote images).

Text that reads as Markdown (headings, lists, emphasis, code, links, tables) is rendered
by markdown-it-py in its "js-default" preset with raw HTML switched off: HTML in the
text comes out as escaped text, links are validated by the library (no ``javascript:``,
``vbscript:``, ``file:`` or ``data:`` targets) and open with ``rel="nofollow noopener
noreferrer"``, and images become a text link naming them, never an ``<img>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from traces.messages import to_messages

FOLD_CHARS = 700
FOLD_LINES = 14
# A text longer than this is shown in full as written, not as Markdown (rendering Markdown
# costs about 6 ms per KB: a 200 KB answer would hold a page for over a second); its
# folded head is still Markdown.
MARKDOWN_MAX_CHARS = 12_000
MAX_DEPTH = 6
DOCUMENT_TEXT_KEYS = ("content", "page_content", "text", "document", "chunk")


def render_payload(value: Any) -> SafeString:
    """One payload (a span's or a trace's input or output) as escaped HTML."""
    return _render(value, depth=0)


def _render(value: Any, *, depth: int) -> SafeString:
    if value is None or value == "" or value == [] or value == {}:
        return format_html('<p class="muted">{}</p>', "(empty)")
    if isinstance(value, str):
        return render_text(value)
    if isinstance(value, bool | int | float):
        return format_html('<p class="text">{}</p>', json.dumps(value))
    messages = _as_conversation(value)
    if messages is not None:
        return _conversation(messages)
    documents = _documents(value)
    if documents is not None:
        return _document_cards(documents)
    if isinstance(value, Mapping) and depth < MAX_DEPTH and _is_simple_record(value):
        return format_html_join(
            "",
            '<div class="payload-field"><div class="field-name">{}</div>{}</div>',
            ((str(key), _render(item, depth=depth + 1)) for key, item in value.items()),
        )
    return render_json(value)


def _join(parts: list[SafeString]) -> SafeString:
    """Concatenates already-escaped fragments (each built by ``format_html``)."""
    return format_html_join("", "{}", ((part,) for part in parts))


# Signs that a text is Markdown rather than prose that happens to hold a "*".
_MARKDOWN_SIGNS = re.compile(
    r"^\s{0,3}(#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>\s|```|\|.*\|\s*$)"
    r"|\*\*[^*\n]+\*\*|__[^_\n]+__|`[^`\n]+`|\[[^\]\n]+\]\([^)\s]+\)",
    re.MULTILINE,
)


def _image_as_link(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """An image becomes a link naming it: nothing remote loads with the page."""
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    label = f"image: {alt}" if alt else "image"
    return format_html(
        '<a class="md-image" href="{}" rel="nofollow noopener noreferrer">[{}]</a>',
        token.attrGet("src") or "",
        label,
    )


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


_MARKDOWN = MarkdownIt("js-default", {"html": False, "breaks": True, "linkify": False})
_MARKDOWN.add_render_rule("image", _image_as_link)
_MARKDOWN.add_render_rule("link_open", _link_open)


def looks_like_markdown(text: str) -> bool:
    return bool(_MARKDOWN_SIGNS.search(text))


def render_markdown(text: str) -> SafeString:
    """Markdown as HTML, safely: raw HTML is escaped text, links are checked by the
    library, images are links (``_image_as_link``)."""
    return mark_safe(f'<div class="markdown">{_MARKDOWN.render(text)}</div>')  # noqa: S308


def _text_block(text: str) -> SafeString:
    if len(text) <= MARKDOWN_MAX_CHARS and looks_like_markdown(text):
        return render_markdown(text)
    return format_html('<p class="text">{}</p>', text)


def render_text(text: str) -> SafeString:
    """Text for people: Markdown rendered safely when it reads as Markdown, otherwise
    kept as written (line breaks, spacing); folded when long."""
    lines = text.count("\n") + 1
    if len(text) <= FOLD_CHARS and lines <= FOLD_LINES:
        return _text_block(text)
    head = "\n".join(text[:FOLD_CHARS].split("\n")[:FOLD_LINES])
    return format_html(
        '<div class="folded-head">{}</div><details class="fold"><summary>Show all ({} '
        "characters, {} lines)</summary>{}</details>",
        _text_block(head + "…"),
        len(text),
        lines,
        _text_block(text),
    )


def render_json(value: Any, *, open_: bool = False) -> SafeString:
    """Any JSON value, pretty-printed inside a collapsible block."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    summary = _json_summary(value)
    template = (
        '<details class="json" open><summary>{}</summary><pre>{}</pre></details>'
        if open_ or len(text) < 400
        else '<details class="json"><summary>{}</summary><pre>{}</pre></details>'
    )
    return format_html(template, summary, text)


def _json_summary(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(list(map(str, value))[:6])
        more = "…" if len(value) > 6 else ""
        return f"JSON object {{{keys}{more}}}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"JSON list of {len(value)}"
    return "JSON"


def _is_simple_record(value: Mapping) -> bool:
    """A small object of named fields ({"question": "..."}): shown as labelled text."""
    return 0 < len(value) <= 8 and all(isinstance(key, str) for key in value)


# --- chat -----------------------------------------------------------------------------------


def _as_conversation(value: Any) -> list[dict[str, Any]] | None:
    """The payload as canonical messages (``traces.messages``), when it is a
    conversation; a request body with more than messages (model, tools, ...) is shown
    field by field instead, its messages as a conversation."""
    if isinstance(value, Mapping) and "role" not in value and len(value) > 3:
        return None
    return to_messages(value)


def _conversation(messages: list[dict[str, Any]]) -> SafeString:
    return format_html(
        '<div class="conversation">{}</div>',
        format_html_join("", "{}", ((_message(m),) for m in messages)),
    )


def _message(message: Mapping) -> SafeString:
    role = str(message.get("role", ""))
    parts = message.get("parts") or []
    label = "Tool result" if role == "tool" else role.capitalize()
    name = message.get("name") or ""
    if role == "tool" and not name:
        name = next(
            (str(p.get("id") or "") for p in parts if p.get("type") == "tool_call_response"), ""
        )
    return format_html(
        '<div class="msg {}"><div class="msg-role">{}{}</div>{}</div>',
        role,
        label,
        format_html(" · {}", name) if name else "",
        _join([_part(part) for part in parts])
        if parts
        else format_html('<p class="muted">{}</p>', "(no content)"),
    )


def _part(part: Mapping) -> SafeString:
    kind = part.get("type")
    if kind == "text":
        return render_text(str(part.get("content", "")))
    if kind == "reasoning":
        return format_html(
            '<details class="fold reasoning"><summary>{}</summary>{}</details>',
            "Reasoning",
            render_text(str(part.get("content", ""))),
        )
    if kind == "tool_call":
        return _tool_call(part)
    if kind == "tool_call_response":
        response = part.get("response")
        return format_html(
            '<div class="tool-call tool-result">{}</div>',
            render_text(response)
            if isinstance(response, str)
            else (render_json(response, open_=True) if response not in (None, "") else ""),
        )
    if "image" in str(kind) or part.get("modality") == "image":
        return format_html('<p class="muted">{}</p>', "[image not shown]")
    return render_json(dict(part))


def _tool_call(call: Mapping) -> SafeString:
    arguments = call.get("arguments")
    return format_html(
        '<div class="tool-call"><div class="field-name">Tool call: {}{}</div>{}</div>',
        str(call.get("name", "")),
        format_html(" · {}", call["id"]) if call.get("id") else "",
        render_json(arguments, open_=True) if arguments not in (None, "", {}) else "",
    )


# --- retrieved documents --------------------------------------------------------------------


def _documents(value: Any) -> list[Mapping] | None:
    if isinstance(value, Mapping):
        for key in ("documents", "docs", "results", "chunks", "retrieval.documents"):
            inner = value.get(key)
            if isinstance(inner, list) and len(value) <= 3:
                return _documents(inner)
        return None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(d, Mapping) and any(k in d for k in DOCUMENT_TEXT_KEYS) for d in value)
    ):
        return value
    return None


def _document_cards(documents: list[Mapping]) -> SafeString:
    cards = []
    for number, doc in enumerate(documents, start=1):
        text = next((doc[k] for k in DOCUMENT_TEXT_KEYS if k in doc), "")
        score = doc.get("score", doc.get("relevance_score"))
        ident = doc.get("id", doc.get("source", ""))
        extra = {
            k: v for k, v in doc.items() if k not in (*DOCUMENT_TEXT_KEYS, "score", "id", "source")
        }
        cards.append(
            format_html(
                '<li class="doc"><div class="doc-head"><span class="doc-num">#{}</span>'
                "<span>{}</span>{}</div>{}{}</li>",
                number,
                str(ident),
                format_html('<span class="badge">score {}</span>', score)
                if score is not None
                else "",
                render_text(text) if isinstance(text, str) else render_json(text),
                render_json(extra) if extra else "",
            )
        )
    return format_html('<ol class="documents">{}</ol>', _join(cards))
