"""Runs calls at the same moment from real threads, each on its own database connection.

Used by the race tests: every call waits at a barrier, then all go together, so two
requests really meet in PostgreSQL. Needs ``transactional_db`` (rows the threads read
must be committed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import connections


def at_once(*calls: Callable[[], Any], timeout: float = 30) -> list[Any]:
    """The results of ``calls``, run concurrently, in the order given; re-raises the
    first exception a call raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = call()
        except BaseException as exc:  # reported by the caller's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError("a concurrent call did not finish")
    if errors:
        raise errors[0]
    return results


def send_at_once(*requests: tuple[Any, str, str, Any]) -> list[Any]:
    """Sends ``(client, method, url, body)`` requests at the same moment; the responses
    in the order given."""
    return at_once(
        *(
            partial(getattr(client, method), url, body, format="json")
            for client, method, url, body in requests
        )
    )


def assert_one_created_one_conflict(responses: list[Any], field: str) -> None:
    """Two racing creates of the same name: one 201, the other 409 in the error shape,
    naming ``field``."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [(r.status_code, r.content) for r in responses]
    [loser] = [r for r in responses if r.status_code == 409]
    error = loser.json()["error"]
    assert error["message"] and error["request_id"] == loser["X-Request-Id"]
    assert error["details"] == {field: ["taken"]}, error
