"""A streaming replica of the throwaway PostgreSQL that bin/test started.

``replica_server`` (once per session, on the xdist worker that runs the group
``replica``) takes a base backup of the primary with ``pg_basebackup -R`` into a
temporary directory, starts it on a free port as a hot standby, and adds the alias
``replica_1`` to Django's connections (a test mirror of ``default``: never created or
flushed by the test runner). Each test of this package then has it in
``settings.DATABASE_REPLICAS`` (the router ignores it elsewhere). Its data must be
committed to be seen there: the tests use ``transactional_db``.
"""

from __future__ import annotations

import copy
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connections

from hitl import replica

ALIAS = "replica_1"


def _bindir() -> Path:
    found = sorted(
        (d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(f"{d}/initdb", os.X_OK)),
        key=lambda d: int(Path(d).parent.name),
    )
    if not found:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql")
    return Path(found[-1])


def _as_db_user(*command: str) -> list[str]:
    # PostgreSQL refuses to run as root (bin/_stack.sh runs it as postgres too).
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else list(command)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ReplicaServer:
    bindir: Path
    data: Path
    port: int

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_db_user(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c shared_buffers=64MB -c hot_standby=on"
        )
        self._ctl("-l", str(self.data / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        connections[ALIAS].close()
        self._ctl("-m", "fast", "-w", "stop")
        replica.forget_states()

    def set_apply_delay(self, milliseconds: int) -> None:
        """``recovery_min_apply_delay`` (reloaded, not restarted): commits wait that long
        before the replica applies them."""
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"recovery_min_apply_delay = {milliseconds}\n")
        self._ctl("reload")
        for _ in range(200):
            connections[ALIAS].close()  # a new session reads the reloaded setting
            with connections[ALIAS].cursor() as cursor:
                cursor.execute(
                    "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'"
                )
                if cursor.fetchone()[0] == str(milliseconds):
                    return
            time.sleep(0.02)
        raise AssertionError("the replica did not take recovery_min_apply_delay")

    @contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()
            replica.forget_states()

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        target = replica.primary_lsn()
        deadline = time.monotonic() + timeout
        while True:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
                replayed = replica.lsn_value(cursor.fetchone()[0])
            if replayed is not None and target is not None and replayed >= target:
                replica.forget_states()
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay {target} in {timeout} s")
            time.sleep(0.02)


@pytest.fixture(scope="session")
def replica_server(django_db_setup, django_db_blocker) -> Iterator[ReplicaServer]:
    bindir = _bindir()
    primary = connections["default"].settings_dict
    data = Path(tempfile.mkdtemp(prefix="hitl-replica-"))
    if os.getuid() == 0:
        shutil.chown(data, "postgres")
    os.chmod(data, 0o700)
    # A physical slot that reserves WAL from now on: the other test workers write fast
    # enough that a checkpoint could recycle a segment before the backup's stream (or the
    # standby, later) has read it ("requested WAL segment ... has already been removed").
    slot = f"hitl_test_replica_{os.getpid()}"
    with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_create_physical_replication_slot(%s, true)", [slot])
    backup = subprocess.run(
        _as_db_user(
            str(bindir / "pg_basebackup"),
            "-h",
            str(primary["HOST"] or "127.0.0.1"),
            "-p",
            str(primary["PORT"] or 5432),
            "-U",
            str(primary["USER"] or "postgres"),
            "-D",
            str(data),
            "-R",  # standby.signal, primary_conninfo, primary_slot_name: a streaming replica
            "-S",
            slot,
            "-X",
            "stream",
            "-c",
            "fast",
        ),
        capture_output=True,
    )
    if backup.returncode:
        _drop_slot(slot, django_db_blocker)
        raise RuntimeError(f"pg_basebackup failed: {backup.stderr.decode(errors='replace')}")
    server = ReplicaServer(bindir=bindir, data=data, port=_free_port())
    server.start()
    settings_dict = copy.deepcopy(primary)
    settings_dict.update(HOST="127.0.0.1", PORT=str(server.port))
    settings_dict["TEST"] = {**settings_dict.get("TEST", {}), "MIRROR": "default"}
    settings_dict.setdefault("OPTIONS", {})["connect_timeout"] = 2
    connections.settings[ALIAS] = settings_dict
    try:
        with django_db_blocker.unblock():
            server.wait_replayed()
        yield server
    finally:
        if ALIAS in connections.settings:
            connections[ALIAS].close()
            del connections.settings[ALIAS]
        subprocess.run(
            _as_db_user(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)
        _drop_slot(slot, django_db_blocker)
        replica.forget_states()


def _drop_slot(slot: str, django_db_blocker) -> None:
    """Drop the slot (so the throwaway primary stops keeping WAL for it). Its walsender
    may outlive the stopped standby for a moment: an active slot is retried, not left."""
    try:
        for _ in range(100):
            with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
                cursor.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", [slot]
                )
                row = cursor.fetchone()
                if row is None:
                    return
                if not row[0]:
                    cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])
                    return
            time.sleep(0.05)
    finally:
        # Opened here, after the tests' own connection was closed: left open, it held
        # the test database when the run dropped it.
        connections["default"].close()


@pytest.fixture(autouse=True)
def _replica_in_use(replica_server, settings) -> Iterator[ReplicaServer]:
    settings.DATABASE_REPLICAS = [ALIAS]
    replica.forget_states()
    yield replica_server
    replica.forget_states()
