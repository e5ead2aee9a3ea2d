"""The admin site: every admin request runs inside the tenant scope of its staff user.

A superuser's requests run in :func:`hitl.tenancy.all_tenants_scope_for_superuser`; any
other staff user's in :func:`hitl.tenancy.organizations_read_scope` of the organizations
where they may read the admin (their roles are the ``projects`` app's business: it
registers the rule with :func:`set_staff_organizations_resolver` from its ``ready()``).
The scope covers the view and the rendering of its template, so foreign-key choices,
list filters, inlines, autocomplete, raw-id widgets and history pages of every model
read through the tenant manager like any other code.

Signing in goes through the site's login limiter (:mod:`hitl.admin_login`): allauth's
``login`` rate per IP on every POST (a 429) and its ``login_failed`` rates per IP and per
account, shared with ``/accounts/login/``.

This module is imported while the app registry is still loading (``INSTALLED_APPS``
names :class:`HitlAdminConfig`), so it defines no models and imports none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import update_wrapper
from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponseBase

StaffOrganizationsResolver = Callable[[Any], Iterable[int]]
_staff_organizations_resolver: StaffOrganizationsResolver | None = None


def set_staff_organizations_resolver(resolver: StaffOrganizationsResolver) -> None:
    """Register ``resolver(user) -> organization ids`` that a (non-superuser) staff user
    may read in the admin. The ``projects`` app registers it from ``ready()``."""
    global _staff_organizations_resolver
    _staff_organizations_resolver = resolver


def admin_organization_ids(request: HttpRequest) -> frozenset[int] | None:
    """The organizations this staff user may read; None means all (superuser). With no
    resolver registered, a staff user reads nothing (fail closed)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return frozenset()
    if user.is_superuser:
        return None
    cached = getattr(request, "_hitl_admin_org_ids", None)
    if cached is None:
        resolver = _staff_organizations_resolver
        cached = frozenset(resolver(user)) if resolver is not None else frozenset()
        request._hitl_admin_org_ids = cached
    return cached


@contextmanager
def admin_scope(request: HttpRequest) -> Iterator[None]:
    """The tenant scope of one admin request."""
    from hitl import tenancy  # defines models: not importable while apps load

    allowed = admin_organization_ids(request)
    if allowed is None:
        with tenancy.all_tenants_scope_for_superuser():
            yield
    else:
        with tenancy.organizations_read_scope(allowed):
            yield


class HitlAdminSite(AdminSite):
    site_header = "hitl administration"
    site_title = "hitl admin"
    index_title = "Organizations, projects, reviews and their history"

    def admin_view(self, view: Callable, cacheable: bool = False) -> Callable:
        """Every admin view (the site's and each ModelAdmin's) runs, and renders, inside
        the staff user's scope. The permission check of ``AdminSite.admin_view`` runs
        first, so only active staff reach the scope."""

        def scoped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            with admin_scope(request):
                response = view(request, *args, **kwargs)
                # TemplateResponse renders lazily, after the view returns: render here.
                if hasattr(response, "render") and not response.is_rendered:
                    response.render()
                return response

        return super().admin_view(update_wrapper(scoped, view), cacheable)

    @property
    def login_form(self) -> type:  # type: ignore[override]
        """:class:`hitl.admin_login.AdminLoginForm`, imported late: this module loads
        before the auth models exist."""
        from hitl.admin_login import AdminLoginForm

        return AdminLoginForm

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponseBase:
        """Django's admin login behind allauth's per-IP ``login`` rate, as the site's
        sign-in view is (GETs are not counted)."""
        from allauth.core import ratelimit

        limited = ratelimit.consume_or_429(request, action="login")
        if limited is not None:
            return limited
        return super().login(request, extra_context)


class HitlAdminConfig(AdminConfig):
    """``django.contrib.admin`` with :class:`HitlAdminSite` as ``admin.site``."""

    default_site = "hitl.admin_site.HitlAdminSite"
