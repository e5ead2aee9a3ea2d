from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from hitl.exceptions import DomainError
from hitl.forms import form_add_domain_error, form_error_lines
from hitl.tenancy import tenant_scope
from projects import confirmations, selectors, services
from projects.adapters import (
    PENDING_INVITATION,
    account_exists,
    joined_message,
    work_page_url,
)
from projects.confirmations import Confirmation, confirmation_page
from projects.forms import (
    ApiKeyForm,
    ConfirmForm,
    InvitationActionForm,
    InvitationForm,
    MemberForm,
    OrganizationSwitchForm,
)
from projects.models import MANAGE_ROLES, ApiKey, ApiKeyScope, Invitation, Membership, Project, Role
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
    organizations = selectors.organizations_for_user(request.user)
    form = OrganizationSwitchForm(request.POST, organizations=organizations)
    if not form.is_valid():
        for line in form_error_lines(form):
            messages.error(request, line)
        context = {"organizations": list(organizations)}
        return render(request, "projects/home.html", context, status=400)
    slug = form.cleaned_data["organization"]
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
        messages.success(request, joined_message(membership))
        landing = work_page_url(request, request.user)
        home = reverse("organization-home", args=[membership.organization.slug])
        return redirect(landing or home)
    has_account = False
    if not request.user.is_authenticated:
        # Remember the invitation through sign-up or sign-in, and treat the address as
        # verified: following the emailed link proves the invitee owns it.
        from allauth.account.adapter import get_adapter

        request.session[PENDING_INVITATION] = token
        get_adapter(request).stash_verified_email(request, invitation.email)
        has_account = account_exists(invitation.email)
    with tenant_scope(invitation.organization_id):
        queues = services.invitation_queue_names(invitation)
    context = {"invitation": invitation, "queues": queues, "has_account": has_account}
    return render(request, "projects/invitation_detail.html", context)


# --- settings: members, invitations, API keys (managers) -----------------------------------


class SettingsPageView(OrganizationPageView):
    """Organization settings: owners and admins only; others answer 403."""

    allowed_roles = MANAGE_ROLES

    def members_url(self) -> str:
        return reverse("settings-members", kwargs={"org_slug": self.organization.slug})

    def keys_url(self) -> str:
        return reverse("settings-api-keys", kwargs={"org_slug": self.organization.slug})

    def fail(self, exc: DomainError) -> None:
        messages.error(self.request, exc.message)

    def ask_first(self, confirmation: Confirmation) -> HttpResponse:
        """The page that asks before a destructive action (nothing is done yet)."""
        context = {"organization": self.organization, "membership": self.membership}
        return confirmation_page(self.request, confirmation, context)

    def refuse(self, form: Any) -> None:
        """A form's errors as messages, for a page whose form is not shown again."""
        for line in form_error_lines(form):
            messages.error(self.request, line)


