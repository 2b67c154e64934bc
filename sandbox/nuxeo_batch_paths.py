"""The upload batch and batch file a request's path names (`/upload/{batchId}/{fileIdx}`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from .nuxeo_http import EmptyError, Request
from .nuxeo_store import BatchFile, BatchRecord

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

BATCH = r"/upload/(?P<batch_id>[^/]+)"
FILE = rf"{BATCH}/(?P<file_idx>[^/]+)"


def batch_of(server: NuxeoServer, request: Request) -> BatchRecord:
    # Unknown, dropped and expired batches look the same: an empty 404.
    batch = server.batch(request.params["batch_id"])
    if batch is None:
        raise EmptyError(HTTPStatus.NOT_FOUND)
    return batch


def file_index(request: Request) -> int:
    raw = request.params["file_idx"]
    if not raw.isdigit():
        raise EmptyError(HTTPStatus.NOT_FOUND)
    return int(raw)


def batch_file_of(server: NuxeoServer, request: Request) -> BatchFile:
    batch = batch_of(server, request)
    idx = file_index(request)
    entry = server.store.batches.file(batch.batch_id, idx)
    if entry is None:
        raise EmptyError(HTTPStatus.NOT_FOUND)
    return entry
