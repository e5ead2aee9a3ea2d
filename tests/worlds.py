"""Rows built once for a module's tests (the walkers' worlds).

``built_once(django_db_blocker)`` opens a transaction around a module-scoped fixture:
the fixture builds its rows inside it, every test of the module then runs in a savepoint
of it (pytest-django's ``db``), so a test's writes are undone after it while the rows
stay, and the whole world is rolled back when the module is done. Only for modules whose
tests use ``db`` (a ``transactional_db`` test would flush the tables under it).
Under pytest-xdist each worker builds the world of the modules it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import transaction
from django.test import override_settings

# Real hashing costs ~0.3 s per user (the function-scoped ``settings`` fixture of
# tests/conftest.py cannot reach a module-scoped fixture).
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@contextlib.contextmanager
def built_once(django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
