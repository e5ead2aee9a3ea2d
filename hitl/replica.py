"""Read replicas: heavy reads go to a streaming replica, only where a selector asks.

``DATABASE_REPLICA_URLS`` (comma-separated) adds one database alias per replica
(``replica_1``, ``replica_2``, ...; the aliases are ``settings.DATABASE_REPLICAS``).
Nothing reads from a replica by accident: the router sends a read to a replica only
inside :func:`reads_from_replica` (a context manager and a decorator, applied to the
heavy selectors: the trace list and its count, the trace and span detail, the board's
aggregates, the agreement report), and even there

- never inside an atomic block of the primary (a read inside a transaction that may
  write sees what the transaction wrote), so claims (``select_for_update``) and
  services' reads stay on the primary;
- never for the models that decide who may see what (memberships, API keys,
  organizations, projects, users): tenant scope checks read the primary;
- never before the replica has replayed the reader's own last write
  (**read-your-writes**): after a person or an API key sends a write (any unsafe
  method), :class:`ReadYourWritesMiddleware` notes the primary's WAL position
  (``pg_current_wal_lsn()``) against them in the cache; their replica reads wait on the
  primary until the replica's ``pg_last_wal_replay_lsn()`` has passed it. Outside a
  request (a Celery task, a command) the replica must have replayed everything the
  primary had committed when the read began (waiting up to ``REPLICA_WAIT_SECONDS``
  for it), so a task never misses the write that queued it. When the cache cannot
  answer, the read goes to the primary;
- never from a replica that is down or lags more than ``REPLICA_MAX_LAG_SECONDS``: it
  is skipped (reads fall back to the primary), logged once per change, probed again
  after ``REPLICA_PROBE_SECONDS`` and reported by ``/healthz`` (:func:`replica_report`).

One long read may also use :func:`replica_snapshot` (dataset exports, the agreement
inputs): a replica that has replayed everything committed on the primary when the read
begins, even inside a primary transaction, else the primary.

Writes always go to the primary, whatever instance they start from. Tenancy is the
same on a replica: the tenant managers filter by organization whatever the alias, and
raw SQL run on a replica takes its connection from :func:`read_connection`.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse

from hitl import cache as fail_open_cache

logger = logging.getLogger(__name__)

# Who may see what is read from the primary, always (lower-case model labels).
PRIMARY_ONLY_MODELS = frozenset(
    {
        "projects.organization",
        "projects.project",
        "projects.membership",
        "projects.apikey",
        "auth.user",
        "sessions.session",
    }
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CACHE_PREFIX = "replica:written:"

F = TypeVar("F", bound=Callable[..., Any])

# The alias reads go to inside ``reads_from_replica`` (None outside it).
_read_alias: ContextVar[str | None] = ContextVar("hitl_replica_read_alias", default=None)
# The request being served, so the reader (person or key) is known when a read is routed.
_request: ContextVar[HttpRequest | None] = ContextVar("hitl_replica_request", default=None)


def replica_aliases() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", []))


def max_lag_seconds() -> float:
    return float(getattr(settings, "REPLICA_MAX_LAG_SECONDS", 30.0))


def probe_seconds() -> float:
    return float(getattr(settings, "REPLICA_PROBE_SECONDS", 2.0))


def lsn_value(text: str | None) -> int | None:
    """``'16/B374D848'`` as an integer, comparable; None stays None."""
    if not text:
        return None
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


# --- the replicas' state -------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaState:
    alias: str
    checked_at: float
    usable: bool
    status: str  # "ok", "lagging: 42.0 s", "error: OperationalError", "not a replica"
    replay_lsn: int | None = None
    lag_seconds: float | None = None


_lock = threading.Lock()
_states: dict[str, ReplicaState] = {}

_PROBE_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
       END
"""


