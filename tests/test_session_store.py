"""The session store (``hitl.sessions``) and the user read (``hitl.auth_backends``):
Django's database sessions and backends, each read by a prepared statement; an unknown
or expired key reads as no session, an inactive user as nobody, and a session signed in
under the former backend paths stays signed in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from hitl.auth_backends import ModelBackend
from hitl.sessions import SessionStore


def test_a_saved_session_reads_back_and_an_expired_or_unknown_one_reads_as_none(db):
    assert settings.SESSION_ENGINE == "hitl.sessions"
    store = SessionStore()
    store["reviewer"] = {"answer": "a\u202eb", "n": 3}
    store.save()
    key = store.session_key

    assert SessionStore(key).load() == {"reviewer": {"answer": "a\u202eb", "n": 3}}
    unknown = SessionStore("k" * 32)
    assert unknown.load() == {} and unknown.session_key is None

    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    expired = SessionStore(key)
    assert expired.load() == {}
    assert expired.session_key is None  # a new key is made when it is saved


def _session_signed_in_as(user, backend: str) -> str:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = backend
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


@pytest.mark.parametrize(
    "backend",
    [
        "django.contrib.auth.backends.ModelBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
        "hitl.auth_backends.AuthenticationBackend",
    ],
)
def test_a_session_signed_in_under_any_of_the_backends_paths_stays_signed_in(tenant, backend):
    home = f"/orgs/{tenant.organization.slug}/work/"
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = _session_signed_in_as(tenant.reviewer, backend)
    assert client.get(home).status_code == 200

    # A backend no longer configured signs nobody in (Django's rule, unchanged).
    stranger = Client()
    stranger.cookies[settings.SESSION_COOKIE_NAME] = _session_signed_in_as(
        tenant.reviewer, "django.contrib.auth.backends.RemoteUserBackend"
    )
    assert stranger.get(home).status_code == 302


def test_the_prepared_user_read_refuses_an_inactive_or_missing_user(tenant):
    backend = ModelBackend()
    assert backend.get_user(tenant.reviewer.pk) == tenant.reviewer
    assert backend.get_user(tenant.reviewer.pk).email == tenant.reviewer.email
    assert backend.get_user(10**12) is None
    client = Client()
    client.force_login(tenant.reviewer)
    home = f"/orgs/{tenant.organization.slug}/work/"
    assert client.get(home).status_code == 200
    User.objects.filter(pk=tenant.reviewer.pk).update(is_active=False)
    assert backend.get_user(tenant.reviewer.pk) is None
    assert client.get(home).status_code == 302  # signed out: to the sign-in page
