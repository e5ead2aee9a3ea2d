from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    """OPTIONS answers: describes input fields only for views with one serializer.

    Views that read several input shapes (batch ingestion, actions with their own
    serializers) are described by the OpenAPI schema instead.
    """

    def determine_actions(self, request, view):
        if getattr(view, "serializer_class", None) is None:
            return {}
        return super().determine_actions(request, view)
