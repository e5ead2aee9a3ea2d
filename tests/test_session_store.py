"""The session store (``hitl.sessions``): Django's database sessions, read by a prepared
statement; an unknown or expired key reads as no session."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

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
