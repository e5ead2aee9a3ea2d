"""A typed Python client for a hitl server's experiments API (standard library only).

    from hitl_client import Client, run_experiment

    client = Client.from_env()  # HITL_URL, HITL_API_KEY (a "write" key), HITL_ORG, HITL_PROJECT
    run = run_experiment(
        client,
        dataset_id=1,
        name="prompt v2",
        task=lambda record: my_app(record["input"]),
        scorers={"exact": lambda record, output: float(output == record["expected_output"])},
    )
    print(run.experiment_url, run.compare_url, run.gate and run.gate["verdict"])

``run_experiment`` reads the dataset version's records, runs ``task`` over them on a
few threads (each call retried on an exception), scores each output, posts the results
in batches as they come, finishes the experiment and reads the gate's verdict.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TextIO

# Statuses worth asking again (the server or a proxy was busy or restarting).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BATCH = 1000  # the server's limit per results request


class HitlError(Exception):
    """The server refused a request (``status``, its error ``code`` and ``details``), or
    could not be reached (``status`` 0)."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", details: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


@dataclass
class Client:
    """One project of a hitl server, reached with a project API key."""

    url: str
    api_key: str
    org: str
    project: str
    timeout: float = 30.0
    retries: int = 3  # for a connection error or a busy server, with backoff

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"url must be an http or https address, not {self.url!r}")

    @classmethod
    def from_env(cls, **overrides: Any) -> Client:
        """From HITL_URL, HITL_API_KEY, HITL_ORG and HITL_PROJECT (keywords win)."""
        values = {
            "url": os.environ.get("HITL_URL", ""),
            "api_key": os.environ.get("HITL_API_KEY", ""),
            "org": os.environ.get("HITL_ORG", ""),
            "project": os.environ.get("HITL_PROJECT", ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        missing = [k for k in ("url", "api_key", "org", "project") if not values.get(k)]
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (or HITL_{missing[0].upper()})")
        return cls(**values)

    # --- addresses ----------------------------------------------------------------------
    def _project_path(self) -> str:
        org, project = urllib.parse.quote(self.org), urllib.parse.quote(self.project)
        return f"orgs/{org}/projects/{project}"

    def experiment_url(self, experiment_id: int) -> str:
        """The experiment's page."""
        return f"{self.url}/{self._project_path()}/experiments/{experiment_id}/"

    def compare_url(self, experiment_id: int, baseline_id: int, *, show: str = "changed") -> str:
        """The page comparing the experiment with a baseline, item by item."""
        query = urllib.parse.urlencode({"baseline": baseline_id, "show": show})
        return f"{self.experiment_url(experiment_id)}compare/?{query}"

    # --- requests -----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """``method`` on ``/api/<org and project>/<path>``; the JSON answer, or
        ``HitlError``. A connection error or a busy answer is tried again."""
        url = f"{self.url}/api/{self._project_path()}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retries + 1):
            # The scheme was checked (http or https) in __post_init__.
            request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    raw = response.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                if exc.code in RETRY_STATUSES and attempt < self.retries:
                    _backoff(attempt)
                    continue
                raise _error_of(exc) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt < self.retries:
                    _backoff(attempt)
                    continue
                raise HitlError(f"cannot reach {self.url}: {exc}") from None
        raise AssertionError("unreachable")

    # --- the experiments API ------------------------------------------------------------
    def version_records(
        self, dataset_id: int, version: int, *, page_size: int = 200
    ) -> Iterator[dict[str, Any]]:
        """Every record of a dataset version, in id order, a page at a time."""
        after = ""
        while True:
            page = self.request(
                "GET",
                f"datasets/{dataset_id}/versions/{version}/records/",
                query={"after": after, "limit": page_size},
            )
            yield from page["records"]
            if not page.get("next_after"):
                return
            after = page["next_after"]

    def experiment_create(
        self,
        *,
        dataset_id: int,
        name: str,
        version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A running experiment on the dataset's version (the newest if not given)."""
        body: dict[str, Any] = {"dataset_id": dataset_id, "name": name}
        if version is not None:
            body["version"] = version
        if metadata:
            body["metadata"] = dict(metadata)
        return self.request("POST", "experiments/", body=body)

    def results_post(self, experiment_id: int, results: list[dict[str, Any]]) -> dict[str, Any]:
        """One batch of results (``{id, output, scores, trace_id, error}``, at most 1000);
        posting an item again replaces its result."""
        return self.request(
            "POST", f"experiments/{experiment_id}/results/", body={"results": results}
        )

    def experiment_finish(
        self, experiment_id: int, *, summary: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"summary": dict(summary)} if summary else {}
        return self.request("POST", f"experiments/{experiment_id}/finish/", body=body)

    def compare(self, experiment_id: int, baseline_id: int) -> dict[str, Any]:
        """Per-metric deltas and the regressed and improved items."""
        return self.request(
            "GET", f"experiments/{experiment_id}/compare/", query={"baseline": baseline_id}
        )

    def gate(self, experiment_id: int, *, baseline_id: int | None = None) -> dict[str, Any] | None:
        """The quality gate's verdict on a finished experiment; None when the dataset has
        no gate."""
        try:
            return self.request(
                "GET", f"experiments/{experiment_id}/gate/", query={"baseline": baseline_id}
            )
        except HitlError as exc:
            if exc.code == "no_gate":
                return None
            raise


def _error_of(exc: urllib.error.HTTPError) -> HitlError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    message = error.get("message") or f"the server answered {exc.code}"
    return HitlError(
        f"{message} ({exc.code})",
        status=exc.code,
        code=error.get("code", ""),
        details=error.get("details"),
    )


def _backoff(attempt: int) -> None:
    time.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + random.random()))


