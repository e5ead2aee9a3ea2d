"""One small transport per destination kind, each with one ``send()``.

``WebhookTransport`` posts the event as JSON signed per the Standard Webhooks
specification; ``SlackTransport`` posts a short message for people to a Slack incoming
webhook, at most ``HITL_SLACK_RATE_PER_SECOND`` per webhook after a burst of
``HITL_SLACK_BURST`` (:class:`SlackRateLimiter`). :func:`slack_direct_message` writes
to one person with a Slack app's bot token (per-user preferences).

Every request goes through :func:`http_post`: the URL is checked by the SSRF guard
after resolution and the connection goes to the checked address (the name is kept for
the Host header and for TLS: SNI and the certificate check). Redirects are never
followed. Each request has a connect timeout and a total deadline (a watchdog closes the
socket when it passes, so a server that answers one byte at a time cannot hold a worker).

A failed send raises :class:`TransportError`, which says whether another attempt may
succeed (timeouts, connection errors, 429, 5xx), when (``Retry-After``), and whether the
destination should be disabled (410 Gone; Slack's "no such webhook").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import redis
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error

from projects.models import Destination, DestinationKind, Event
from projects.notifications import ssrf

logger = logging.getLogger(__name__)

USER_AGENT = "hitl-webhooks/1"
EXCERPT_BYTES = 1000
SLACK_TEXT_LIMIT = 3000  # a section's text limit; also well under a message's 40,000
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


# --- secrets and signatures (Standard Webhooks) ------------------------------------------


def secret_generate() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the secret's base64 part."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- one HTTP request, to the checked address ---------------------------------------------


@dataclass
class HttpResult:
    status_code: int
    latency_ms: int
    excerpt: str
    headers: dict[str, str] = field(default_factory=dict)


class TransportError(Exception):
    """A send that failed. ``retryable``: another attempt may succeed (after
    ``retry_after`` seconds if the receiver said so); ``disable``: stop sending to this
    destination at all."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        disable: bool = False,
        status_code: int | None = None,
        latency_ms: int = 0,
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.disable = disable
        self.status_code = status_code
        self.latency_ms = latency_ms
        self.excerpt = excerpt
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def http_post(url: str, *, kind: str, body: bytes, headers: dict[str, str]) -> HttpResult:
    """POSTs ``body`` to ``url`` once; raises :class:`TransportError` unless it answers 2xx.

    The URL is checked (and resolved) now, and the request connects to the address that
    was checked. Never follows a redirect."""
    try:
        target = ssrf.check_url(url, kind=kind)
    except ssrf.Unresolvable as exc:
        raise TransportError(exc.message, retryable=True) from None
    except ssrf.UnsafeDestination as exc:
        raise TransportError(exc.message) from None
    connect_timeout = settings.HITL_WEBHOOKS_CONNECT_TIMEOUT
    total_timeout = settings.HITL_WEBHOOKS_TIMEOUT
    started = time.monotonic()
    conn: HTTPConnection
    if target.scheme == "https":
        conn = HTTPSConnection(
            target.address,
            target.port,
            timeout=connect_timeout,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        conn = HTTPConnection(target.address, target.port, timeout=connect_timeout)
    expired = threading.Event()

    def watchdog() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(total_timeout, watchdog)
    timer.daemon = True

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        timer.start()
        conn.connect()
        conn.timeout = max(0.01, total_timeout - (time.monotonic() - started))
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
            },
            preload_content=False,
            decode_content=False,
        )
        response = conn.getresponse()
        raw = response.read(EXCERPT_BYTES, decode_content=False)
        status = response.status
        response_headers = {k.lower(): v for k, v in response.headers.items()}
    except (OSError, Urllib3Error, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError | socket.timeout):
            message = f"timed out ({'total ' if expired.is_set() else ''}{type(exc).__name__})"
        else:
            message = f"connection failed: {type(exc).__name__}: {exc}"
        raise TransportError(message[:500], retryable=True, latency_ms=elapsed_ms()) from None
    finally:
        timer.cancel()
        conn.close()
    latency = elapsed_ms()
    excerpt = raw.decode("utf-8", "replace")[:EXCERPT_BYTES]
    if 200 <= status < 300:
        return HttpResult(status, latency, excerpt, response_headers)
    details: dict[str, Any] = {"status_code": status, "latency_ms": latency, "excerpt": excerpt}
    if status == 410:
        raise TransportError("410 Gone: the receiver asked us to stop", disable=True, **details)
    if status == 429:
        raise TransportError(
            "429 Too Many Requests",
            retryable=True,
            retry_after=_retry_after(response_headers.get("retry-after")),
            **details,
        )
    if status >= 500 or status == 408:
        raise TransportError(
            f"{status} from the receiver",
            retryable=True,
            retry_after=_retry_after(response_headers.get("retry-after")),
            **details,
        )
    if 300 <= status < 400:
        raise TransportError(f"{status}: redirects are not followed", **details)
    raise TransportError(f"{status} from the receiver", **details)


