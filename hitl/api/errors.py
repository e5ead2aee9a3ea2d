"""The API's errors in the one error shape (``hitl.error_shape``).

``details`` carries field errors for validation failures. Not-found and forbidden
objects of another tenant both answer 404, so nothing leaks by status.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hitl.error_shape import error_body, error_response
from hitl.exceptions import DomainError, conflict_from_integrity_error, conflict_from_protected
from hitl.tenancy import TenantScopeError

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "request_too_large"


def _message_and_details(exc: exceptions.APIException) -> tuple[str, str, Any]:
    detail = exc.detail
    codes = exc.get_codes()
    if isinstance(detail, dict):
        if set(detail) == {"detail"}:
            return str(detail["detail"]), str(codes.get("detail", exc.default_code)), None
        return "Invalid input.", "invalid", detail
    if isinstance(detail, list):
        if len(detail) == 1:
            code = codes[0] if isinstance(codes, list) else exc.default_code
            return str(detail[0]), str(code), None
        return "Invalid input.", "invalid", {"non_field_errors": detail}
    return str(detail), str(codes if isinstance(codes, str) else exc.default_code), None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, IntegrityError):
        # A race past a service's "is it taken?" check that the service did not wrap in
        # conflict_on_duplicate(): still the caller's 409, never a 500.
        exc = conflict_from_integrity_error(exc) or exc
    elif isinstance(exc, ProtectedError | RestrictedError):
        # A delete the references that must be kept refuse: the caller's 409, never a 500.
        exc = conflict_from_protected(exc)
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(str(exc))
    elif isinstance(exc, TenantScopeError):
        # A programming error, never the caller's fault; fail closed and loudly.
        logger.error("tenant scope violation: %s", exc)
        return Response(
            error_body("server_error", "Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", "Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    message, code, details = _message_and_details(exc)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details = {"retry_after_seconds": int(exc.wait + 0.999)}
    response.data = error_body(code, message, details)
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/v1/")) or "json" in request.headers.get("Accept", "")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return error_response(404, "not_found", "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return error_response(500, "server_error", "Internal server error.")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return error_response(400, "bad_request", "Bad request.")
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return error_response(403, "permission_denied", "Permission denied.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)
