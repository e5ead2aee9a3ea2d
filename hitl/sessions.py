"""Django's database sessions, with the read every signed-in request makes as one
prepared statement.

Every request of a signed-in person reads their session row. Through the ORM, building,
compiling and client-side binding that one ``SELECT`` was about 6% of the Python time of
the whole test suite, and the same share of a cheap request. Here it is the statement
Django's ``SessionStore`` runs (the row by its key, unexpired), prepared on the
connection (``hitl.sql_rows.prepared_cursor``); everything else (keys, signing,
expiry, saving, flushing) is Django's. ``SESSION_ENGINE`` names this module."""

from __future__ import annotations

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.utils import timezone

from hitl import sql_rows

_SESSION_SQL = """
    SELECT {columns} FROM django_session s
    WHERE s.session_key = %(key)s::text AND s.expire_date > %(now)s::timestamptz
"""


# The backend paths sessions were signed in under before ``hitl.auth_backends``: the
# backends Django's and allauth's classes became (their user read prepared).
FORMER_BACKEND_PATHS = {
    "django.contrib.auth.backends.ModelBackend": "hitl.auth_backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend": (
        "hitl.auth_backends.AuthenticationBackend"
    ),
}


class SessionStore(db.SessionStore):
    def load(self) -> dict:
        """The session's data; one signed in under a former backend path
        (:data:`FORMER_BACKEND_PATHS`) names its backend's path now, so nobody was
        signed out when the backends moved."""
        data = super().load()
        backend = data.get(BACKEND_SESSION_KEY)
        if backend in FORMER_BACKEND_PATHS:
            data[BACKEND_SESSION_KEY] = FORMER_BACKEND_PATHS[backend]
        return data

    def _get_session_from_db(self) -> Session | None:
        with sql_rows.prepared_cursor() as cursor:
            cursor.execute(
                sql_rows.statement(_SESSION_SQL, columns=(Session, "s")),
                {"key": self.session_key, "now": timezone.now()},
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return sql_rows.instance(Session, row)
