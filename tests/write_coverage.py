"""Records which API write operations a test saw succeed and read the answer of.

The test client's ``request`` is wrapped: a 2xx answer to a POST, PUT, PATCH or DELETE
is marked with its operation (the method and the URL pattern it resolved to, in the
OpenAPI schema's path form), and when a test reads that answer's body
(``response.json()``, ``response.data``, ``response.content``, ``streaming_content``)
the operation is recorded as exercised. ``tests/test_write_coverage.py`` runs last and
fails, listing them, if a write operation of the schema was never exercised that way:
an operation that stores its row and then fails to answer (the 500 of a broken
serializer) cannot slip through untested.

The hooks are imported into ``tests/conftest.py``; a partial run (a path, ``-k``,
``--deselect``) skips the check, since it cannot see every test.

Under pytest-xdist each worker sees only its share of the tests: a worker writes what it
recorded to a file of its own, and the controller, once every worker has finished,
merges the files and runs the same check, failing the session (exit status 1) and
listing the operations if a write was never exercised.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.test.client import Client

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
BODY_ATTRIBUTES = {"json", "data", "content", "streaming_content", "text"}
TESTS_DIR = Path(__file__).resolve().parent
CHECK_MODULE = "test_write_coverage.py"

# (METHOD, "api/orgs/<>/members/<>/") -> the first test that read such an answer.
exercised: dict[tuple[str, str], str] = {}
_state: dict[str, Any] = {"current": "", "partial": None, "deselected": 0, "installed": False}


def operation_key(template: str) -> str:
    """A URL pattern or a schema path with every parameter as ``<>``."""
    template = re.sub(r"\(\?P<\w+>[^)]*\)", "<>", template)
    template = re.sub(r"\{[^}]+\}", "<>", template)
    template = re.sub(r"<[^<>]*>", "<>", template)
    return template.replace("^", "").replace("$", "").replace("\\", "").lstrip("/")


@functools.cache
def _tracked_class(cls: type) -> type:
    def __getattribute__(self: Any, name: str) -> Any:
        if name in BODY_ATTRIBUTES:
            key = object.__getattribute__(self, "_write_operation")
            exercised.setdefault(key, _state["current"])
        return cls.__getattribute__(self, name)

    return type(cls.__name__, (cls,), {"__getattribute__": __getattribute__})


_original_request = Client.request


def _recording_request(self: Client, **request: Any) -> Any:
    response = _original_request(self, **request)
    method = str(request.get("REQUEST_METHOD", "")).upper()
    match = getattr(response, "resolver_match", None)
    if method in WRITE_METHODS and 200 <= response.status_code < 300 and match is not None:
        response._write_operation = (method, operation_key(match.route or ""))
        try:
            response.__class__ = _tracked_class(type(response))
        except TypeError:  # a response class whose layout refuses a subclass
            exercised.setdefault(response._write_operation, _state["current"])
    return response


def install() -> None:
    """Wraps the test client (Django's, and DRF's, which calls it)."""
    Client.request = _recording_request
    _state["installed"] = True


def schema_write_operations() -> list[tuple[str, str, str]]:
    """(METHOD, schema path, key) of every write operation in the OpenAPI schema."""
    from tests.hostile import api_schema

    return [
        (method.upper(), path, operation_key(path))
        for path, item in api_schema()["paths"].items()
        for method in item
        if method.upper() in WRITE_METHODS
    ]


def not_exercised(operations: list[tuple[str, str, str]] | None = None) -> list[str]:
    return [
        f"{method} {path}"
        for method, path, key in (schema_write_operations() if operations is None else operations)
        if (method, key) not in exercised
    ]


def partial_run_reason() -> str | None:
    return _state["partial"]


RECORD_DIR_ENV = "HITL_WRITE_COVERAGE_DIR"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_controller(config: pytest.Config) -> bool:
    """The process that hands tests to xdist workers and runs none itself."""
    return not _is_worker(config) and bool(getattr(config.option, "numprocesses", None))


def in_worker() -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def merge_records(directory: Path) -> tuple[set[tuple[str, str]], str | None, int]:
    """(operations exercised by any worker, why the run was partial, workers read)."""
    seen: set[tuple[str, str]] = set()
    partial: str | None = None
    files = sorted(directory.glob("*.json"))
    for path in files:
        record = json.loads(path.read_text())
        seen.update((method, key) for method, key in record["exercised"])
        partial = partial or record["partial"]
    return seen, partial, len(files)


# ------------------------------------------------------------------ hooks (see conftest)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _state["deselected"] += len(items)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    install()
    checks = [item for item in items if item.path.name == CHECK_MODULE]
    # The check runs last, whatever order the other plugins chose.
    items[:] = [item for item in items if item.path.name != CHECK_MODULE] + checks
    collected = {item.path.resolve() for item in items}
    every_file = set(TESTS_DIR.rglob("test_*.py"))
    missing = every_file - collected
    if _state["deselected"]:
        _state["partial"] = f"{_state['deselected']} tests deselected: a partial run"
    elif missing:
        _state["partial"] = (
            f"{len(missing)} of {len(every_file)} test files not collected: a partial run"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    _state["current"] = item.nodeid


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config):
        # Made before the workers start, so they inherit where to write their records.
        directory = tempfile.mkdtemp(prefix="hitl-write-coverage-")
        os.environ[RECORD_DIR_ENV] = directory
        _state["record_dir"] = directory


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_controller(session.config):
        # Read now, from the code the workers test (not the tree as it is at the end).
        _state["operations"] = schema_write_operations()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker writes its record for the controller; the controller merges them and
    runs the check. With HITL_WRITE_COVERAGE_REPORT set, the operations not exercised
    are written to that file, even when the run stopped early (what it saw so far)."""
    config = session.config
    target = os.environ.get("HITL_WRITE_COVERAGE_REPORT")
    if _is_worker(config):
        directory = os.environ.get(RECORD_DIR_ENV)
        if directory and _state["installed"]:
            record = {"exercised": sorted(exercised), "partial": _state["partial"]}
            worker = os.environ.get("PYTEST_XDIST_WORKER", "worker")
            Path(directory, f"{worker}.json").write_text(json.dumps(record))
        return
    if _is_controller(config):
        _controller_check(session, target)
        return
    if target and _state["installed"]:
        Path(target).write_text("\n".join(not_exercised()) + "\n")


def _controller_check(session: pytest.Session, target: str | None) -> None:
    directory = Path(_state.get("record_dir") or os.environ.get(RECORD_DIR_ENV, ""))
    if not directory.is_dir():
        return
    seen, partial, workers = merge_records(directory)
    for path in directory.glob("*.json"):
        path.unlink()
    directory.rmdir()
    if not workers:
        return
    exercised.update(dict.fromkeys(seen, "a worker"))
    stopped = session.shouldfail or session.shouldstop
    missing = not_exercised(_state.get("operations"))
    if target:
        Path(target).write_text("\n".join(missing) + "\n")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str, **markup: bool) -> None:
        if reporter is not None:
            reporter.write_line(line, **markup)

    if partial or stopped:
        why = partial or "the run stopped early"
        say(f"write coverage (merged from {workers} workers): not checked, {why}")
        return
    if missing:
        say(
            f"write coverage FAILED (merged from {workers} workers): {len(missing)} API write "
            "operations have no test that reads the body of a 2xx answer; add a "
            "success-path test asserting the body to the app's tests:",
            red=True,
            bold=True,
        )
        for line in missing:
            say(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    say(f"write coverage: every API write exercised (merged from {workers} workers)", green=True)