def probe(alias: str) -> ReplicaState:
    """Asks the replica how far it has replayed and how far behind it is, now."""
    now = time.monotonic()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_PROBE_SQL)
            in_recovery, replay_lsn, lag = cursor.fetchone()
    except Exception as exc:  # down, refused, timed out: skipped, reason reported
        connections[alias].close()
        state = ReplicaState(alias, now, False, f"error: {type(exc).__name__}")
    else:
        if not in_recovery:
            state = ReplicaState(alias, now, False, "not a replica")
        elif lag is None or lag > max_lag_seconds():
            shown = "unknown" if lag is None else f"{lag:.1f} s"
            state = ReplicaState(alias, now, False, f"lagging: {shown}", lsn_value(replay_lsn), lag)
        else:
            state = ReplicaState(alias, now, True, "ok", lsn_value(replay_lsn), lag)
    with _lock:
        previous = _states.get(alias)
        _states[alias] = state
    if previous is None or previous.status.split(":")[0] != state.status.split(":")[0]:
        log = logger.info if state.usable else logger.warning
        log("read replica %s: %s%s", alias, state.status, "" if state.usable else ", skipped")
    return state


# A replica that could not be reached is tried again after this long at the soonest, so
# an unroutable one costs a connect timeout that often per process, not per request.
DOWN_RETRY_SECONDS = 10.0


def replica_state(alias: str) -> ReplicaState:
    """The replica's state, probed at most every ``REPLICA_PROBE_SECONDS`` (a replica
    that could not be reached: every ``DOWN_RETRY_SECONDS``)."""
    state = _states.get(alias)
    if state is not None:
        down = state.status.startswith("error")
        interval = max(probe_seconds(), DOWN_RETRY_SECONDS) if down else probe_seconds()
        if time.monotonic() - state.checked_at < interval:
            return state
    return probe(alias)


def forget_states() -> None:
    """Probe every replica afresh on next use (for tests and after a reconfiguration)."""
    with _lock:
        _states.clear()


def replica_report() -> dict[str, str]:
    """Each replica's status, probed now: ``ok``, ``lagging: ...`` or ``error: ...``."""
    return {alias: probe(alias).status for alias in replica_aliases()}


# --- read-your-writes ----------------------------------------------------------------------
def _reader_key(request: HttpRequest) -> str | None:
    api_key = getattr(request, "api_key", None)
    if api_key is not None and getattr(api_key, "pk", None) is not None:
        return f"key:{api_key.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and getattr(user, "pk", None) is not None:
        return f"user:{user.pk}"
    return None


def primary_lsn() -> int | None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return lsn_value(cursor.fetchone()[0])


def note_write(reader: str) -> None:
    """Remember the primary's WAL position now as the last write of ``reader``."""
    lsn = primary_lsn()
    timeout = max(60.0, 2 * max_lag_seconds())
    cache.set(CACHE_PREFIX + reader, lsn, timeout)


class _CacheDown(Exception):
    pass


def _noted_write(reader: str) -> int | None:
    before = fail_open_cache.unavailable_count()
    lsn = cache.get(CACHE_PREFIX + reader)
    if fail_open_cache.unavailable_count() != before:
        raise _CacheDown
    return lsn


def _required_lsn() -> int | None:
    """The WAL position a replica must have replayed for this read (None: any)."""
    request = _request.get()
    if request is None:  # a task or a command: everything committed before it began
        return primary_lsn()
    if request.method in UNSAFE_METHODS:  # a write may precede the read in this request
        return primary_lsn()
    reader = _reader_key(request)
    return _noted_write(reader) if reader is not None else None


