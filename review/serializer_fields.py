"""Fields the review and quality APIs share: a trace, span or thread named by the id its
client sent (answered and accepted), never the row id."""

from __future__ import annotations

from rest_framework import serializers

TRACE_HELP = "The trace's id as it was sent (GET traces/<id>/ takes it); null: none."
SPAN_HELP = (
    "The span's id as it was sent, within `trace` (GET traces/<trace>/spans/<id>/ takes it); "
    "null: none."
)
THREAD_HELP = "The thread's id as it was sent (GET threads/<id>/ takes it); null: none."

TRACE_ID_IN = "The trace's id as it was sent (as GET traces/ answers it)."
SPAN_ID_IN = "The span's id as it was sent; with trace_id, its trace."
THREAD_ID_IN = "The thread's id as it was sent (as GET threads/ answers it)."


def external_id_field(relation: str, help_text: str) -> serializers.CharField:
    """A trace, span or thread answered by the id its client sent, never the row id."""
    return serializers.CharField(
        source=f"{relation}.external_id", read_only=True, allow_null=True, help_text=help_text
    )


def external_id_input(help_text: str) -> serializers.CharField:
    return serializers.CharField(max_length=256, required=False, help_text=help_text)
