from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import SimpleMetadata

if TYPE_CHECKING:  # imported by DRF's settings while rest_framework.views loads
    from rest_framework.request import Request
    from rest_framework.views import APIView


class ApiMetadata(SimpleMetadata):
    """OPTIONS answers: describes input fields only for views with one serializer.

    Views that read several input shapes (batch ingestion, actions with their own
    serializers) are described by the OpenAPI schema instead.
    """

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        if getattr(view, "serializer_class", None) is None:
            return {}
        return super().determine_actions(request, view)