# --- transports --------------------------------------------------------------------------


class Transport:
    kind: ClassVar[str]

    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    def send(self, event: Event) -> HttpResult:
        raise NotImplementedError


def webhook_body(event: Event) -> bytes:
    """The JSON a webhook receives (the Standard Webhooks payload shape)."""
    return json.dumps(
        {
            "type": event.type,
            "timestamp": event.created_at.isoformat(),
            "data": event.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class WebhookTransport(Transport):
    kind = DestinationKind.WEBHOOK

    def send(self, event: Event) -> HttpResult:
        body = webhook_body(event)
        timestamp = int(time.time())
        signatures = [
            signature(secret, message_id=event.uid, timestamp=timestamp, body=body)
            for secret in self.destination.signing_secrets()
        ]
        headers = {
            "webhook-id": event.uid,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signatures),
        }
        return http_post(self.destination.url, kind=self.kind, body=body, headers=headers)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(event: Event) -> str:
    """A sentence for people, with a link back into the site, within Slack's limits."""
    payload = event.payload
    summary = _slack_escape(str(payload.get("summary") or event.type))
    url = str(payload.get("url") or "")
    link = f" <{url}|Open in hitl>" if url and "|" not in url and ">" not in url else ""
    room = SLACK_TEXT_LIMIT - len(link)
    if len(summary) > room:
        summary = summary[: room - 1] + "…"
    return summary + link


class SlackTransport(Transport):
    kind = DestinationKind.SLACK

    def send(self, event: Event) -> HttpResult:
        body = json.dumps({"text": slack_text(event)}).encode()
        try:
            return http_post(self.destination.url, kind=self.kind, body=body, headers={})
        except TransportError as exc:
            # Slack answers 404 no_service / 403 invalid_token for a deleted webhook.
            if exc.status_code in (403, 404) and any(
                word in exc.excerpt for word in ("no_service", "invalid_token", "no_team")
            ):
                exc.disable = True
            raise


SLACK_API_URL = "https://slack.com/api"
# Slack Web API errors worth trying again (the others will fail again).
SLACK_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def slack_direct_message(token: str, *, member_id: str, event: Event) -> HttpResult:
    """Posts the event's sentence to one person (``chat.postMessage`` to their member id)
    with a Slack app's bot token. Slack answers 200 with ``"ok": false`` for most
    errors; those raise :class:`TransportError` too."""
    api = getattr(settings, "HITL_SLACK_API_URL", SLACK_API_URL).rstrip("/")
    body = json.dumps({"channel": member_id, "text": slack_text(event)}).encode()
    result = http_post(
        f"{api}/chat.postMessage",
        kind=DestinationKind.SLACK,
        body=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    # The excerpt is the answer's first 1,000 bytes: enough for "ok" and "error", which
    # Slack writes first, not always for the whole JSON.
    if not re.search(r'"ok"\s*:\s*true', result.excerpt):
        found = re.search(r'"error"\s*:\s*"([^"]{1,100})"', result.excerpt)
        error = found.group(1) if found else "not ok"
        raise TransportError(
            f"Slack answered {error}",
            retryable=error in SLACK_RETRYABLE_ERRORS,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            excerpt=result.excerpt,
        )
    return result


TRANSPORTS: dict[str, type[Transport]] = {
    DestinationKind.WEBHOOK: WebhookTransport,
    DestinationKind.SLACK: SlackTransport,
}


def transport_for(destination: Destination) -> Transport:
    return TRANSPORTS[destination.kind](destination)


# --- Slack's rate: one message a second per webhook, with a burst ------------------------

# GCRA: the key holds the "theoretical arrival time" of the next message. ARGV[3] says
# how a slot is taken: "reserve" takes the next slot whatever it is and answers how long
# to wait for it (0: send now); "admit" takes it only if sending now conforms, and
# otherwise answers how long until it would, taking nothing.
_GCRA = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or t)
if tat < t then tat = t end
local wait = tat - (burst - 1) * interval - t
if wait < 0 then wait = 0 end
if wait > 0 and ARGV[3] == 'admit' then return tostring(wait) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil((next_tat - t) * 1000) + 1000)
return tostring(wait)
"""


class SlackRateLimiter:
    """Send slots per destination: ``burst`` at once, then one per interval.

    Two clocks. :meth:`reserve` hands out slots when messages are scheduled, so a burst
    is spread over time instead of retried in a herd. :meth:`admit` is asked right
    before each request and takes a slot only if sending now conforms: a worker that
    runs several scheduled messages late cannot send them back to back, so the rate
    holds where it matters, at the receiver.

    Slots live in Redis, shared by every worker. If Redis cannot be reached, each
    process falls back to buckets of its own (same rate, per process): a degraded
    limit, never a lost message; and a 429 from Slack is retried after its
    ``Retry-After`` anyway.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: dict[str, float] = {}  # bucket -> next slot, while Redis is away
        self._client: redis.Redis | None = None
        self._script: Any = None
        self._url = ""
        self.fallbacks = 0

    def _connect(self) -> None:
        if self._script is None or self._url != settings.REDIS_URL:
            self._url = settings.REDIS_URL
            self._client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=settings.CACHES["default"]
                .get("OPTIONS", {})
                .get("socket_connect_timeout", 0.25),
                socket_timeout=0.5,
            )
            self._script = self._client.register_script(_GCRA)

    @staticmethod
    def _params() -> tuple[float, int]:
        return 1.0 / settings.HITL_SLACK_RATE_PER_SECOND, max(1, settings.HITL_SLACK_BURST)

    def admit(self, key: str) -> float:
        """0 (and the slot is taken) if a message under ``key`` may be sent now;
        otherwise the seconds until it may (nothing taken)."""
        return self._take(f"hitl:slack-sent:{key}", admit=True)

    def reserve(self, key: str) -> float:
        """Seconds to wait before sending the next message under ``key``."""
        return self._take(f"hitl:slack-rate:{key}", admit=False)

    def _take(self, bucket: str, *, admit: bool) -> float:
        interval, burst = self._params()
        try:
            self._connect()
            mode = "admit" if admit else "reserve"
            return float(self._script(keys=[bucket], args=[interval, burst, mode]))
        except redis.RedisError as exc:
            self.fallbacks += 1
            logger.warning("slack rate limiter: redis unavailable, limiting per process (%s)", exc)
        with self._lock:  # the same arithmetic, in this process only
            now = time.monotonic()
            tat = max(self._local.get(bucket, now), now)
            wait = max(0.0, tat - (burst - 1) * interval - now)
            if wait > 0 and admit:
                return wait
            self._local[bucket] = tat + interval
            return wait


slack_rate_limiter = SlackRateLimiter()
