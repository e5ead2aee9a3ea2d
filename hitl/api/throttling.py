"""Rate limits per caller: per user for people, per API key for machines.

Counters live in the Redis cache, so every web process shares them. A throttled call
answers 429 with ``Retry-After``. When Redis is unreachable the cache fails open
(``hitl.cache``): the counters read as empty and every call is let through, logged and
counted there, never answered 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:  # imported by DRF's settings while rest_framework.views loads
    from rest_framework.request import Request
    from rest_framework.views import APIView


class CallerRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # The rate depends on the caller, so it is chosen in allow_request().
        return None

    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = getattr(request, "api_key", None)
        if api_key is not None:
            self.scope = getattr(view, "throttle_scope", None) or "api_key"
            ident = f"key:{api_key.pk}"
        elif request.user and request.user.is_authenticated:
            self.scope = "user"
            ident = f"user:{request.user.pk}"
        else:
            self.scope = "user"
            ident = f"ip:{self.get_ident(request)}"
        self.rate = self.THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.cache_format % {"scope": self.scope, "ident": ident}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def get_cache_key(
        self, request: Request, view: APIView
    ) -> str | None:  # pragma: no cover - unused
        return None
