from __future__ import annotations

from django.http import HttpRequest

from projects.selectors import organizations_for_user


def organizations(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    # API keys are authenticated but are nobody: they belong to no organization list.
    if user is None or not user.is_authenticated or getattr(user, "pk", None) is None:
        return {}
    return {
        "nav_organizations": organizations_for_user(user),
        "nav_active_organization_slug": request.session.get("active_organization_slug"),
    }
