"""The authentication backends: Django's and allauth's, with the read of the signed-in
user that every request makes as one prepared statement.

Every request of a signed-in person loads their user row by the id in the session
(``get_user``). Through the ORM, that one ``SELECT`` was about 3.5% of the Python time of
the whole test suite. Here it is the same read (the row by its id; an inactive user is
refused as Django refuses one), prepared on the connection
(``hitl.sql_rows.prepared_cursor``); signing in, passwords and permissions are Django's
and allauth's. Sessions signed in under the former backend paths (Django's and allauth's classes)
keep working: ``hitl.sessions`` reads those paths as these."""

from __future__ import annotations

from typing import Any

from allauth.account import auth_backends
from django.contrib.auth import backends, get_user_model

from hitl import sql_rows

_USER_SQL = "SELECT {columns} FROM auth_user u WHERE u.id = %(user_id)s::bigint"


class _PreparedUserRead:
    def get_user(self, user_id: Any) -> Any:
        with sql_rows.prepared_cursor() as cursor:
            cursor.execute(
                sql_rows.statement(_USER_SQL, columns=(get_user_model(), "u")),
                {"user_id": user_id},
            )
            row = cursor.fetchone()
        if row is None:
            return None
        user = sql_rows.instance(get_user_model(), row)
        return user if self.user_can_authenticate(user) else None  # type: ignore[attr-defined]


class ModelBackend(_PreparedUserRead, backends.ModelBackend):
    """Django's ``ModelBackend`` (sign-in by username: the admin, ``force_login``)."""


class AuthenticationBackend(_PreparedUserRead, auth_backends.AuthenticationBackend):
    """allauth's backend (sign-in by email on ``/accounts/login/``)."""
