"""Emptying the test database after a transactional test, cheaper than Django's flush.

Django's ``TransactionTestCase`` ends each test with ``manage.py flush``: a TRUNCATE of
every table (PostgreSQL gives each truncated table and index new files), then the
``post_migrate`` signal, which writes every content type and permission back. Here about
200 tests are transactional (a live server for the browser, a real Celery worker), and
that flush cost 0.2 s a test on a quiet machine and about 1 s on a loaded one.

:func:`empty_tables` deletes the rows of every model's table instead, in one round trip,
with foreign-key and row triggers off (``session_replication_role = replica``, as
TRUNCATE fires no row trigger either), and keeps the content types and permissions,
which migrations and ``post_migrate`` wrote and no test changes: what the next test
finds is what flush left it. Without the rights to set the replication role it flushes
as Django does.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from psycopg import sql

# Written by migrate and post_migrate, and read by every test as they are.
KEPT = frozenset({"django_content_type", "auth_permission", "django_migrations"})


def _model_tables() -> set[str]:
    tables = set()
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and not model._meta.proxy:
            tables.add(model._meta.db_table)
    return tables - KEPT


def empty_tables(alias: str) -> None:
    """Every model table of the database ``alias`` emptied; sequences left as they are
    (as Django's flush leaves them without ``reset_sequences``)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        call_command("flush", verbosity=0, interactive=False, database=alias)
        return
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_class c "
                "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "AND c.relnamespace = current_schema()::regnamespace"
            )
            existing = {name for (name,) in cursor.fetchall()}
            tables = sorted(_model_tables() & existing)
            statements = [sql.SQL("SET LOCAL session_replication_role = replica")]
            statements += [sql.SQL("DELETE FROM {}").format(sql.Identifier(t)) for t in tables]
            cursor.execute(sql.SQL("; ").join(statements))
    except DatabaseError:  # no right to set the replication role: Django's flush
        call_command("flush", verbosity=0, interactive=False, database=alias)


def fixture_teardown(self) -> None:
    """``TransactionTestCase._fixture_teardown`` through :func:`empty_tables`, for the
    tests that use neither ``available_apps`` nor serialized rollback (none here do; for
    those Django's own teardown runs)."""
    if self.available_apps is not None or self.serialized_rollback:
        return DJANGO_FIXTURE_TEARDOWN(self)
    for alias in self._databases_names(include_mirrors=False):
        empty_tables(alias)
    return None


DJANGO_FIXTURE_TEARDOWN = None


def install() -> None:
    """Make every transactional test end with :func:`fixture_teardown`."""
    global DJANGO_FIXTURE_TEARDOWN
    from django.test import TransactionTestCase

    if DJANGO_FIXTURE_TEARDOWN is None:
        DJANGO_FIXTURE_TEARDOWN = TransactionTestCase._fixture_teardown
        TransactionTestCase._fixture_teardown = fixture_teardown
