"""What people (and scripts) send wrong into page forms, and how to send it: shared by
the form walkers of each app."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.test import Client

NUL = "a\x00b"
BAD_UTF8 = object()  # sent as the bytes ED A0 80: a lone surrogate's would-be UTF-8
HUGE = "9" * 30
UNSTORABLE = ["a\x00b", "a\ud800b"]  # for forms called without the middleware
# A page module reading request input by hand rather than through a form.
HAND_READ = re.compile(r"request\.(POST|GET)\s*(\[|\.(get|getlist|dict|lists|items|keys)\b)")


def encoded(data: dict[str, Any]) -> str:
    """``data`` as a form body or query string; ``BAD_UTF8`` as its raw bytes."""
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, "@BAD@" if item is BAD_UTF8 else item))
    return urlencode(pairs).replace("%40BAD%40", "%ED%A0%80")


def send(client: Client, method: str, url: str, data: dict[str, Any]) -> Any:
    """A page's GET or form POST, as a browser sends it."""
    if method == "get":
        return client.get(f"{url}?{encoded(data)}", HTTP_ACCEPT="text/html")
    return client.post(
        url,
        encoded(data),
        content_type="application/x-www-form-urlencoded",
        HTTP_ACCEPT="text/html",
    )


def messages_of(response: Any) -> str:
    """The messages a page showed, as one text."""
    return " ".join(str(m) for m in response.context["messages"])
