"""The page a refused form (CSRF check failed) answers instead of Django's debug page.

It happens to people whose cookies went (cleared, expired, another browser profile)
while a page was open: the form they sent cannot be trusted, so nothing of it is
applied, but nothing they typed is lost either. The review page keeps every answer in
the browser's storage as it is typed, and restores it when the item opens again. So
the page says so and offers to sign in again, back to the page the form was on.
Settings: ``CSRF_FAILURE_VIEW = "hitl.csrf.csrf_failure"``."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from hitl.error_shape import error_response


def _back_path(request: HttpRequest) -> str:
    """The page the refused form was on (its Referer, when it is one of ours), else /."""
    referer = request.headers.get("Referer", "")
    if not referer or not url_has_allowed_host_and_scheme(
        referer, {request.get_host()}, request.is_secure()
    ):
        return "/"
    parts = urlsplit(referer)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403: JSON in the API's error shape for API calls and scripts, a page for people."""
    message = "This form could not be accepted: the page was opened in a session that ended."
    if request.path.startswith(("/api/", "/v1/")) or "html" not in request.headers.get(
        "Accept", ""
    ):
        return error_response(403, "csrf_failed", message)
    back = _back_path(request)
    context = {
        "back": back,
        "login_url": f"{reverse('account_login')}?{urlencode({'next': back})}",
        "signed_in": request.user.is_authenticated,
    }
    return render(request, "hitl/csrf_failure.html", context, status=403)
