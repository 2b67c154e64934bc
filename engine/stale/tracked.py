"""nxup's own multipart uploads on one Nuxeo server, checked and aborted through Nuxeo.

Batch credentials are limited to the batch's prefix and cannot list the bucket, so only the
uploads nxup recorded in its state database are seen; each is checked and aborted with its own
batch's fresh credentials.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from engine.credentials import BatchCredentials, signing_with
from engine.edges import NuxeoCalls
from engine.errors import NxupError
from engine.s3 import S3Clients, S3Tuning, list_all_parts
from engine.state import StateStore, UploadRecord

from .failures import BATCH_CREDENTIALS, StaleError
from .outcomes import AbortResult
from .scanner import PART_COUNT_WORKERS, Scanner
from .uploads import MAY_BE_OPEN, Clock, StaleUpload, upload_of_record, utc_now

JOURNAL_NOTE = "parts from nxup's journal (the batch credentials may not list them)"


class BatchS3:
    """S3 calls signed with a batch's own credentials, fetched fresh from Nuxeo.

    Batch credentials are limited to the batch's prefix, which is exactly what an upload of
    that batch needs: ListParts and AbortMultipartUpload on its key.
    """

    def __init__(self, batches: NuxeoCalls) -> None:
        self.batches = batches
        self._clients = S3Clients(S3Tuning(max_connections=PART_COUNT_WORKERS))
        self._lock = threading.Lock()
        self._access: dict[str, tuple[Any, BatchCredentials]] = {}

    def list_parts(self, batch_id: str, *, bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
        """Every part of one upload, each page signed with the batch's credentials. Raises
        BatchGone when Nuxeo no longer has the batch (then only an admin can act)."""
        client, credentials = self._batch(batch_id)
        with signing_with(credentials):
            return list_all_parts(client, bucket=bucket, key=key, upload_id=upload_id)

    def abort(self, batch_id: str, *, bucket: str, key: str, upload_id: str) -> None:
        client, credentials = self._batch(batch_id)
        with signing_with(credentials):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def _batch(self, batch_id: str) -> tuple[Any, BatchCredentials]:
        with self._lock:
            known = self._access.get(batch_id)
        if known is not None:
            return known
        info = self.batches.batch_info(batch_id)
        access = (self._clients.client(info.location), self.batches.batch_credentials(info))
        with self._lock:
            self._access[batch_id] = access
        return access


class TrackedScanner(Scanner):
    """nxup's own multipart uploads on one Nuxeo server.

    The initiated time is when nxup recorded the upload: ListParts does not return it and the
    bucket cannot be listed with batch credentials.
    """

    denied_abort_is_left_to_server = True
    keys = BATCH_CREDENTIALS

    def __init__(self, store: StateStore, batches: NuxeoCalls, *, now: Clock = utc_now,
                 workers: int = PART_COUNT_WORKERS) -> None:
        super().__init__(store, now=now, workers=workers)
        self.journal = store
        self.s3 = BatchS3(batches)
        self.server_url = batches.connection.url
        self._records: dict[str, UploadRecord] = {}

    def pages(self, prefix: str = "") -> Iterator[list[StaleUpload]]:
        """One page: the journal's uploads on this server that may still be open on S3."""
        # Asked first: a wrong password or URL is an error, not an empty or annotated list.
        self.s3.batches.check_login()
        page: list[StaleUpload] = []
        for record in self.journal.with_multipart_upload():
            if record.server_url != self.server_url or not record.upload_id or record.id is None:
                continue
            if record.stage not in MAY_BE_OPEN:
                continue  # joined on S3 (its id is kept only to answer for it): not a leftover
            if not (record.object_key or "").startswith(prefix):
                continue
            self._records[record.upload_id] = record
            initiated = datetime.fromtimestamp(record.created_at or time.time(), UTC)
            page.append(upload_of_record(self.journal, record, initiated=initiated))
        yield page

    def _batch_and_bucket(self, upload: StaleUpload) -> tuple[str, str]:
        record = self._records.get(upload.upload_id)
        if record is None and upload.tracked is not None:
            record = self.journal.get(upload.tracked.file_id)
        if record is None or not record.batch_id or not record.bucket:
            raise StaleError("nxup has no batch for this upload; only an admin can abort it")
        return record.batch_id, record.bucket

    def _bucket(self, upload: StaleUpload) -> str:
        return self._batch_and_bucket(upload)[1]

    def _list_parts(self, upload: StaleUpload) -> list[dict[str, Any]]:
        batch_id, bucket = self._batch_and_bucket(upload)
        return self.s3.list_parts(batch_id, bucket=bucket, key=upload.key, upload_id=upload.upload_id)

    def _parts_from_journal(self, upload: StaleUpload) -> bool:
        """A stock Nuxeo's batch credentials may not list parts: the journal says which ones S3
        acknowledged."""
        if upload.tracked is None:
            return False
        journal = self.journal.parts(upload.tracked.file_id)
        upload.parts, upload.bytes = len(journal), sum(p.size for p in journal.values())
        upload.note = JOURNAL_NOTE
        return True

    def _abort_on_s3(self, upload: StaleUpload) -> None:
        batch_id, bucket = self._batch_and_bucket(upload)
        self.s3.abort(batch_id, bucket=bucket, key=upload.key, upload_id=upload.upload_id)

    def _after_aborts(self, results: list[AbortResult]) -> None:
        """Drop the batches no unfinished upload uses any more (each held only its aborted
        uploads' files; Nuxeo would expire them anyway)."""
        batch_ids: set[str] = set()
        for result in results:
            try:
                batch_ids.add(self._batch_and_bucket(result.upload)[0])
            except StaleError:
                pass
        if not batch_ids:
            return
        batch_ids -= {r.batch_id for r in self.journal.unfinished() if r.batch_id}
        for batch_id in sorted(batch_ids):
            try:
                self.s3.batches.drop(batch_id)
            except NxupError:
                pass
