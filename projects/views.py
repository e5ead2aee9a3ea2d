from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from hitl.exceptions import DomainError
from projects import selectors, services
from projects.models import Role
from projects.pages import OrganizationPageView


@login_required
def home(request: HttpRequest) -> HttpResponse:
    organizations = list(selectors.organizations_for_user(request.user))
    active = request.session.get("active_organization_slug")
    if len(organizations) == 1 or any(o.slug == active for o in organizations):
        slug = active if any(o.slug == active for o in organizations) else organizations[0].slug
        return redirect("organization-home", org_slug=slug)
    return render(request, "projects/home.html", {"organizations": organizations})


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("organization", "")
    if not selectors.organizations_for_user(request.user).filter(slug=slug).exists():
        messages.error(request, "You are not a member of that organization.")
        return redirect("home")
    request.session["active_organization_slug"] = slug
    return redirect("organization-home", org_slug=slug)


class OrganizationHomeView(OrganizationPageView):
    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "projects": selectors.projects_visible_to(self.membership),
            "members": selectors.membership_list()
            if self.membership.role in (Role.OWNER, Role.ADMIN)
            else None,
        }
        return render(request, "projects/organization_home.html", context)


@require_http_methods(["GET", "POST"])
def invitation_detail(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the invitation email: explains, then joins on POST."""
    try:
        invitation = services.invitation_by_token(token)
    except services.InvitationUnusable as exc:
        return render(
            request, "projects/invitation_unusable.html", {"reason": exc.message}, status=404
        )
    status = invitation.status
    if status != "pending":
        reasons = {
            "accepted": "This invitation has already been used.",
            "revoked": "This invitation was revoked by an administrator.",
            "expired": "This invitation has expired. Ask an administrator to send a new one.",
        }
        return render(
            request,
            "projects/invitation_unusable.html",
            {"reason": reasons[status], "organization": invitation.organization},
            status=410,
        )
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(request.path)
        try:
            membership = services.invitation_accept(user=request.user, raw_token=token)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect(request.path)
        request.session["active_organization_slug"] = membership.organization.slug
        messages.success(request, f"You joined {membership.organization.name}.")
        return redirect("organization-home", org_slug=membership.organization.slug)
    if not request.user.is_authenticated:
        # Remember the invitation through sign-up or sign-in, and treat the address as
        # verified: following the emailed link proves the invitee owns it.
        from allauth.account.adapter import get_adapter

        request.session["pending_invitation_token"] = token
        get_adapter(request).stash_verified_email(request, invitation.email)
    return render(request, "projects/invitation_detail.html", {"invitation": invitation})
