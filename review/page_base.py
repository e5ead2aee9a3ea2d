"""The base of review's project pages (the lead's, the quality pages and the report):
one ``context()`` with what every page shows and one ``url()`` for the project's
addresses."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from projects.pages import ProjectPageView


class ReviewProjectPage(ProjectPageView):
    """A page under ``.../projects/<project_slug>/``."""

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "membership": self.membership,
            "project": self.project,
            **extra,
        }

    def url(self, name: str, **kwargs: Any) -> str:
        return reverse(
            name,
            kwargs={"org_slug": self.organization.slug, "project_slug": self.project.slug} | kwargs,
        )
