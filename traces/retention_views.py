"""The project's trace retention page: every member reads how long traces are kept;
owners and admins set it (a number of days, 0 to keep everything, or the default).

Linked from the trace explorer. Thin over ``traces.selectors.trace_retention_of`` and
``traces.services.trace_retention_set``; the beat task applies it (``traces.retention``).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from hitl.exceptions import DomainError
from hitl.forms import form_add_domain_error, form_error_lines
from traces import selectors, services
from traces.forms import TraceRetentionForm
from traces.models import RETENTION_MAX_DAYS
from traces.views import ProjectTracePageView


class TraceRetentionPageView(ProjectTracePageView):
    """GET: the retention in force and, for managers, its form. POST (managers): set it."""

    http_method_names = ["get", "post"]

    def url(self) -> str:
        return reverse(
            "traces-retention",
            kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug},
        )

    def get(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest, org_slug: str, project_slug: str) -> HttpResponse:
        if not self.is_manager:
            raise PermissionDenied
        form = TraceRetentionForm(request.POST)
        if not form.is_valid():
            return self._render(request, form=form, status=400)
        days = form.cleaned_data["days"]
        try:
            services.trace_retention_set(actor=self.actor, project=self.project, days=days)
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self._render(request, form=form, status=400)
        if days is None:
            messages.success(request, "This project now follows the default retention.")
        elif days == 0:
            messages.success(request, "This project's traces are now kept.")
        else:
            messages.success(request, f"This project's traces are now kept for {days} days.")
        return redirect(self.url())

    def _render(
        self, request: HttpRequest, *, form: TraceRetentionForm | None = None, status: int = 200
    ) -> HttpResponse:
        setting = selectors.trace_retention_of(project=self.project)
        error = " ".join(form_error_lines(form)) if form is not None else ""
        typed = form["days"].value() if form is not None else None
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "project": self.project,
            "setting": setting,
            "is_manager": self.is_manager,
            "explorer_url": self.explorer_url(),
            "error": error,
            "typed": typed if error else (setting.days if setting.days is not None else ""),
            "follows_default": setting.days is None and not error,
            "max_days": RETENTION_MAX_DAYS,
        }
        return render(request, "traces/retention.html", context, status=status)
