from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    """Stable, index-friendly pagination for large lists (newest first)."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500
