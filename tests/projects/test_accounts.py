"""django-allauth flows: email verification, password reset and rate limits (on the
Redis cache, so every web process shares the counters)."""

import re

from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.test import Client

from tests.factories import PASSWORD, make_user


def test_open_signup_is_closed_without_an_invitation(db, client):
    response = client.get("/accounts/signup/")
    assert b"closed" in response.content.lower()


def test_signup_requires_email_verification_when_open(db, settings):
    settings.HITL_OPEN_SIGNUP = True
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {"email": "analyst@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm-email/")
    assert not EmailAddress.objects.get(email="analyst@example.com").verified
    # Not signed in until the address is confirmed.
    assert client.get("/").status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    confirm = client.post(f"/{path}")
    assert confirm.status_code == 302
    assert EmailAddress.objects.get(email="analyst@example.com").verified


def test_password_reset_by_email(db):
    make_user("clinician@example.com")
    client = Client()
    response = client.post("/accounts/password/reset/", {"email": "clinician@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+/", mail.outbox[0].body)
    path = "/" + link.group(0).split("://", 1)[1].split("/", 1)[1]
    form = client.get(path, follow=True)
    assert form.status_code == 200
    new_password = "another-long-passphrase-77"
    done = client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else path,
        {"password1": new_password, "password2": new_password},
    )
    assert done.status_code == 302
    assert Client().login(username="clinician@example.com", password=new_password)


def test_failed_logins_are_rate_limited_through_redis(db):
    make_user("lawyer@example.com")
    client = Client()
    for _ in range(5):
        client.post("/accounts/login/", {"login": "lawyer@example.com", "password": "wrong"})
    # Now even the right password is refused until the window passes.
    blocked = client.post("/accounts/login/", {"login": "lawyer@example.com", "password": PASSWORD})
    assert b"Too many failed login attempts" in blocked.content
    assert "_auth_user_id" not in client.session
    # The counters live in Redis (shared by every web process), not in process memory.
    assert cache._cache.get_client().keys("*allauth*")
    cache.clear()
    allowed = client.post("/accounts/login/", {"login": "lawyer@example.com", "password": PASSWORD})
    assert allowed.status_code == 302
