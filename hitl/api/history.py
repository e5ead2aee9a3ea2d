"""The edit history of one object over the API: ``GET .../<id>/history/``.

Every viewset of a model that keeps history (``hitl.audit.history()``) adds
:class:`HistoryActionMixin`; the entries are ``hitl.history.history_entries``, worded as
the admin and the pages word them, with the stored facts (field names, stored values,
the request id) beside the words.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hitl import history as edit_history


class HistoryLineSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The field, by its name as people read it.")
    old = serializers.CharField(
        allow_null=True, help_text="The value before; null: the object was created with `new`."
    )
    new = serializers.CharField()


class HistoryEntrySerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.CharField(help_text="+ created, ~ changed, - deleted.")
    user = serializers.CharField(allow_null=True)
    api_key_prefix = serializers.CharField()
    source = serializers.CharField(help_text="web, api, task, command or system.")
    request_id = serializers.CharField(
        help_text="The request that wrote this version (its X-Request-Id); empty outside one."
    )
    changes = serializers.ListField(
        child=serializers.DictField(),
        help_text="{field, old, new} by field name with stored values; empty for a creation.",
    )
    kind = serializers.CharField(help_text="created, changed or deleted.")
    who = serializers.CharField(help_text="The user or API key, and the source.")
    reason = serializers.CharField(help_text="Why, when the change gave a reason.")
    lines = HistoryLineSerializer(
        many=True, help_text="What changed, worded as the admin and the pages show it."
    )


class HistoryActionMixin:
    """Adds the ``history`` action to a detail viewset: every version of the object,
    newest first. Override :meth:`check_history_readable` to refuse (a blind reviewer),
    :meth:`history_records` to choose other rows."""

    def check_history_readable(self, obj: Model) -> None:
        """Raises to refuse the history of ``obj`` to this caller; allows by default."""

    def history_records(self, obj: Model) -> QuerySet:
        return obj.history.all()  # type: ignore[attr-defined]

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, **kwargs: Any) -> Response:
        obj = self.get_object()  # type: ignore[attr-defined]
        self.check_history_readable(obj)
        entries = edit_history.history_entries(self.history_records(obj))
        return Response(HistoryEntrySerializer(entries, many=True).data)
