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
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path

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

    def get_urls(self) -> list:
        """Django's site URLs plus the change log (``admin:changelog``)."""
        return [
            path("changelog/", self.admin_view(self.changelog_view), name="changelog"),
            path(
                "changelog/people/",
                self.admin_view(self.changelog_people_view),
                name="changelog-people",
            ),
            *super().get_urls(),
        ]

    def changelog_view(self, request: HttpRequest) -> HttpResponseBase:
        """Every history row of the reader's organizations (:mod:`hitl.changelog`),
        filtered by the query string; ``?export=csv`` or ``?export=json`` downloads the
        filtered rows. Bad filters answer 400 with the form's errors. Runs in the admin
        scope like every admin view; a staff user with no organization gets 403."""
        from django.core.exceptions import PermissionDenied

        from hitl import changelog

        allowed = admin_organization_ids(request)
        if allowed is not None and not allowed:
            raise PermissionDenied
        form = changelog.ChangeLogForm(request.GET or None, organization_ids=allowed)
        valid = form.is_valid() if request.GET else True
        filters = form.cleaned_data if request.GET and valid else {}
        export = filters.get("export", "")
        if export:
            rows = changelog.export_rows(filters, allowed)
            stamp = timezone_now_text()
            if export == "csv":
                response = HttpResponse(changelog.export_csv(rows), content_type="text/csv")
            else:
                response = HttpResponse(
                    changelog.export_json(rows), content_type="application/json"
                )
            response["Content-Disposition"] = f'attachment; filename="changelog-{stamp}.{export}"'
            return response
        page = changelog.changelog_page(filters, allowed) if valid else None
        query = request.GET.copy()
        query.pop("cursor", None)
        query.pop("export", None)
        context = {
            **self.each_context(request),
            "title": "Change log",
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "page_size": changelog.PAGE_SIZE,
            "export_limit": changelog.EXPORT_LIMIT,
            "is_first_page": not filters.get("cursor"),
        }
        return TemplateResponse(
            request, "admin/changelog.html", context, status=200 if valid else 400
        )

    def changelog_people_view(self, request: HttpRequest) -> HttpResponseBase:
        """The change log's person picker (``?q=`` what is typed): the emails of people
        in the reader's organizations that hold it, as JSON ``{"people": [...]}``."""
        from django.core.exceptions import PermissionDenied
        from django.http import JsonResponse

        from hitl import changelog

        allowed = admin_organization_ids(request)
        if allowed is not None and not allowed:
            raise PermissionDenied
        typed = request.GET.get("q", "")
        return JsonResponse({"people": changelog.people_matching(typed, allowed)})

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list:
        """The index and the sidebar group models by capability (:data:`CAPABILITIES`),
        with the change log first; an app's own page lists its models as Django does."""
        app_list = super().get_app_list(request, app_label)
        if app_label is not None or not app_list:
            return app_list
        return _grouped(app_list, self.name)

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


def timezone_now_text() -> str:
    from django.utils import timezone

    return timezone.now().strftime("%Y%m%dT%H%M%SZ")


# The index's groups: (group name, model labels in order). A registered model not named
# here is listed under "Other", so nothing goes missing when a model is added.
CAPABILITIES: list[tuple[str, list[str]]] = [
    (
        "People and access",
        [
            "projects.organization",
            "projects.project",
            "projects.membership",
            "projects.invitation",
            "projects.apikey",
            "auth.user",
            "auth.group",
            "account.emailaddress",
        ],
    ),
    (
        "Traces",
        [
            "traces.trace",
            "traces.span",
            "traces.thread",
            "traces.score",
            "traces.tracescoreaverage",
            "traces.feedback",
        ],
    ),
    ("Views and retention", ["traces.savedview", "traces.traceretention"]),
    (
        "Review",
        [
            "review.reviewqueue",
            "review.queuereviewer",
            "review.queueformfield",
            "review.scoreconfig",
            "review.scoreconfigversion",
            "review.queueitem",
            "review.assignment",
            "review.reviewdraft",
            "review.annotation",
            "review.adjudication",
            "review.comment",
            "review.routingrule",
            "review.routingruleday",
        ],
    ),
    (
        "Quality",
        [
            "review.qualitysettings",
            "review.agreementreport",
            "review.calibrationset",
            "review.goldanswer",
            "review.queuecalibration",
            "review.calibrationround",
            "review.calibrationresult",
            "review.goldaccuracy",
            "review.qualityalert",
            "review.alignmentmapping",
            "review.alignmentreport",
        ],
    ),
    (
        "Datasets and experiments",
        [
            "datasets.dataset",
            "datasets.datasetitem",
            "datasets.datasetitemrevision",
            "datasets.datasetversion",
            "datasets.datasetexport",
            "datasets.experiment",
            "datasets.experimentresult",
            "datasets.qualitygate",
        ],
    ),
    (
        "Notifications",
        [
            "projects.destination",
            "projects.queuealert",
            "projects.notificationpreference",
            "projects.event",
            "projects.delivery",
            "projects.deliveryattempt",
        ],
    ),
    ("System", ["hitl.outboxmessage"]),
]


def _grouped(app_list: list[dict], site_name: str) -> list[dict]:
    """Django's app list regrouped by :data:`CAPABILITIES`, the change log on top."""
    from django.urls import reverse

    entries = {
        f"{app['app_label']}.{model['object_name'].lower()}": (app, model)
        for app in app_list
        for model in app["models"]
    }
    groups: list[dict] = [
        {
            "name": "Audit",
            "app_label": "audit",
            "app_url": reverse(f"{site_name}:changelog"),
            "has_module_perms": True,
            "models": [
                {
                    "name": "Change log",
                    "object_name": "ChangeLog",
                    "perms": {"view": True},
                    "admin_url": reverse(f"{site_name}:changelog"),
                    "add_url": None,
                    "view_only": True,
                }
            ],
        }
    ]
    for name, labels in [*CAPABILITIES, ("Other", sorted(entries))]:
        found = [entries.pop(label) for label in labels if label in entries]
        if found:
            groups.append(
                {
                    "name": name,
                    "app_label": found[0][0]["app_label"],
                    "app_url": found[0][0]["app_url"],
                    "has_module_perms": True,
                    "models": [model for _app, model in found],
                }
            )
    return groups


class HitlAdminConfig(AdminConfig):
    """``django.contrib.admin`` with :class:`HitlAdminSite` as ``admin.site``."""

    default_site = "hitl.admin_site.HitlAdminSite"
