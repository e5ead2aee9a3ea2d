"""The Redis cache, failing open.

Redis holds only what may be lost: throttle and login rate-limit counters and cached
values. When it cannot be reached, every cache call behaves as if the cache were empty
and writes were dropped: reads return their default, writes do nothing, ``add`` reports
success (a lock taken on a dead cache protects nothing, and waiting for one would turn
every caller away). So DRF throttles and allauth's rate limits let calls through instead
of answering 500 or 429.

Each failure is logged as ``cache unavailable, failing open`` and counted
(:func:`unavailable_count`). After a failure the cache is left alone for
``RETRY_AFTER`` seconds (a setting of the cache alias, default 5), so a dead or
unroutable Redis costs a request nothing, not a connect timeout per call.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 5.0

_lock = threading.Lock()
_unavailable = 0
# Per Redis location: the monotonic time before which the cache is not tried again.
_down_until: dict[str, float] = {}


def unavailable_count() -> int:
    """Cache calls answered without Redis since the process started."""
    return _unavailable


def _count() -> None:
    global _unavailable
    with _lock:
        _unavailable += 1


def _failing_open(default: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: FailOpenRedisCache, *args: Any, **kwargs: Any) -> Any:
            def fallback() -> Any:
                return default(*args, **kwargs) if callable(default) else default

            if _down_until.get(self._location, 0.0) > time.monotonic():
                _count()
                return fallback()
            try:
                return method(self, *args, **kwargs)
            except (RedisError, OSError) as exc:
                _down_until[self._location] = time.monotonic() + self._retry_after
                _count()
                logger.warning(
                    "cache unavailable, failing open: %s (%s); not retried for %ss",
                    type(exc).__name__,
                    method.__name__,
                    self._retry_after,
                )
                return fallback()

        return wrapper

    return decorate


def _get_default(key: str, default: Any = None, version: int | None = None) -> Any:
    return default


def _no_keys(*args: Any, **kwargs: Any) -> dict:
    return {}


def _all_keys(data: dict, *args: Any, **kwargs: Any) -> list:
    return list(data)


def _missing(key: str, *args: Any, **kwargs: Any) -> None:
    raise ValueError(f"Key '{key}' not found")


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache; an unreachable Redis reads as an empty cache."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._location = server if isinstance(server, str) else ",".join(server)
        self._retry_after = float(params.get("RETRY_AFTER", DEFAULT_RETRY_AFTER))

    add = _failing_open(True)(RedisCache.add)
    get = _failing_open(_get_default)(RedisCache.get)
    set = _failing_open(None)(RedisCache.set)
    touch = _failing_open(False)(RedisCache.touch)
    delete = _failing_open(False)(RedisCache.delete)
    get_many = _failing_open(_no_keys)(RedisCache.get_many)
    has_key = _failing_open(False)(RedisCache.has_key)
    set_many = _failing_open(_all_keys)(RedisCache.set_many)
    delete_many = _failing_open(None)(RedisCache.delete_many)
    clear = _failing_open(None)(RedisCache.clear)
    incr = _failing_open(_missing)(RedisCache.incr)
