"""The current request's id, set by ``hitl.middleware.RequestIdMiddleware`` and read by
the error shape and the logs (its own module, so neither imports the other)."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("hitl_request_id", default="-")


def current_request_id() -> str:
    return request_id_var.get()