# --- running an application over a dataset ---------------------------------------------------
@dataclass
class Outcome:
    """What a task may return instead of a bare output: the output, scores it knows
    already, the trace it wrote (so the result links to it)."""

    output: Any
    scores: dict[str, float] = field(default_factory=dict)
    trace_id: str | None = None


Task = Callable[[dict[str, Any]], Any]
Scorer = Callable[[dict[str, Any], Any], float]


@dataclass
class ExperimentRun:
    """What ``run_experiment`` did: the finished experiment, how many items failed, the
    page addresses and the gate's verdict (None without a gate)."""

    experiment: dict[str, Any]
    posted: int
    failed: int
    experiment_url: str
    compare_url: str | None
    gate: dict[str, Any] | None

    @property
    def passed(self) -> bool | None:
        return None if self.gate is None else bool(self.gate.get("passed"))


class Progress:
    """A one-line progress bar on a terminal (a line per tenth elsewhere)."""

    def __init__(self, total: int, stream: TextIO | None, label: str) -> None:
        self.total, self.stream, self.label = total, stream, label
        self.done = self.failed = 0
        self.lock = threading.Lock()
        self.tty = bool(stream and stream.isatty())
        self.shown_tenth = -1

    def step(self, *, failed: bool) -> None:
        with self.lock:
            self.done += 1
            self.failed += int(failed)
            if self.stream is None:
                return
            width = 30
            filled = width * self.done // max(self.total, 1)
            line = (
                f"{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done}/{self.total}" + (f", {self.failed} failed" if self.failed else "")
            )
            tenth = 10 * self.done // max(self.total, 1)
            if self.tty:
                self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
            elif tenth != self.shown_tenth:
                self.shown_tenth = tenth
                self.stream.write(line + "\n")
            self.stream.flush()


def _run_one(
    task: Task, scorers: Mapping[str, Scorer], record: dict[str, Any], retries: int
) -> dict[str, Any]:
    """One item's result: the task tried ``1 + retries`` times, then scored."""
    error = ""
    for attempt in range(retries + 1):
        try:
            returned = task(record)
            error = ""  # an earlier attempt's failure is not this result's
            break
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if attempt < retries:
                _backoff(attempt)
    else:
        return {"id": record["id"], "output": None, "scores": {}, "error": error[:2000]}
    outcome = returned if isinstance(returned, Outcome) else Outcome(output=returned)
    scores = {name: float(value) for name, value in outcome.scores.items()}
    for name, scorer in scorers.items():
        try:
            scores[name] = float(scorer(record, outcome.output))
        except Exception as exc:
            error = f"scorer {name}: {type(exc).__name__}: {exc}"
    result = {"id": record["id"], "output": outcome.output, "scores": scores}
    if outcome.trace_id:
        result["trace_id"] = outcome.trace_id
    if error:
        result["error"] = error[:2000]
    return result


def run_experiment(
    client: Client,
    *,
    dataset_id: int,
    name: str,
    task: Task,
    scorers: Mapping[str, Scorer] | None = None,
    version: int | None = None,
    baseline_id: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    retries: int = 2,
    batch_size: int = 100,
    progress: TextIO | None = sys.stderr,
) -> ExperimentRun:
    """Creates an experiment on the dataset's version, runs ``task`` over every record
    (``concurrency`` at a time; an exception is retried ``retries`` times, then the item
    is posted with its error), scores each output with ``scorers`` (name -> function of
    the record and the output), posts the results in batches of ``batch_size``,
    finishes the experiment and reads the gate's verdict (against ``baseline_id`` when
    given, else the gate's own baseline)."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size is 1 to {MAX_BATCH}")
    experiment = client.experiment_create(
        dataset_id=dataset_id, name=name, version=version, metadata=metadata
    )
    records = list(client.version_records(dataset_id, experiment["version"]))
    bar = Progress(len(records), progress, name)
    batch: list[dict[str, Any]] = []
    posted = failed = 0

    def flush() -> None:
        nonlocal posted, batch
        if batch:
            client.results_post(experiment["id"], batch)
            posted += len(batch)
            batch = []

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        pending: set[Future] = set()
        queued = iter(records)
        for record in queued:
            pending.add(pool.submit(_run_one, task, scorers or {}, record, retries))
            if len(pending) >= concurrency * 2:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                failed += int(bool(result.get("error")))
                bar.step(failed=bool(result.get("error")))
                batch.append(result)
                if len(batch) >= batch_size:
                    flush()
                record = next(queued, None)
                if record is not None:
                    pending.add(pool.submit(_run_one, task, scorers or {}, record, retries))
    flush()
    finished = client.experiment_finish(
        experiment["id"], summary={"items": len(records), "failed": failed}
    )
    verdict = client.gate(experiment["id"], baseline_id=baseline_id)
    baseline = baseline_id or (verdict or {}).get("baseline")
    return ExperimentRun(
        experiment=finished,
        posted=posted,
        failed=failed,
        experiment_url=client.experiment_url(experiment["id"]),
        compare_url=client.compare_url(experiment["id"], baseline) if baseline else None,
        gate=verdict,
    )
