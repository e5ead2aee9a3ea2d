"""The hostile walker's savepoint (``tests.hostile.rolled_back``) undoes what a request
did, as ``transaction.atomic()`` with ``set_rollback(True)`` did before it: the walk's
rows stay as built only if every request's writes, ``on_commit`` callbacks and broken
transactions are gone after it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction

from tests.hostile import rolled_back

pytestmark = pytest.mark.django_db


def test_writes_and_on_commit_callbacks_are_undone():
    user_model = get_user_model()
    kept = user_model.objects.create(username="kept", email="kept@example.com")
    callbacks = len(connection.run_on_commit)
    with rolled_back():
        user_model.objects.create(username="undone", email="undone@example.com")
        kept.email = "changed@example.com"
        kept.save()
        transaction.on_commit(lambda: None)
    assert not user_model.objects.filter(username="undone").exists()
    kept.refresh_from_db()
    assert kept.email == "kept@example.com"
    assert len(connection.run_on_commit) == callbacks


def test_a_transaction_broken_in_the_block_is_whole_afterwards():
    with rolled_back():
        with pytest.raises(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        connection.needs_rollback = True  # as an atomic block a view left on error
    assert not connection.needs_rollback
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
