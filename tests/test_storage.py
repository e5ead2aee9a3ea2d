"""Exports work with web and worker processes that share nothing but the storage.

A real Celery worker process (``celery -A hitl worker -Q files``, its own working
directory and its own path to the storage) writes an export; the worker stops and its
directory is deleted; a real web process (gunicorn, another working directory, another
path to the same storage) serves the download to the export's organization over HTTP,
and to no other organization.

On an S3-compatible bucket (moto's server, a process on loopback, with django-storages
as ``HITL_FILE_STORAGE=s3`` configures it) the download is a redirect to a signed URL
that expires, which serves the file as an attachment.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from django.db import connection

from datasets import services
from datasets.models import DatasetExport, JobState
from hitl import tenancy
from hitl.audit import Actor
from hitl.celery import FILES
from tests.datasets.helpers import import_rows, make_dataset

pytestmark = [pytest.mark.worker]

ROOT = Path(__file__).resolve().parent.parent
ROWS = [
    {"id": f"r{i}", "input": f"question {i}", "expected_output": f"answer {i}"} for i in range(3)
]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A process of ours started in ``cwd`` on the test database and broker, with its
    own path to the stored files."""

    def __init__(self, args: list[str], cwd: Path, export_dir: Path, log: Path) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "HITL_FILE_STORAGE": "filesystem",
            "HITL_EXPORT_DIR": str(export_dir),
            "PYTHONPATH": str(ROOT),
        }
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def _get(url: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait(predicate, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
            return True
    except (OSError, urllib.error.URLError):
        return False


def test_a_worker_in_one_directory_writes_an_export_a_web_process_in_another_serves(
    transactional_db, tenant, other_tenant, tmp_path, processes
):
    shared = tmp_path / "shared"  # the one storage (a volume, a bucket)
    worker_dir, web_dir = tmp_path / "worker", tmp_path / "web"
    for directory in (shared, worker_dir, web_dir):
        directory.mkdir()
    # Each process reaches the storage by a path of its own.
    (worker_dir / "files").symlink_to(shared)
    (web_dir / "files").symlink_to(shared)
    log = tmp_path / "processes.log"
    port = _free_port()
    worker = Process(
        [
            *("celery", "-A", "hitl", "worker", "-Q", FILES, "--pool=threads"),
            *("--concurrency=1", "--loglevel=WARNING", "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ],
        worker_dir,
        worker_dir / "files",
        log,
    )
    processes.append(worker)
    web = Process(
        [
            *("gunicorn", "hitl.wsgi:application", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "1", "--graceful-timeout", "2"),
        ],
        web_dir,
        web_dir / "files",
        log,
    )
    processes.append(web)

    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, ROWS)
    with tenancy.tenant_scope(tenant.organization.pk):
        export = services.dataset_export_start(
            actor=Actor(user=tenant.owner), dataset=dataset, version=None, file_format="jsonl"
        )  # committed: published to the broker, taken by the worker on the files queue

        def finished() -> bool:
            export.refresh_from_db()
            return export.state != JobState.PENDING

        _wait(finished, "the worker to write the export", log)
    assert (export.state, export.item_count) == (JobState.DONE, len(ROWS)), export.error
    stored = shared / str(tenant.organization.pk) / export.file_name
    assert stored.is_file() and export.size_bytes == stored.stat().st_size
    # The worker and its disk are gone; only the storage remains.
    worker.stop()
    shutil.rmtree(worker_dir)

    base = f"http://127.0.0.1:{port}"
    _wait(lambda: _answers(f"{base}/readyz"), "the web process", log)
    path = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{dataset.pk}/exports/{export.pk}/download/"
    )
    status, body = _get(base + path, tenant.key())
    assert status == 200, body[:500]
    assert [orjson.loads(line)["id"] for line in body.splitlines()] == [r["id"] for r in ROWS]

    # Another organization reaches it neither through the owner's path nor its own.
    other = (
        f"/api/orgs/{other_tenant.organization.slug}/projects/{other_tenant.project.slug}"
        f"/datasets/{dataset.pk}/exports/{export.pk}/download/"
    )
    for attempt in (path, other):
        status, body = _get(base + attempt, other_tenant.key())
        assert status in (403, 404), (attempt, status)
        assert b"question" not in body

    # A file gone from the storage answers "gone", never another file.
    stored.unlink()
    status, body = _get(base + path, tenant.key())
    assert status == 404 and orjson.loads(body)["error"]["code"] == "gone"
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetExport.objects.get(pk=export.pk).state == JobState.DONE


# --- an S3-compatible bucket ------------------------------------------------------------------


@pytest.fixture
def bucket(tmp_path, settings) -> Iterator[str]:
    """An S3-compatible server (moto's, a process of its own on loopback) with one bucket,
    made the ``exports`` storage as ``HITL_FILE_STORAGE=s3`` makes it (hitl/settings.py)."""
    import boto3

    port = _free_port()
    log = tmp_path / "s3.log"
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _answers(f"{endpoint}/"), "the S3 server", log)
        credentials = {"aws_access_key_id": "hitl-test", "aws_secret_access_key": "hitl-test"}
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", **credentials
        ).create_bucket(Bucket="hitl-exports")
        settings.HITL_S3_SIGNED_URLS = True
        settings.HITL_S3_URL_EXPIRES_SECONDS = 60
        settings.STORAGES = {
            **settings.STORAGES,
            "exports": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": "hitl-exports",
                    "location": "exports",
                    "endpoint_url": endpoint,
                    "region_name": "us-east-1",
                    "access_key": "hitl-test",
                    "secret_key": "hitl-test",
                    "addressing_style": "path",
                    "signature_version": "s3v4",
                    "querystring_auth": True,
                    "querystring_expire": 60,
                    "file_overwrite": True,
                    "default_acl": None,
                },
            },
        }
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_on_s3_a_download_is_a_signed_url_that_expires_for_the_exports_organization_only(
    tenant, other_tenant, client_for, bucket
):
    from hitl import storage

    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, ROWS)
    with tenancy.tenant_scope(tenant.organization.pk):
        export = services.dataset_export_start(
            actor=Actor(user=tenant.owner), dataset=dataset, version=None, file_format="jsonl"
        )
        services.dataset_export_run(export_id=export.pk)
        export.refresh_from_db()
    assert (export.state, export.item_count) == (JobState.DONE, len(ROWS)), export.error
    key = f"{tenant.organization.pk}/{export.file_name}"
    assert storage.storage().exists(key) and export.size_bytes == storage.size(key)
    path = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{dataset.pk}/exports/{export.pk}/download/"
    )
    answer = client_for(key=tenant.key()).get(path)
    assert answer.status_code == 302 and answer["Cache-Control"] == "no-store"
    signed = answer["Location"]
    assert signed.startswith(f"{bucket}/hitl-exports/exports/{key}?")
    assert "X-Amz-Expires=60" in signed and "X-Amz-Signature=" in signed
    with urllib.request.urlopen(signed, timeout=10) as response:  # noqa: S310 (loopback)
        body = response.read()
        disposition = response.headers["Content-Disposition"]
    assert [orjson.loads(line)["id"] for line in body.splitlines()] == [r["id"] for r in ROWS]
    assert disposition == f'attachment; filename="{export.file_name}"'
    # Another organization gets no URL.
    refused = client_for(key=other_tenant.key()).get(path)
    assert refused.status_code in (403, 404) and "Location" not in refused
