"""The one JSON error shape of every 4xx and 5xx we answer::

    {"error": {"code": "not_found", "message": "Not found.", "details": {...},
               "request_id": "..."}}

Plain Django: the API's exception handler (``hitl.api.errors``), the middleware, the CSRF
failure view and the error handlers all build their bodies here, so the kernel's
middleware never reaches into the API layer for it.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from hitl.request_context import current_request_id


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": current_request_id()}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(status_code: int, code: str, message: str, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code)
