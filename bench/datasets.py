"""Datasets: export of a 1,000,000-item version (JSONL, Parquet, CSV), import of 100,000
JSONL rows with validation, and the diff of two 100,000-item versions.

Starts a throwaway PostgreSQL and Redis (bin/_stack.sh), migrates, and creates an
organization, a project and the datasets. Then:

1. **Export**: 1,000,000 revisions of one dataset (records of about 1 KB: a
   question, an expected answer, metadata, tags, two reviewers' answers and
   explanations, a failure reason) are loaded with ``COPY`` straight into
   ``datasets_datasetitemrevision`` plus its ``DatasetVersion`` row (an export reads
   only the revisions of the version; the ``DatasetItem`` rows are not loaded). Each
   format is exported by ``datasets.services.export_version`` into a file, each in a
   fresh child process, which reports its own wall time and peak RSS
   (``ru_maxrss``): the export path a worker runs, minus the outbox hop.
2. **Import**: 100,000 JSONL rows into a new dataset that has a JSON Schema for
   ``input``, ``expected_output`` and ``metadata``, through ``datasets.services.
   dataset_import`` (parse, validate every row against the schema, duplicate ids,
   items with history, revisions, one version); then a second file changing every
   row (the update path: read, compare hashes, write, close the old revisions).
3. **Diff**: ``datasets.selectors.version_diff`` of those two 100,000-item versions
   (every item changed, the worst case: it reads all 200,000 revisions), and of two
   versions 1 and 2 of the 1M dataset after a change of 1,000 items.

    .venv/bin/python bench/datasets.py
    .venv/bin/python bench/datasets.py --items 200000 --import-rows 20000   # quick

Budgets: export >= 20,000 items/s (JSONL and Parquet) with peak RSS < 300 MB; import
of 100,000 rows < 30 s; diff of two 100,000-item versions < 5 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = {
    "input": {
        "type": "object",
        "required": ["question"],
        "properties": {"question": {"type": "string"}, "patient_age": {"type": "integer"}},
    },
    "expected_output": {"type": "object", "required": ["answer"]},
    "metadata": {"type": "object", "properties": {"specialty": {"type": "string"}}},
}


def stack(command: str) -> None:
    subprocess.run(["bash", "-c", f"source {ROOT}/bin/_stack.sh; {command}"], check=True, cwd=ROOT)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(pg_port: int, redis_port: int, export_dir: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/hitl",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HITL_SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
        "HITL_SECURE_SSL_REDIRECT": "false",
        "HITL_SECURE_COOKIES": "false",
        "HITL_EMAIL_URL": "consolemail://",
        "HITL_LOG_LEVEL": "WARNING",
        "HITL_EXPORT_DIR": export_dir,
        "DJANGO_SETTINGS_MODULE": "hitl.settings",
    }


def load_now() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def row(n: int, *, variant: str = "") -> dict:
    """One case as an import row (about 500 bytes of JSON)."""
    return {
        "id": f"case-{n:07d}",
        "input": {
            "question": f"What is the maximum daily dose of drug {n % 997} for an adult{variant}?",
            "patient_age": 20 + n % 60,
        },
        "expected_output": {
            "answer": f"{(n % 40 + 1) * 100} mg a day, split into {n % 3 + 2} doses{variant}.",
            "cite": f"formulary section {n % 120}",
        },
        "metadata": {"specialty": ["cardiology", "pediatrics", "oncology"][n % 3], "batch": n % 50},
        "tags": ["dosing", f"group-{n % 20}"],
        "failure_reason": "tenfold overdose" if n % 7 == 0 else "",
        "failure_modes": ["wrong_dose"] if n % 7 == 0 else [],
        "explanation": f"Reviewers agreed the answer must name the daily maximum ({n % 11}).",
    }


def record(n: int) -> dict:
    """One stored revision record (what promotion of a reviewed item stores)."""
    base = row(n)
    reviewers = [f"reviewer{n % 5}@clinic.example", f"reviewer{(n + 1) % 5}@clinic.example"]
    answers = {f"{r}/accuracy": float(n % 2) for r in reviewers}
    return {
        "id": base["id"],
        "input": base["input"],
        "expected_output": base["expected_output"],
        "expected_tool_calls": None,
        "expected_outcome": "",
        "metadata": base["metadata"],
        "tags": base["tags"],
        "failure_reason": base["failure_reason"],
        "failure_modes": base["failure_modes"],
        "explanation": base["explanation"],
        "source_type": "trace",
        "source_trace_id": f"trace-{n:07d}",
        "source_span_id": None,
        "source_thread_id": None,
        "source_queue_item_id": n,
        "annotation_ids": [2 * n, 2 * n + 1],
        "adjudication_id": None,
        "reviews": [
            {"reviewer": r, "answers": {"accuracy": float(n % 2)}, "explanation": "checked"}
            for r in reviewers
        ],
        "answers": answers,
    }


# --- setup ----------------------------------------------------------------------------------


def setup_tenant():
    from django.contrib.auth import get_user_model

    from hitl import tenancy
    from projects.models import Membership, Organization, Project

    user = get_user_model().objects.create_user(
        username="bench@example.com", email="bench@example.com", password="x"
    )
    organization = Organization.objects.create(name="Bench", slug="bench")
    with tenancy.tenant_scope(organization.pk):
        Membership.objects.create(user=user, role="owner")
        project = Project.objects.create(name="Bench", slug="bench")
    return organization, project, user


def load_revisions(dataset, count: int) -> float:
    """COPYs ``count`` revisions valid from version 1 and writes version 1; seconds."""
    import hashlib

    import orjson
    from django.db import connection

    from datasets.models import DatasetVersion
    from hitl import tenancy

    started = time.perf_counter()
    columns = "organization_id, dataset_id, item_id, key, content_hash, content, added_in"
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        with raw.copy(f"COPY datasets_datasetitemrevision ({columns}) FROM STDIN") as copy:
            for n in range(count):
                content = orjson.dumps(record(n))
                copy.write_row(
                    (
                        dataset.organization_id,
                        dataset.pk,
                        n + 1,
                        f"case-{n:07d}",
                        hashlib.sha256(content).hexdigest(),
                        content.decode(),
                        1,
                    )
                )
    with tenancy.tenant_scope(dataset.organization_id):
        DatasetVersion.objects.create(
            dataset=dataset, number=1, item_count=count, added=count, message="bench load"
        )
        dataset.current_version = 1
        dataset.save(update_fields=["current_version"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_datasetitemrevision")
    return time.perf_counter() - started


# --- 1. export (child process) ----------------------------------------------------------------


def export_child(dataset_id: int, organization_id: int, file_format: str, path: str) -> None:
    import django

    django.setup()
    from datasets.models import DatasetVersion
    from datasets.services import export_version
    from hitl import tenancy

    with tenancy.tenant_scope(organization_id):
        version = DatasetVersion.objects.get(dataset_id=dataset_id, number=1)
        baseline = peak_rss_mb()
        started, cpu = time.perf_counter(), time.process_time()
        with open(path, "wb") as out:
            counts = export_version(version, file_format, out)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    print(
        json.dumps(
            {
                "items": counts["items"],
                "seconds": seconds,
                "cpu": cpu,
                "rss_before_mb": baseline,
                "peak_rss_mb": peak_rss_mb(),
                "bytes": os.path.getsize(path),
            }
        )
    )


def run_export(dataset, file_format: str, out_dir: Path) -> dict:
    path = out_dir / f"export.{file_format}"
    result = subprocess.run(
        [sys.executable, __file__, "--export-child", file_format, str(dataset.pk),
         str(dataset.organization_id), str(path)],
        cwd=ROOT, check=True, capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    path.unlink()
    return figures


# --- 2. import and 3. diff --------------------------------------------------------------------


def jsonl(rows) -> io.BytesIO:
    import orjson

    return io.BytesIO(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def run_import(project, user, rows: int) -> dict:
    from django.db.models import Count

    from datasets import selectors, services
    from datasets.models import DatasetItem
    from hitl import tenancy
    from hitl.audit import Actor

    actor = Actor(user=user, source="bench")
    figures = {}
    with tenancy.tenant_scope(project.organization_id):
        dataset = services.dataset_create(
            actor=actor, project=project, name="imported", schema=SCHEMA
        )
        first = jsonl(row(n) for n in range(rows))
        started, cpu = time.perf_counter(), time.process_time()
        report = services.dataset_import(
            actor=actor, dataset=dataset, stream=first, file_format="jsonl"
        )
        figures["import_seconds"] = time.perf_counter() - started
        figures["import_cpu"] = time.process_time() - cpu
        assert report.created == rows and report.error_count == 0, report
        second = jsonl(row(n, variant=" (revised)") for n in range(rows))
        started, cpu = time.perf_counter(), time.process_time()
        report = services.dataset_import(
            actor=actor, dataset=dataset, stream=second, file_format="jsonl"
        )
        figures["reimport_seconds"] = time.perf_counter() - started
        figures["reimport_cpu"] = time.process_time() - cpu
        assert report.updated == rows, report
        # Every item has its creation and its change in the history table.
        kinds = sorted(
            DatasetItem.history.filter(dataset=dataset)
            .values_list("history_type")
            .annotate(n=Count("history_id"))
        )
        assert kinds == [("+", rows), ("~", rows)], kinds
        started = time.perf_counter()
        diff = selectors.version_diff(dataset=dataset, from_number=1, to_number=2)
        figures["diff_seconds"] = time.perf_counter() - started
        assert diff["counts"] == {"added": 0, "removed": 0, "changed": rows}, diff["counts"]
    return figures


def run_big_diff(dataset, user, changes: int) -> float:
    """Version 2 of the 1M dataset changes ``changes`` items; seconds to diff 1 and 2."""
    from django.db import connection, transaction

    from datasets import selectors
    from datasets.models import DatasetVersion
    from hitl import tenancy

    with tenancy.tenant_scope(dataset.organization_id), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                WITH closed AS (
                    UPDATE datasets_datasetitemrevision SET removed_in = 2
                    WHERE dataset_id = %s AND key < %s RETURNING *
                )
                INSERT INTO datasets_datasetitemrevision
                    (organization_id, dataset_id, item_id, key, content_hash, content, added_in)
                SELECT organization_id, dataset_id, item_id, key, md5(content_hash),
                       jsonb_set(content, '{failure_reason}', '"changed"'), 2
                FROM closed
                """,
                [dataset.pk, f"case-{changes:07d}"],
            )
        DatasetVersion.objects.create(dataset=dataset, number=2, item_count=1, changed=changes)
        started = time.perf_counter()
        diff = selectors.version_diff(dataset=dataset, from_number=1, to_number=2)
        seconds = time.perf_counter() - started
        assert diff["counts"]["changed"] == changes, diff["counts"]
        transaction.set_rollback(True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--formats", default="jsonl,parquet,csv")
    parser.add_argument("--sections", default="export,import,diff")
    parser.add_argument("--export-child", nargs=4, metavar=("FORMAT", "DATASET", "ORG", "PATH"))
    args = parser.parse_args()
    if args.export_child:
        file_format, dataset_id, organization_id, path = args.export_child
        export_child(int(dataset_id), int(organization_id), file_format, path)
        return

    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores)")
    run_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-datasets."))
    run_dir.chmod(0o755)
    pg_port, redis_port = free_port(), free_port()
    os.environ.update(environment(pg_port, redis_port, str(run_dir / "exports")))
    try:
        print(f"starting PostgreSQL :{pg_port} and Redis :{redis_port} in {run_dir}", flush=True)
        stack(f"start_postgres {run_dir}/pg {pg_port}")
        stack(f"start_redis {run_dir}/redis {redis_port}")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        from datasets import services
        from hitl import tenancy
        from hitl.audit import Actor

        organization, project, user = setup_tenant()
        with tenancy.tenant_scope(organization.pk):
            big = services.dataset_create(
                actor=Actor(user=user, source="bench"), project=project, name="one million"
            )
        seconds = load_revisions(big, args.items)
        print(f"loaded {args.items:,} revisions with COPY in {seconds:.1f} s", flush=True)

        sections = args.sections.split(",")
        print(
            "\n| format | items | seconds | items/s | CPU s (export process) | peak RSS (MB) "
            "| file (MB) | load |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for file_format in args.formats.split(",") if "export" in sections else []:
            f = run_export(big, file_format, run_dir)
            print(
                f"| {file_format} | {f['items']:,} | {f['seconds']:.1f} | "
                f"{f['items'] / f['seconds']:,.0f} | {f['cpu']:.1f} | {f['peak_rss_mb']:.0f} "
                f"(at start {f['rss_before_mb']:.0f}) | {f['bytes'] / 1e6:,.0f} | {load_now()} |",
                flush=True,
            )

        if "import" not in sections:
            pass
        elif os.environ.get("HITL_BENCH_PROFILE"):  # a profile of the import, for tuning
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            figures = profiler.runcall(run_import, project, user, args.import_rows)
            pstats.Stats(profiler).sort_stats(os.environ["HITL_BENCH_PROFILE"]).print_stats(30)
        else:
            figures = run_import(project, user, args.import_rows)
        if "import" in sections:
            print(
                f"\nimport of {args.import_rows:,} JSONL rows with a schema: "
                f"{figures['import_seconds']:.1f} s "
                f"({args.import_rows / figures['import_seconds']:,.0f} rows/s, "
                f"{figures['import_cpu']:.1f} s CPU in this process); "
                f"the same rows all changed: {figures['reimport_seconds']:.1f} s "
                f"({figures['reimport_cpu']:.1f} s CPU) ({load_now()})"
            )
            print(
                f"diff of two {args.import_rows:,}-item versions, every item changed: "
                f"{figures['diff_seconds']:.2f} s"
            )
        for changes in (1_000, 100_000) if "diff" in sections else ():
            seconds = run_big_diff(big, user, min(changes, args.items))
            print(
                f"diff of two {args.items:,}-item versions, {changes:,} changed: {seconds:.2f} s "
                f"({load_now()})",
                flush=True,
            )
        print(f"\nbench process peak RSS: {peak_rss_mb():.0f} MB", flush=True)
    finally:
        stack(f"stop_postgres {run_dir}/pg || true; stop_redis {run_dir}/redis || true")
        shutil.rmtree(run_dir, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
