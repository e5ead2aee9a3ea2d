"""What each pytest process of a parallel run (pytest-xdist, ``bin/test`` with no test
paths) needs of its own, set before Django's settings load.

Loaded with ``-p tests.parallel`` (pyproject's addopts), so it runs in the controller and
in every worker before pytest-django reads ``hitl.settings``:

- the Redis database: worker ``gwN`` uses database N + 1 of the test Redis (throttle
  counters, the cache, the Celery broker of the real worker fixture and its queues), the
  controller and a run without workers keep the database in ``REDIS_URL``;
- the export directory: a temporary directory per process instead of ``.run/exports``;
- the test database: pytest-django already names it ``test_hitl_gwN``.

The record of exercised API writes (tests/write_coverage.py) is merged by the controller.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_number() -> int | None:
    """0 for gw0, 1 for gw1 ...; None outside a worker."""
    match = re.fullmatch(r"gw(\d+)", WORKER)
    return int(match.group(1)) if match else None


def redis_url_for_worker(url: str, number: int) -> str:
    """The same Redis with database ``number + 1`` (the suite's own database is 0)."""
    base, _, _ = url.partition("?")
    query = url[len(base) :]
    head = re.sub(r"/\d*$", "", base) if re.search(r"//[^/]+/\d*$", base) else base
    return f"{head}/{number + 1}{query}"


def _isolate() -> None:
    number = worker_number()
    if number is not None:
        for name in ("REDIS_URL", "CELERY_BROKER_URL"):
            if os.environ.get(name):
                os.environ[name] = redis_url_for_worker(os.environ[name], number)
    given = os.environ.get("HITL_EXPORT_DIR", "")
    # A directory the caller chose is kept; one made by the controller is not shared.
    if not given or given == os.environ.get("HITL_TEST_EXPORT_DIR_MADE"):
        directory = tempfile.mkdtemp(prefix=f"hitl-exports-{WORKER or 'main'}-")
        os.environ["HITL_EXPORT_DIR"] = os.environ["HITL_TEST_EXPORT_DIR_MADE"] = directory
        _made.append(directory)


_made: list[str] = []
_isolate()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has an id of its own, or the run stops. pytest-xdist schedules tests by
    id, so tests sharing one run as one: schemathesis names its tests per operation
    (``test_no_server_error_as_an_admin[GET /api/orgs/]``) but, on this pytest, leaves
    each the function's id, and under xdist the fuzz ran one operation of 174 per
    function. The name's operation is put back into the id."""
    for item in items:
        node_id = item._id
        base, _, params = item.name.partition("[")
        if node_id.params is None and params.endswith("]") and base == node_id.names[-1]:
            item._id = node_id.with_params(params[:-1])
    shared = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    if shared:
        raise pytest.UsageError(f"tests sharing an id (xdist would run one): {shared[:5]}")


def pytest_unconfigure(config) -> None:
    for directory in _made:
        shutil.rmtree(directory, ignore_errors=True)


# Requests and pages the walkers made, summed over every worker: a walker test records
# ``record_property("walked:<what>", count)``, the report carries it to the controller.
_walked: dict[str, int] = {}


def pytest_runtest_logreport(report) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if isinstance(name, str) and name.startswith("walked:"):
            _walked[name[len("walked:") :]] = _walked.get(name[len("walked:") :], 0) + value


def pytest_terminal_summary(terminalreporter) -> None:
    if _walked:
        terminalreporter.write_sep("-", "requests and pages walked")
        for what, count in sorted(_walked.items()):
            terminalreporter.write_line(f"{what}: {count}")
