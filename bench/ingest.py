"""Span ingestion: REST batch and OTLP protobuf through the API versus a raw COPY.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, runs the app under
gunicorn (2 workers) on localhost, generates realistic agent traces (nested spans, chat
messages, tool calls, retrieved documents, 2 to 50 KB per span), then for each API path:

1. empties the trace tables and sends every trace with several concurrent senders,
   timing from the first request until the last response (ingestion is synchronous, so
   every span is stored and queryable then; the script checks the row counts);
2. exports exactly the rows that path stored (``COPY ... TO``), empties the tables and
   times a raw ``COPY ... FROM`` of those same rows into the same tables, with the same
   indexes: the physical limit;
3. prints spans/s for both and the ratio (target: API >= 0.5 x COPY).

    .venv/bin/python bench/ingest.py                 # defaults below, ~3-5 minutes
    .venv/bin/python bench/ingest.py --spans 3000    # a quick run
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.5
WORDS = [
    "refund",
    "order",
    "policy",
    "customer",
    "shipping",
    "invoice",
    "account",
    "delivery",
    "warranty",
    "return",
    "payment",
    "card",
    "address",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "support",
    "agent",
    "ticket",
    "status",
    "product",
    "damaged",
    "replacement",
    "days",
    "within",
    "receipt",
    "email",
    "password",
    "login",
    "error",
    "retry",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "for",
    "with",
    "on",
    "is",
    "was",
    "be",
    "by",
    "as",
    "at",
    "this",
    "that",
    "from",
    "it",
    "we",
    "you",
    "they",
]
MODELS = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4", "anthropic")]


# --- the stack ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack(command: str) -> None:
    subprocess.run(["bash", "-c", f"source {ROOT}/bin/_stack.sh; {command}"], check=True)


def environment(pg_port: int, redis_port: int) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/hitl",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HITL_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "HITL_DB_CONN_MAX_AGE": "600",
        "HITL_SECURE_SSL_REDIRECT": "false",
        "HITL_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "HITL_THROTTLE_INGEST": "1000000/min",
        "HITL_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "hitl.settings",
    }


# --- data ---------------------------------------------------------------------------------
def text(rng: random.Random, size: int) -> str:
    words = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def span_payload(rng: random.Random, kind: str, size: int) -> tuple[object, object]:
    """(input, output) of about ``size`` bytes for a span of ``kind``."""
    if kind == "llm":
        history = [
            {"role": "system", "content": text(rng, min(300, size // 8))},
            *(
                {"role": rng.choice(["user", "assistant"]), "content": text(rng, size // 6)}
                for _ in range(4)
            ),
        ]
        answer = [{"role": "assistant", "content": text(rng, size // 4)}]
        return history, answer
    if kind == "retrieval":
        documents = [
            {"id": f"doc-{rng.randrange(10**6)}", "score": round(rng.random(), 3),
             "content": text(rng, size // 5), "metadata": {"source": "kb", "page": n}}
            for n in range(5)
        ]  # fmt: skip
        return {"query": text(rng, min(80, size // 10))}, documents
    if kind == "tool":
        return (
            {"name": "lookup_order", "arguments": {"order_id": rng.randrange(10**6)}},
            {"result": text(rng, max(size - 200, size // 2)), "status": "ok"},
        )
    return {"task": text(rng, size // 2)}, {"answer": text(rng, size // 2)}


# Agent runs of 8 spans: agent -> llm, tool, retrieval, llm, sub-agent -> (llm, tool).
SHAPE_AGENT = [
    ("agent", None), ("llm", 0), ("tool", 0), ("retrieval", 0), ("llm", 0),
    ("agent", 0), ("llm", 5), ("tool", 5),
]  # fmt: skip
# What an application instrumented with the OpenTelemetry SDK sends for one chat turn
# with a tool call: invoke_agent -> chat, execute_tool, chat.
SHAPE_SDK = [("agent", None), ("llm", 0), ("tool", 0), ("llm", 0)]


def make_traces(
    count_spans: int, seed: int = 7, span_kb: float | None = None, shape: list | None = None
) -> list[dict]:
    """Agent runs of ``shape``; spans of 2 to 50 KB, or of about ``span_kb`` KB."""
    rng = random.Random(seed)
    shape = shape or SHAPE_AGENT
    traces = []
    start = datetime(2026, 11, 1, tzinfo=UTC)
    spans_made = 0
    while spans_made < count_spans:
        trace_id = rng.randbytes(16).hex()
        began = start + timedelta(seconds=len(traces))
        spans = []
        ids = [rng.randbytes(8).hex() for _ in shape]
        for position, (kind, parent) in enumerate(shape):
            if span_kb is None:
                size = rng.randint(2_000, 50_000)
            else:
                size = rng.randint(int(span_kb * 800), int(span_kb * 1200))
            span_input, span_output = span_payload(rng, kind, size)
            model, provider = rng.choice(MODELS) if kind == "llm" else ("", "")
            spans.append({
                "id": ids[position], "trace_id": trace_id,
                "parent_id": ids[parent] if parent is not None else None,
                "kind": kind, "name": f"{kind}-{position}", "model": model,
                "provider": provider, "input": span_input, "output": span_output,
                "start": began + timedelta(milliseconds=100 * position),
                "end": began + timedelta(milliseconds=100 * position + 90),
                "input_tokens": size // 4 if kind == "llm" else 0,
                "output_tokens": size // 16 if kind == "llm" else 0,
                "cost": round(size * 1e-7, 6) if kind == "llm" else None,
            })  # fmt: skip
        traces.append({
            "id": trace_id, "name": "support agent", "session": f"conv-{len(traces) // 3}",
            "input": spans[0]["input"], "output": spans[0]["output"],
            "start": began, "end": spans[-1]["end"], "spans": spans,
        })  # fmt: skip
        spans_made += len(spans)
    return traces


# --- encodings ------------------------------------------------------------------------------
def rest_bodies(traces: list[dict], traces_per_batch: int) -> list[bytes]:
    bodies = []
    for first in range(0, len(traces), traces_per_batch):
        events = []
        for trace in traces[first : first + traces_per_batch]:
            events.append({"type": "trace", "body": {
                "id": trace["id"], "name": trace["name"], "session_id": trace["session"],
                "input": trace["input"], "output": trace["output"],
                "start_time": trace["start"].isoformat(), "end_time": trace["end"].isoformat(),
                "metadata": {"service.name": "support-bot"}, "tags": ["bench"]}})  # fmt: skip
            for span in trace["spans"]:
                body = {
                    "id": span["id"], "trace_id": trace["id"], "kind": span["kind"],
                    "name": span["name"], "input": span["input"], "output": span["output"],
                    "start_time": span["start"].isoformat(), "end_time": span["end"].isoformat(),
                    "input_tokens": span["input_tokens"], "output_tokens": span["output_tokens"],
                    "attributes": {"gen_ai.operation.name": span["kind"]},
                }  # fmt: skip
                if span["parent_id"]:
                    body["parent_id"] = span["parent_id"]
                if span["model"]:
                    body.update(model=span["model"], provider=span["provider"])
                if span["cost"] is not None:
                    body["cost"] = span["cost"]
                events.append({"type": "span", "body": body})
        bodies.append(orjson.dumps({"events": events}))
    return bodies


def otlp_bodies(traces: list[dict], traces_per_batch: int) -> list[bytes]:
    """The same runs as the OpenTelemetry SDK exports them: spans made by an SDK tracer
    (GenAI attributes, span kinds, the SDK's resource) and encoded by its OTLP
    exporter's encoder, ``traces_per_batch`` runs per ``ExportTraceServiceRequest``."""
    from opentelemetry import trace as otel_trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class Ids(IdGenerator):
        """The run's own ids, so both paths store the same traces and spans."""

        def __init__(self) -> None:
            self.trace_id, self.span_ids = 0, []

        def generate_trace_id(self) -> int:
            return self.trace_id

        def generate_span_id(self) -> int:
            return self.span_ids.pop(0)

    def nanos(moment: datetime) -> int:
        return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000

    ids = Ids()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot", "service.version": "1.4.2",
                                  "deployment.environment.name": "prod"}),
        id_generator=ids,
    )  # fmt: skip
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("support_bot.agent", "1.4.2")
    operations = {"llm": "chat", "tool": "execute_tool", "agent": "invoke_agent",
                  "retrieval": "retrieval"}  # fmt: skip
    kinds = {"llm": otel_trace.SpanKind.CLIENT, "retrieval": otel_trace.SpanKind.CLIENT}
    bodies = []
    for first in range(0, len(traces), traces_per_batch):
        for trace in traces[first : first + traces_per_batch]:
            ids.trace_id = int(trace["id"], 16)
            ids.span_ids = [int(span["id"], 16) for span in trace["spans"]]
            made: dict[str, otel_trace.Span] = {}
            for span in trace["spans"]:
                attributes: dict = {
                    "gen_ai.operation.name": operations[span["kind"]],
                    "gen_ai.conversation.id": trace["session"],
                }
                if span["kind"] == "llm":
                    attributes.update({
                        "gen_ai.request.model": span["model"],
                        "gen_ai.provider.name": span["provider"],
                        "gen_ai.usage.input_tokens": span["input_tokens"],
                        "gen_ai.usage.output_tokens": span["output_tokens"],
                        "gen_ai.input.messages": orjson.dumps(span["input"]).decode(),
                        "gen_ai.output.messages": orjson.dumps(span["output"]).decode(),
                        "llm.cost.total": span["cost"],
                    })  # fmt: skip
                elif span["kind"] == "tool":
                    attributes.update({
                        "gen_ai.tool.name": "lookup_order",
                        "gen_ai.tool.call.arguments": orjson.dumps(span["input"]).decode(),
                        "gen_ai.tool.call.result": orjson.dumps(span["output"]).decode(),
                    })  # fmt: skip
                else:
                    attributes.update({
                        "input.value": orjson.dumps(span["input"]).decode(),
                        "output.value": orjson.dumps(span["output"]).decode(),
                    })  # fmt: skip
                parent = made.get(span["parent_id"]) if span["parent_id"] else None
                made[span["id"]] = tracer.start_span(
                    span["name"],
                    context=otel_trace.set_span_in_context(parent) if parent else None,
                    kind=kinds.get(span["kind"], otel_trace.SpanKind.INTERNAL),
                    attributes=attributes,
                    start_time=nanos(span["start"]),
                )
            for span in reversed(trace["spans"]):
                made[span["id"]].set_status(otel_trace.StatusCode.OK)
                made[span["id"]].end(end_time=nanos(span["end"]))
        bodies.append(encode_spans(exporter.get_finished_spans()).SerializeToString())
        exporter.clear()
    return bodies


