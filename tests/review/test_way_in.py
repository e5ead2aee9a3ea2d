"""The way in for a reviewer team: invitations that name the queues (several people at
once), the invited address fixed on sign-up, "sign up first" on the sign-in page, and
reviewers landing on My work after signing in."""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail
from django.test import Client

from hitl.audit import Actor
from hitl.tenancy import tenant_scope
from projects import services as project_services
from projects.models import Invitation, Membership, Role
from review.models import QueueReviewer
from tests.factories import PASSWORD, make_user
from tests.review.helpers import add_traces, make_queue

LINK = re.compile(r"https?://\S+/invitations/(?P<token>[\w-]+)/")


def _members_url(tenant) -> str:
    return f"/orgs/{tenant.organization.slug}/settings/"


def _my_work(tenant) -> str:
    return f"/orgs/{tenant.organization.slug}/work/"


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _invite(tenant, email: str, *, queue_ids=(), role=Role.REVIEWER) -> str:
    with tenant_scope(tenant.organization.pk):
        _invitation, token = project_services.invitation_create(
            actor=Actor(user=tenant.admin),
            acting_membership=Membership.objects.get(user=tenant.admin),
            email=email,
            role=role,
            queue_ids=queue_ids,
        )
    return token


@pytest.mark.worker
def test_invitees_named_with_their_queue_join_its_pool_and_land_on_my_work(tenant, celery_worker):
    queue = make_queue(tenant, name="Clinical answers", reviewers=[])
    add_traces(tenant, queue, 1)
    admin = _signed_in(tenant.admin)
    form = admin.get(_members_url(tenant))
    assert b'name="queues"' in form.content and b"Clinical answers" in form.content
    sent = admin.post(
        _members_url(tenant),
        {
            "email": "dr.lee@clinic.example.com,\nnurse.kim@clinic.example.com",
            "role": Role.REVIEWER,
            "queues": [str(queue.pk)],
        },
    )
    assert sent.status_code == 302, sent.content.decode()[:2000]
    with tenant_scope(tenant.organization.pk):
        invitations = list(Invitation.objects.order_by("email"))
    assert [i.email for i in invitations] == [
        "dr.lee@clinic.example.com",
        "nurse.kim@clinic.example.com",
    ]
    assert all(i.queue_ids == [queue.pk] for i in invitations)

    deadline = time.monotonic() + 15
    while len(mail.outbox) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    message = next(m for m in mail.outbox if m.to == ["dr.lee@clinic.example.com"])
    assert "You will review in:\n- Clinical answers" in message.body
    token = LINK.search(message.body).group("token")

    browser = Client()
    page = browser.get(f"/invitations/{token}/").content.decode()
    assert "You will review in" in page and "Clinical answers" in page
    assert "Create an account" in page
    signup = browser.get("/accounts/signup/").content.decode()
    assert re.search(r'<input[^>]*name="email"[^>]*readonly', signup), signup
    assert 'value="dr.lee@clinic.example.com"' in signup

    # Another address is refused with the reason; no account is made.
    other = browser.post(
        "/accounts/signup/",
        {"email": "lee.private@mail.example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert other.status_code == 200
    refused = other.content.decode()
    assert "The invitation is for dr.lee@clinic.example.com" in refused
    assert 'value="dr.lee@clinic.example.com"' in refused  # shown again as invited
    with tenant_scope(tenant.organization.pk):
        assert not Membership.objects.filter(user__email__startswith="lee.").exists()

    signed_up = browser.post(
        "/accounts/signup/",
        {"email": "dr.lee@clinic.example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert signed_up.status_code == 302
    assert signed_up["Location"] == _my_work(tenant)
    work = browser.get(signed_up["Location"]).content.decode()
    assert "You joined" in work and "Clinical answers" in work
    assert "Start reviewing" in work
    with tenant_scope(tenant.organization.pk):
        membership = Membership.objects.get(user__email="dr.lee@clinic.example.com")
        assert membership.role == Role.REVIEWER
        assert QueueReviewer.objects.filter(queue=queue, membership=membership).exists()


def test_invitation_form_refusals_name_the_reason_and_invite_nobody(tenant):
    queue = make_queue(tenant, name="Legal answers", reviewers=[])
    admin = _signed_in(tenant.admin)
    viewer_with_queue = admin.post(
        _members_url(tenant),
        {"email": "a@firm.example.com", "role": Role.VIEWER, "queues": [str(queue.pk)]},
    )
    assert viewer_with_queue.status_code == 422
    assert "does not review" in viewer_with_queue.content.decode()
    one_member = admin.post(
        _members_url(tenant),
        {"email": f"b@firm.example.com {tenant.reviewer.email}", "role": Role.REVIEWER},
    )
    assert one_member.status_code == 422
    shown = one_member.content.decode()
    assert "Nobody was invited" in shown and f"{tenant.reviewer.email} is already a member" in shown
    not_an_address = admin.post(
        _members_url(tenant), {"email": "c@firm.example.com, not-an-address", "role": "reviewer"}
    )
    assert not_an_address.status_code == 422
    assert "Not an email address: not-an-address" in not_an_address.content.decode()
    with tenant_scope(tenant.organization.pk):
        assert not Invitation.objects.exists()


def test_sign_in_page_says_sign_up_first_to_an_invitee_without_an_account(tenant):
    closed = Client().get("/accounts/login/").content.decode()
    assert "Accounts are created from an invitation" in closed
    assert "sign up</a> first" not in closed

    token = _invite(tenant, "new.person@clinic.example.com")
    browser = Client()
    browser.get(f"/invitations/{token}/")
    page = browser.get("/accounts/login/").content.decode()
    assert "there is no account for <strong>new.person@clinic.example.com</strong> yet" in page
    assert 'id="sign-up-first-link"' in page
    tried = browser.post(
        "/accounts/login/", {"login": "new.person@clinic.example.com", "password": "guess"}
    )
    assert tried.status_code == 200
    assert "There is no account for new.person@clinic.example.com yet: sign up first" in (
        tried.content.decode()
    )


def test_reviewers_land_on_my_work_and_a_safe_next_still_wins(tenant):
    make_queue(tenant, name="Triage")  # the tenant's reviewer is in its pool

    def sign_in(user, next_url: str = "") -> str:
        suffix = f"?next={next_url}" if next_url else ""
        response = Client().post(
            f"/accounts/login/{suffix}", {"login": user.email, "password": PASSWORD}
        )
        assert response.status_code == 302, response.content.decode()[:1000]
        return response["Location"]

    assert sign_in(tenant.reviewer) == _my_work(tenant)
    assert sign_in(tenant.admin) == "/"  # a manager in no pool: the organization's page
    history = f"/orgs/{tenant.organization.slug}/history/"
    assert sign_in(tenant.reviewer, history) == history
    assert sign_in(tenant.reviewer, "https://elsewhere.example.com/") == _my_work(tenant)

    # A reviewer in no queue yet still starts on My work (it says what to do next).
    newcomer = make_user("newcomer@clinic.example.com")
    with tenant_scope(tenant.organization.pk):
        Membership.objects.create(user=newcomer, role=Role.REVIEWER)
    assert sign_in(newcomer) == _my_work(tenant)
