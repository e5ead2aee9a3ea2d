"""Request id (for logs and error bodies) and the request body size limit."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from hitl import text
from hitl.error_shape import error_response
from hitl.request_context import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware:
    """Takes a sane ``X-Request-Id`` from the caller or makes one, and echoes it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        return response


class BodySizeLimitMiddleware:
    """Answers 413 before a too-large body is read, and 400 for query parameters and
    form fields that PostgreSQL cannot store (``hitl.text``: NUL, lone surrogates),
    naming the field, before any view or form sees them.

    DRF parsers read the WSGI stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    does not protect them. The limit is ``HITL_MAX_BODY_BYTES`` unless the view class
    sets ``max_body_bytes`` (ingestion endpoints accept larger batches).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        refused = _unstorable_parameter(request)
        if refused is not None:
            return refused
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(view_class, "max_body_bytes", None) or settings.HITL_MAX_BODY_BYTES
        length = request.META.get("CONTENT_LENGTH") or ""
        if length:
            try:
                too_big = int(length) > limit
            except ValueError:
                return _error(400, "bad_request", "Content-Length is not a number.")
            if too_big:
                return _too_large(limit)
        elif request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            # No declared length: read at most limit + 1 bytes and keep them as the body.
            body = request.read(limit + 1)
            if len(body) > limit:
                return _too_large(limit)
            request._body = body
        return None


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _unstorable_parameter(request: HttpRequest) -> HttpResponse | None:
    """A 400 for the first query parameter or form field whose name or value cannot be
    stored (Django's form decoding turns bad UTF-8 into U+FFFD, so that is NUL here;
    the check is ``hitl.text``'s all the same)."""
    sources = [("Query parameter", request.GET)]
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        sources.append(("Form field", request.POST))
    for what, data in sources:
        for key, values in data.lists():
            problem = text.unstorable(key) or next(
                (p for p in map(text.unstorable, values) if p), None
            )
            if problem:
                return _bad_input(request, f"{what} {key[:64]!r}: {problem}", key)
    return None


def _bad_input(request: HttpRequest, message: str, field: str) -> HttpResponse:
    """JSON in the API's error shape for API calls, a page for people."""
    if request.path.startswith(("/api/", "/v1/")) or "html" not in request.headers.get(
        "Accept", ""
    ):
        return _error(400, "invalid", message, {field[:64]: [message]})
    referer = request.headers.get("Referer", "")
    back = (
        referer
        if url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure())
        else "/"
    )
    return render(request, "hitl/bad_input.html", {"message": message, "back": back}, status=400)


def _too_large(limit: int) -> HttpResponse:
    return _error(
        413,
        "request_too_large",
        f"The request body exceeds the limit of {limit} bytes.",
        {"limit_bytes": limit},
    )


def _error(status: int, code: str, message: str, details: dict | None = None) -> HttpResponse:
    return error_response(status, code, message, details)