# --- sending ----------------------------------------------------------------------------------
def send_all(port: int, path: str, bodies: list[bytes], headers: dict, senders: int) -> float:
    """Posts every body with ``senders`` concurrent keep-alive connections; returns
    seconds from the first request to the last response."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def sender() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                if not queue:
                    break
                index, body = queue.pop(0)
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                failures.append(f"batch {index}: {response.status} {answer[:300]!r}")
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit("ingestion failed:\n" + "\n".join(failures[:5]))
    return elapsed


# --- COPY baseline -------------------------------------------------------------------------
TABLES = ("traces_thread", "traces_trace", "traces_span")


def empty_tables(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            "TRUNCATE traces_span, traces_trace, traces_thread RESTART IDENTITY CASCADE"
        )
        connection.execute("CHECKPOINT")


def counts(dsn: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(dsn) as connection:
        spans = connection.execute("SELECT count(*) FROM traces_span").fetchone()[0]
        traces = connection.execute(
            "SELECT count(*) FROM traces_trace WHERE NOT is_placeholder"
        ).fetchone()[0]
    return spans, traces


def export_rows(dsn: str) -> dict[str, bytes]:
    import psycopg

    exported = {}
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        for table in TABLES:
            buffer = io.BytesIO()
            # COPY (SELECT ...): a partitioned table cannot be copied from directly.
            with cursor.copy(f"COPY (SELECT * FROM {table}) TO STDOUT") as copy:
                for chunk in copy:
                    buffer.write(chunk)
            exported[table] = buffer.getvalue()
    return exported


def _copy(dsn: str, parts: list[tuple[str, bytes]]) -> None:
    import psycopg

    chunk = 1024 * 1024
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        for table, data in parts:
            with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                for offset in range(0, len(data), chunk):
                    copy.write(data[offset : offset + chunk])
        connection.commit()


def copy_rows(dsn: str, exported: dict[str, bytes], streams: int = 1) -> float:
    """Seconds to COPY the exported rows back (committed). With several streams, threads
    and traces go first, then the spans are split across concurrent connections."""
    if streams == 1:
        started = time.perf_counter()
        _copy(dsn, [(table, exported[table]) for table in TABLES])
        return time.perf_counter() - started
    lines = exported["traces_span"].splitlines(keepends=True)
    shares = [b"".join(lines[n::streams]) for n in range(streams)]
    started = time.perf_counter()
    _copy(dsn, [("traces_thread", exported["traces_thread"]),
                ("traces_trace", exported["traces_trace"])])  # fmt: skip
    threads = [
        threading.Thread(target=_copy, args=(dsn, [("traces_span", share)])) for share in shares
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's worker processes."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                found.append(int(entry))
    return found


def cpu_seconds(root_pids: list[int]) -> float:
    """User + system CPU seconds of these processes, their live children and the children
    they reaped (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
        if int(entry) in root_pids:
            # Children that exited (COPY's connections) count in their parent's cutime.
            times[int(entry)] += (int(fields[13]) + int(fields[14])) / ticks
    wanted = set(root_pids)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    return sum(times.get(pid, 0.0) for pid in wanted)


# --- main ---------------------------------------------------------------------------------------
def create_tenant() -> str:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from hitl import tenancy
    from hitl.audit import Actor
    from projects import services

    owner = get_user_model().objects.create_user(username="bench", email="bench@example.com")
    organization = services.organization_create(actor=Actor(user=owner), name="Bench", slug="bench")
    with tenancy.tenant_scope(organization.pk):
        project = services.project_create(actor=Actor(user=owner), name="Agent")
        _key, raw = services.api_key_create(
            actor=Actor(user=owner), project=project, name="bench", scopes=["ingest"]
        )
    return raw, organization.slug, project.slug


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=12_000)
    parser.add_argument(
        "--span-kb",
        type=float,
        default=None,
        help="spans of about this size (default: 2 to 50 KB, 29 KB on average)"
        "; implies the SDK shape: 4 spans per run, 100 spans per request",
    )
    parser.add_argument(
        "--spans-per-trace",
        type=int,
        choices=[4, 8],
        default=None,
        help="4: the SDK's chat turn with a tool call; 8: a nested agent run",
    )
    parser.add_argument(
        "--traces-per-batch",
        type=int,
        default=None,
        help="runs per request (default: 10 of 8 spans, 25 of 4 spans)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="record each gunicorn worker with py-spy during the API runs "
        "(collapsed stacks in DIR; pip install py-spy)",
    )
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--toast", choices=["migrated", "lz4", "pglz"], default="migrated",
                        help="TOAST compression of the JSON columns (migrations: lz4)")  # fmt: skip
    args = parser.parse_args()
    if args.spans_per_trace is None:
        args.spans_per_trace = 4 if args.span_kb is not None else 8
    if args.traces_per_batch is None:
        args.traces_per_batch = 100 // args.spans_per_trace if args.spans_per_trace == 4 else 10
    shape = SHAPE_SDK if args.spans_per_trace == 4 else SHAPE_AGENT

    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-ingest."))
    run_dir.chmod(0o755)
    pg_port, redis_port, web_port = free_port(), free_port(), free_port()
    env = environment(pg_port, redis_port)
    os.environ.update(env)
    dsn = env["DATABASE_URL"]
    gunicorn = None
    try:
        print(f"starting PostgreSQL :{pg_port} and Redis :{redis_port} in {run_dir}", flush=True)
        stack(f"start_postgres {run_dir}/pg {pg_port}")
        stack(f"start_redis {run_dir}/redis {redis_port}")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        key, org_slug, project_slug = create_tenant()
        if args.toast != "migrated":
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as connection:
                for table, column in (("traces_span", "input"), ("traces_span", "output"),
                                      ("traces_span", "attributes"), ("traces_trace", "input"),
                                      ("traces_trace", "output")):  # fmt: skip
                    connection.execute(
                        f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {args.toast}"
                    )
        gunicorn = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "hitl.wsgi", "-w", str(args.workers),
             "--threads", str(args.threads),
             "-b", f"127.0.0.1:{web_port}", "--timeout", "300", "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env},
        )  # fmt: skip

        print(f"generating ~{args.spans} spans", flush=True)
        traces = make_traces(args.spans, span_kb=args.span_kb, shape=shape)
        total_spans = sum(len(t["spans"]) for t in traces)
        bodies = {
            "REST batch (JSON)": (
                f"/api/orgs/{org_slug}/projects/{project_slug}/ingest/",
                rest_bodies(traces, args.traces_per_batch),
                {"Content-Type": "application/json"},
            ),
            "OTLP/HTTP (protobuf)": (
                "/v1/traces",
                otlp_bodies(traces, args.traces_per_batch),
                {"Content-Type": "application/x-protobuf"},
            ),
        }
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", web_port, timeout=2).request(
                    "GET", "/healthz"
                )
                break
            except OSError:
                time.sleep(0.2)
        # Warm up both workers (imports, connections) on a throwaway trace.
        warm = rest_bodies(make_traces(16, seed=99, span_kb=args.span_kb, shape=shape), 1)
        warm_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        send_all(web_port, bodies["REST batch (JSON)"][0], warm, warm_headers, 2)

        postmaster = int(Path(f"{run_dir}/pg/postmaster.pid").read_text().split()[0])
        results = []
        for label, (path, path_bodies, headers) in bodies.items():
            empty_tables(dsn)
            megabytes = sum(len(b) for b in path_bodies) / 1e6
            web_cpu, db_cpu = cpu_seconds([gunicorn.pid]), cpu_seconds([postmaster])
            profilers = []
            if args.profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                slug = label.split()[0].lower().replace("/", "")
                for worker in worker_pids(gunicorn.pid):
                    profilers.append(subprocess.Popen(
                        [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(worker),
                         "--format", "raw", "--rate", "200", "--nonblocking",
                         "-o", f"{args.profile}/{slug}-{worker}.txt"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    ))  # fmt: skip
                time.sleep(1.0)
            elapsed = send_all(
                web_port, path, path_bodies, {**headers, "Authorization": f"Bearer {key}"},
                args.senders,
            )  # fmt: skip
            for profiler in profilers:
                profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
                profiler.wait(timeout=60)
            web_cpu = cpu_seconds([gunicorn.pid]) - web_cpu
            db_cpu = cpu_seconds([postmaster]) - db_cpu
            stored_spans, stored_traces = counts(dsn)
            assert stored_spans == total_spans, (label, stored_spans, total_spans)
            assert stored_traces == len(traces), (label, stored_traces, len(traces))
            exported = export_rows(dsn)
            copies = []
            for streams in (1, 2):
                empty_tables(dsn)
                before = cpu_seconds([postmaster])
                copies.append(copy_rows(dsn, exported, streams))
                if streams == 1:
                    copy_db_cpu = cpu_seconds([postmaster]) - before
                assert counts(dsn)[0] == total_spans
            stored_mb = sum(len(v) for v in exported.values()) / 1e6
            results.append(
                (label, elapsed, copies, megabytes, stored_mb, web_cpu, db_cpu, copy_db_cpu)
            )

        size = "2 to 50 KB" if args.span_kb is None else f"about {args.span_kb:g} KB"
        print()
        print(f"{total_spans} spans of {size} in {len(traces)} traces of {args.spans_per_trace}, "
              f"{args.traces_per_batch} traces ({args.traces_per_batch * args.spans_per_trace} "
              f"spans) per request, {args.senders} concurrent senders, gunicorn "
              f"{args.workers} workers x {args.threads} threads, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"{'path':<22} {'API spans/s':>11} {'COPY spans/s':>12} {'ratio':>6} "
              f"{'COPYx2 spans/s':>14} {'ratio':>6} {'sent MB':>8} {'stored MB':>9} "
              f"{'web ms/span':>11} {'db ms/span':>10} {'COPY db ms/span':>15}  ok?")  # fmt: skip
        for label, elapsed, copies, megabytes, stored_mb, web_cpu, db_cpu, copy_cpu in results:
            api_rate = total_spans / elapsed
            copy_rate, copy2_rate = (total_spans / seconds for seconds in copies)
            ratio, ratio2 = api_rate / copy_rate, api_rate / copy2_rate
            verdict = "ok" if ratio >= TARGET_RATIO else f"below {TARGET_RATIO}"
            print(f"{label:<22} {api_rate:>11.0f} {copy_rate:>12.0f} {ratio:>6.2f} "
                  f"{copy2_rate:>14.0f} {ratio2:>6.2f} {megabytes:>8.1f} {stored_mb:>9.1f} "
                  f"{1000 * web_cpu / total_spans:>11.3f} {1000 * db_cpu / total_spans:>10.3f}"
                  f" {1000 * copy_cpu / total_spans:>15.3f}  {verdict}")  # fmt: skip
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        stack(f"stop_postgres {run_dir}/pg; stop_redis {run_dir}/redis")
        time.sleep(0.5)  # let Redis exit before its directory goes
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
