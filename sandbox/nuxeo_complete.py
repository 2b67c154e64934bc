"""`POST /upload/{batchId}/{fileIdx}/complete`: an object uploaded to S3 with the batch's
credentials becomes the batch's file, as `S3DirectBatchHandler.completeUpload` does it."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import Message
from http import HTTPStatus
from typing import TYPE_CHECKING

from .nuxeo_batch_paths import batch_of, file_index
from .nuxeo_http import EmptyError, NuxeoError, Request, Response, bad_request
from .nuxeo_store import BatchFile, StoredBlob

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")
GIB = 1024**3
# The read-back of a multipart object: ranges this large, this many at once.
READ_RANGE = 16 * 1024 * 1024
READERS = 4


def split_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """("text/plain", "UTF-8") from "text/plain; charset=UTF-8"."""
    if not content_type:
        return None, None
    message = Message()
    message["Content-Type"] = content_type
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


class Completion:
    """The `/complete` endpoint."""

    def __init__(self, server: NuxeoServer) -> None:
        self._server = server

    def complete(self, request: Request) -> Response:
        batch = batch_of(self._server, request)
        idx = file_index(request)
        if not batch.is_s3:
            # The default handler's completeUpload returns false, which Nuxeo maps to 409.
            raise NuxeoError(HTTPStatus.CONFLICT, "Upload handler does not support /complete")
        body = request.json_object()
        key, name = body.get("key"), body.get("name")
        if not isinstance(key, str) or not key or not isinstance(name, str) or not name:
            raise bad_request("'key' and 'name' are required")
        bucket = body.get("bucket")
        if bucket not in (None, "", self._server.s3.bucket):
            raise bad_request(f"Unknown bucket: {bucket}")
        # Like S3DirectBatchHandler, any key of the bucket is accepted, with the server's own
        # credentials.
        head = self._server.s3.head_object(key)
        if head is None:
            # The S3 client's exception is not mapped to a status: Nuxeo answers 500.
            raise NuxeoError(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        length = head.length
        etag = head.etag.strip('"')
        mime_type, encoding = split_content_type(head.content_type)
        if mime_type in (None, "binary/octet-stream"):
            mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        blob = StoredBlob(name, mime_type, encoding, self._md5_of(key, etag, length), length, key)
        # The real server copies the object to its blob store inside this request.
        time.sleep(length / GIB * self._server.complete_delay_s_per_gib)
        gate = self._server.multipart_complete_gate
        if gate is not None and "-" in etag:
            gate.wait(timeout=60)
        entry = BatchFile(batch.batch_id, idx, etag, blob)
        if not self._server.store.batches.put_file(entry, now=self._server.clock()):
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return Response.json({"uploaded": "true", "batchId": batch.batch_id, "fileIdx": str(idx)})

    def _md5_of(self, key: str, etag: str, length: int) -> str:
        """The ETag of a single PUT is the MD5; a multipart ETag is not, so hash the object, read
        in ranges by a few threads while the hash takes them in order (a deduplicating blob
        store reads the object back the same way to key it by its digest)."""
        if PLAIN_MD5.fullmatch(etag):
            return etag
        digest = hashlib.md5()
        ranges = [(start, min(start + READ_RANGE, length) - 1) for start in range(0, length, READ_RANGE)]
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="sandbox-md5") as readers:
            pending: deque[Future[bytes]] = deque()
            for first, last in ranges:
                pending.append(readers.submit(self._read_range, key, first, last))
                if len(pending) >= READERS:
                    digest.update(pending.popleft().result())
            while pending:
                digest.update(pending.popleft().result())
        return digest.hexdigest()

    def _read_range(self, key: str, first: int, last: int) -> bytes:
        answer = self._server.s3_admin.get_object(Bucket=self._server.s3.bucket, Key=key, Range=f"bytes={first}-{last}")
        data: bytes = answer["Body"].read()
        return data