class ReadYourWritesMiddleware:
    """Knows the request being served (the reader of replica reads) and, after an
    unsafe method, notes the primary's WAL position against the person or API key."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_aliases():
            return self.get_response(request)
        token = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(token)
        if request.method in UNSAFE_METHODS:
            reader = _reader_key(request)
            if reader is not None:
                try:
                    note_write(reader)
                except Exception:  # the write is done; a lost note costs freshness only
                    logger.exception("could not note the write of %s for read-your-writes", reader)
        return response


# --- choosing where a read goes --------------------------------------------------------------
def _choose() -> str:
    aliases = replica_aliases()
    if not aliases or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    usable = [state for state in map(replica_state, aliases) if state.usable]
    if not usable:
        return DEFAULT_DB_ALIAS
    try:
        required = _required_lsn()
    except _CacheDown:
        return DEFAULT_DB_ALIAS
    random.shuffle(usable)
    for state in usable:
        if required is None or (state.replay_lsn or 0) >= required:
            return state.alias
    if _request.get() is None:
        # A task or a command: a replica a moment behind (other writers move the primary
        # on all the time) catches up to the position taken above within milliseconds,
        # so wait for it up to REPLICA_WAIT_SECONDS, as replica_snapshot does.
        return _caught_up_replica(required) or DEFAULT_DB_ALIAS
    for state in usable:  # the remembered position may be old: ask once more
        fresh = probe(state.alias)
        if fresh.usable and required is not None and (fresh.replay_lsn or 0) >= required:
            return fresh.alias
    return DEFAULT_DB_ALIAS


@contextmanager
def _replica_reads() -> Iterator[str]:
    if _read_alias.get() is not None:  # nested: the outer choice holds
        yield _read_alias.get()
        return
    token = _read_alias.set(_choose())
    try:
        yield _read_alias.get()
    finally:
        _read_alias.reset(token)


def reads_from_replica(function: F | None = None) -> Any:
    """``with reads_from_replica() as alias:`` or ``@reads_from_replica``: the reads
    inside may go to a replica (see the module's rules); ``alias`` is where they go."""
    if function is None:
        return _replica_reads()

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _replica_reads():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def read_alias() -> str:
    """Where a read issued now goes (raw SQL takes its connection from here)."""
    alias = _read_alias.get()
    if alias is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return alias


def read_connection() -> BaseDatabaseWrapper:
    """The connection for raw SQL reads issued now: a replica inside
    ``reads_from_replica``, else the primary."""
    return connections[read_alias()]


def wait_seconds() -> float:
    return float(getattr(settings, "REPLICA_WAIT_SECONDS", 0.5))


def _caught_up_replica(target: int | None) -> str | None:
    """A usable replica that has replayed ``target``, waiting up to ``wait_seconds()``."""
    usable = [s.alias for s in map(replica_state, replica_aliases()) if s.usable]
    if not usable or target is None:
        return None
    deadline = time.monotonic() + wait_seconds()
    while True:
        for alias in usable:
            state = probe(alias)
            if state.usable and (state.replay_lsn or 0) >= target:
                return alias
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


@contextmanager
def replica_snapshot() -> Iterator[BaseDatabaseWrapper]:
    """For one long read (an export's server-side cursor, a report's inputs): the
    connection of a replica that has replayed everything the primary had committed when
    this was entered (waiting up to ``REPLICA_WAIT_SECONDS``), else the primary's; in
    a transaction (a savepoint inside the caller's on the primary). The read sees
    what a statement on the primary would have seen then (or later), so this is the one
    replica read allowed inside a primary transaction: wrap only reads whose result
    does not depend on what that transaction wrote."""
    from django.db import transaction

    alias = None
    if replica_aliases():
        try:
            alias = _caught_up_replica(primary_lsn())
        except Exception:  # the primary answers below, or the caller's error is its own
            logger.exception("could not choose a replica; reading the primary")
    alias = alias or DEFAULT_DB_ALIAS
    with transaction.atomic(using=alias):
        yield connections[alias]


def _other_database(hints: dict[str, Any]) -> str | None:
    """The database of the instance a query follows, when it is neither the primary nor
    a replica (a second database a command or a test opened itself): related rows are
    read and written there, as Django does without a router."""
    instance = hints.get("instance")
    alias = getattr(getattr(instance, "_state", None), "db", None)
    if alias and alias != DEFAULT_DB_ALIAS and alias not in replica_aliases():
        return alias
    return None


class ReplicaRouter:
    """Reads go to a replica only inside ``reads_from_replica``; writes, migrations and
    the models of ``PRIMARY_ONLY_MODELS`` stay on the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        if other := _other_database(hints):
            return other
        if model._meta.label_lower in PRIMARY_ONLY_MODELS:
            return DEFAULT_DB_ALIAS
        return read_alias()

    def db_for_write(self, model: type, **hints: Any) -> str:
        return _other_database(hints) or DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        ours = {DEFAULT_DB_ALIAS, *replica_aliases()}
        if obj1._state.db in ours and obj2._state.db in ours:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in replica_aliases() else None
