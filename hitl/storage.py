"""Stored files, through Django's storage API (``STORAGES``; docs/SCALING.md, "Shared
storage").

Every file one process writes and another serves lives in a named storage, never at a
path on one machine's disk: ``exports`` holds dataset exports, written by a ``files``
worker and downloaded through any web process. By default it is the file system under
``HITL_EXPORT_DIR`` (one directory, or a volume every web and worker process mounts);
``HITL_FILE_STORAGE=s3`` makes it an S3-compatible bucket (django-storages), so web and
workers on different machines share nothing but the bucket.

A download is found through its tenant-scoped row (the caller's queryset), never by a
name from the request; :func:`download_response` then streams the file from the
storage through the web process, or, when the storage signs URLs (S3 with
``HITL_S3_SIGNED_URLS``), redirects to a signed URL that expires.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

EXPORTS = "exports"


class ExportDirStorage(FileSystemStorage):
    """The file system under ``HITL_EXPORT_DIR`` (read when used, so a test's override
    applies). A file of the same name is replaced: a name is its row's, and a retried
    write rewrites it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def base_location(self) -> str:
        return str(self._location or settings.HITL_EXPORT_DIR)

    @property  # type: ignore[override]
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def storage(name: str = EXPORTS) -> Storage:
    return storages[name]


@contextmanager
def writing(name: str, *, alias: str = EXPORTS) -> Iterator[IO[bytes]]:
    """A binary file to write; on a clean exit it is stored under ``name`` (replacing a
    file of that name), on an error nothing is stored. The bytes wait in a temporary
    file of this process meanwhile, so the storage only ever holds whole files."""
    target = storage(alias)
    with tempfile.TemporaryFile(prefix="hitl-") as scratch:
        yield scratch
        scratch.flush()
        scratch.seek(0)
        if target.exists(name):
            target.delete(name)
        stored = target.save(name, File(scratch, name=os.path.basename(name)))
    if stored != name:  # a storage that refused to replace: never serve another name
        target.delete(stored)
        raise FileExistsError(f"{alias} storage kept another file named {name!r}")


def size(name: str, *, alias: str = EXPORTS) -> int:
    return storage(alias).size(name)


def exists(name: str, *, alias: str = EXPORTS) -> bool:
    return bool(name) and storage(alias).exists(name)


def signs_urls(target: Storage) -> bool:
    """Whether downloads redirect to a signed, expiring URL of ``target`` (an S3
    storage with query-string authentication) instead of streaming through us."""
    return bool(getattr(target, "querystring_auth", False)) and bool(
        getattr(settings, "HITL_S3_SIGNED_URLS", False)
    )


def download_response(
    name: str, *, filename: str, alias: str = EXPORTS, missing: Callable[[], Exception]
) -> HttpResponse:
    """The stored file as an attachment named ``filename``: a redirect to a signed URL
    that expires after ``HITL_S3_URL_EXPIRES_SECONDS`` where the storage signs them,
    else streamed from the storage. Raises ``missing()`` when the file is gone."""
    target = storage(alias)
    if not exists(name, alias=alias):
        raise missing()
    if signs_urls(target):
        url = target.url(  # type: ignore[call-arg]
            name,
            parameters={
                "ResponseContentDisposition": content_disposition_header(True, filename),
                "ResponseContentType": "application/octet-stream",
            },
            expire=settings.HITL_S3_URL_EXPIRES_SECONDS,
        )
        response: HttpResponse = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"
        return response
    return FileResponse(target.open(name, "rb"), as_attachment=True, filename=filename)