class SettingsMembersView(SettingsPageView):
    """GET: members with their roles and project narrowing, invitations and their
    status, and the invitation form. POST: send an invitation."""

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        return self.page()

    def page(self, *, form: InvitationForm | None = None, status: int = 200) -> HttpResponse:
        projects = list(Project.objects.order_by("name"))
        members = [
            {
                "membership": m,
                "project_ids": {p.pk for p in m.projects.all()},
                "is_me": m.pk == self.membership.pk,
                "removal": confirmations.member_removal(m, self.organization),
            }
            for m in selectors.membership_list().order_by("user__email")
        ]
        invitations = list(selectors.invitation_list().order_by("-created_at"))
        for invitation in invitations:
            invitation.revocation = confirmations.invitation_revocation(invitation)
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "members": members,
            "invitations": invitations,
            "projects": projects,
            "roles": [
                (value, label)
                for value, label in Role.choices
                if value != Role.OWNER or self.membership.role == Role.OWNER
            ],
            "form": form or InvitationForm(initial={"role": Role.REVIEWER}),
            "is_owner": self.membership.role == Role.OWNER,
        }
        return render(self.request, "projects/settings/members.html", context, status=status)

    def post(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        form = InvitationForm(request.POST)
        if not form.is_valid():
            return self.page(form=form, status=422)
        try:
            invitations = services.invitations_create(
                actor=self.actor,
                acting_membership=self.membership,
                emails=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                project_ids=[p.pk for p in form.cleaned_data["projects"]],
                queue_ids=form.cleaned_data["queues"],
            )
        except DomainError as exc:
            form_add_domain_error(form, exc, fields={"queue_ids": "queues"})
            return self.page(form=form, status=422)
        sent = ", ".join(i.email for i in invitations)
        messages.success(request, f"Invitation sent to {sent}.")
        return redirect(self.members_url())


class SettingsMemberView(SettingsMembersView):
    """POST: change a member's role and project narrowing, or remove them. Input that is
    no role or project answers the members page with the reasons (400). Removing asks
    first (``confirm``); nobody removes themselves (400, with the reason)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, org_slug: str, membership_pk: int) -> HttpResponse:
        target = Membership.objects.filter(pk=membership_pk).select_related("user").first()
        if target is None:
            raise Http404
        form = MemberForm(request.POST)
        if not form.is_valid():
            self.refuse(form)
            return self.page(status=400)
        if form.cleaned_data["remove"] and target.pk == self.membership.pk:
            messages.error(
                request,
                "You cannot remove yourself from the organization: another owner or admin "
                "can remove you.",
            )
            return self.page(status=400)
        if form.cleaned_data["remove"] and not form.cleaned_data["confirm"]:
            return self.ask_first(
                Confirmation(
                    title=f"Remove {target.user.email}?",
                    lost=confirmations.member_removal(target, self.organization),
                    button=f"Remove {target.user.email}",
                    cancel_url=self.members_url(),
                )
            )
        try:
            if form.cleaned_data["remove"]:
                services.membership_remove(
                    actor=self.actor, acting_membership=self.membership, membership=target
                )
                messages.success(request, f"{target.user.email} was removed.")
            else:
                services.membership_update(
                    actor=self.actor,
                    acting_membership=self.membership,
                    membership=target,
                    role=form.cleaned_data["role"] or target.role,
                    project_ids=[p.pk for p in form.cleaned_data["projects"]],
                )
                messages.success(request, f"Saved {target.user.email}.")
        except DomainError as exc:
            self.fail(exc)
        return redirect(self.members_url())


class SettingsInvitationView(SettingsMembersView):
    """POST: resend (a fresh link) or revoke an invitation (asks first: ``confirm``)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, org_slug: str, invitation_pk: int) -> HttpResponse:
        invitation = Invitation.objects.filter(pk=invitation_pk).first()
        if invitation is None:
            raise Http404
        form = InvitationActionForm(request.POST)
        if not form.is_valid():
            self.refuse(form)
            return self.page(status=400)
        if form.chosen() == "revoke" and not form.cleaned_data["confirm"]:
            return self.ask_first(
                Confirmation(
                    title=f"Revoke the invitation to {invitation.email}?",
                    lost=confirmations.invitation_revocation(invitation),
                    button="Revoke the invitation",
                    cancel_url=self.members_url(),
                )
            )
        try:
            if form.chosen() == "revoke":
                services.invitation_revoke(actor=self.actor, invitation=invitation)
                messages.success(request, f"The invitation to {invitation.email} was revoked.")
            else:
                services.invitation_resend(actor=self.actor, invitation=invitation)
                messages.success(request, f"A new link was sent to {invitation.email}.")
        except DomainError as exc:
            self.fail(exc)
        return redirect(self.members_url())


class SettingsApiKeysView(SettingsPageView):
    """GET: every project's keys (prefix, scopes, last use, state) and the form for a
    new one. POST: create a key and show it this once, with a copy button."""

    def page(
        self,
        *,
        form: ApiKeyForm | None = None,
        new_key: str = "",
        new_key_name: str = "",
        status: int = 200,
    ) -> HttpResponse:
        projects = list(Project.objects.order_by("name"))
        keys = list(
            ApiKey.objects.select_related("project", "created_by", "revoked_by").order_by(
                "project__name", "-created_at"
            )
        )
        for key in keys:
            key.revocation = confirmations.api_key_revocation(key)
        context = {
            "organization": self.organization,
            "membership": self.membership,
            "projects": projects,
            "keys": keys,
            "scopes": ApiKeyScope.choices,
            "new_key": new_key,
            "new_key_name": new_key_name,
            "form": form or ApiKeyForm(initial={"scopes": [ApiKeyScope.INGEST]}),
        }
        return render(self.request, "projects/settings/api_keys.html", context, status=status)

    def get(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        return self.page()

    def post(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return self.page(form=form, status=422)
        try:
            api_key, raw = services.api_key_create(
                actor=self.actor,
                project=form.cleaned_data["project"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
            return self.page(form=form, status=422)
        response = self.page(new_key=raw, new_key_name=api_key.name)
        response["Cache-Control"] = "no-store"
        return response


class SettingsApiKeyRevokeView(SettingsPageView):
    """POST: revoke a key (asks first: ``confirm``)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, org_slug: str, api_key_pk: int) -> HttpResponse:
        api_key = ApiKey.objects.select_related("project").filter(pk=api_key_pk).first()
        if api_key is None:
            raise Http404
        form = ConfirmForm(request.POST)
        if not form.is_valid() or not form.cleaned_data["confirm"]:
            return self.ask_first(
                Confirmation(
                    title=f"Revoke the key {api_key.prefix}…?",
                    lost=confirmations.api_key_revocation(api_key),
                    button=f"Revoke {api_key.name}",
                    cancel_url=self.keys_url(),
                )
            )
        services.api_key_revoke(actor=self.actor, api_key=api_key)
        messages.success(request, f"The key {api_key.prefix}… was revoked; it stops working now.")
        return redirect(self.keys_url())
