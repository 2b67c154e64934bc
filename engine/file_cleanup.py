"""The ends of a file's upload: its multipart upload aborted, its batch dropped once no file needs
it, and its progress forgotten when it starts over or S3 lost its multipart upload."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from .edges import NuxeoCalls, S3Calls
from .errors import AccessDenied, BatchGone, FileChanged, InputError, NxupError, UploadGone
from .events import Event, Notice
from .file_journal import FileJournal
from .lifecycle import Stage
from .nuxeo_batch import BatchInfo
from .shared_batches import SharedBatches
from .state import StateError, StateStore
from .transfer import FileTransfer

log = logging.getLogger(__name__)

_ABORT_DENIED_NOTICE = (
    "S3 does not let the batch's credentials abort its multipart upload, so it is left to the Nuxeo "
    "server's clean-up (uploads older than a day, at its start-up); `nxup stale` with admin keys "
    "removes it now"
)


class FileCleanup(FileJournal):
    def __init__(self, *, store: StateStore, lock: threading.RLock, nuxeo: NuxeoCalls, s3: S3Calls,
                 emit: Callable[[Event], None], shared_batches: SharedBatches) -> None:
        super().__init__(store=store, lock=lock)
        self.nuxeo = nuxeo
        self._s3 = s3
        self._emit = emit
        self.shared_batches = shared_batches

    def forget_upload(self, transfer: FileTransfer, *, notice: str) -> None:
        """The multipart upload is gone from S3 (aborted by the server's clean-up of old
        uploads, or by an admin): its parts are sent again under a new one, same key."""
        self.store.forget_parts(transfer.id)
        with self._lock:
            transfer.done.clear()
            transfer.done_bytes = 0
        self.advance(transfer, Stage.BATCHED, upload_id=None, etag=None)
        self._emit(Notice(transfer.id, message=f"{transfer.path}: {notice}"))

    def restart_changed(self, transfer: FileTransfer, change: FileChanged) -> None:
        try:
            now = os.stat(transfer.path)
        except FileNotFoundError:
            raise InputError("the file was removed while it was being uploaded") from None
        self.restart(transfer, notice=f"{change}; uploading it again from the start",
                      size=now.st_size, mtime_ns=now.st_mtime_ns)

    def restart(self, transfer: FileTransfer, *, notice: str, **fields: Any) -> None:
        """Forget the file's progress and start it over (abort its old multipart upload)."""
        record = transfer.record
        self.abort_multipart_quietly(transfer)
        self.done_with_batch(transfer, more_coming=True)
        self.store.forget_parts(transfer.id)
        with self._lock:
            transfer.reset_progress()
            transfer.batch = None
            transfer.credentials = None
        self.advance(
            transfer, Stage.NEW, batch_id=None, file_idx=0, bucket=None, object_key=None, upload_id=None,
            part_size=None, part_count=None, etag=None, document_key=None, **fields,
        )
        self._emit(Notice(transfer.id, message=f"{record.path}: {notice}"))

    def _use_batch(self, transfer: FileTransfer, batch: BatchInfo) -> None:
        credentials = self.nuxeo.batch_credentials(batch)
        with self._lock:
            transfer.batch = batch
            transfer.credentials = credentials

    def abort_multipart_quietly(self, transfer: FileTransfer) -> None:
        """Abort the file's multipart upload where the credentials allow it. A stock Nuxeo's
        do not: the upload id stays in the journal (so `nxup stale` can name it) and the user
        is told who removes it."""
        record = transfer.record
        if not record.upload_id:
            return
        try:
            if transfer.credentials is None:
                self._use_batch(transfer, self._batch_for_cleanup(record.batch_id))
            self._s3.abort_multipart(transfer)
        except UploadGone:
            pass
        except AccessDenied:
            # Recorded with the upload id kept: `nxup stale` names it as nxup's leftover.
            self.persist(transfer, error=f"its multipart upload is left on S3: {_ABORT_DENIED_NOTICE}")
            self._emit(Notice(transfer.id, message=f"{record.path}: {_ABORT_DENIED_NOTICE}"))
            return
        except NxupError as error:
            self._emit(
                Notice(
                    transfer.id,
                    message=f"{record.path}: could not abort its multipart upload ({error}); `nxup stale` lists it",
                )
            )
            return
        self.persist(transfer, upload_id=None)

    def _batch_for_cleanup(self, batch_id: str | None) -> BatchInfo:
        if batch_id:
            try:
                return self.nuxeo.batch_info(batch_id)
            except BatchGone:
                pass
        return self.nuxeo.new_batch()

    def done_with_batch(self, transfer: FileTransfer, *, more_coming: bool) -> None:
        """The file no longer needs its batch (its document is made, it was cancelled, or it
        starts over): the batch is dropped unless other files use it."""
        batch_id = transfer.record.batch_id
        if not batch_id or not self.shared_batches.release(transfer.id, batch_id, more_coming=more_coming):
            return
        try:
            if self.store.batch_in_use(batch_id, besides=transfer.id):
                return
        except StateError as error:  # left to the server's expiry of batches
            log.warning("%s", error)
            return
        self.drop_quietly(batch_id)

    def drop_idle_batches(self) -> None:
        """At the end of a run: drop the shared batches every file is done with."""
        for batch_id in self.shared_batches.close():
            self.drop_quietly(batch_id)

    def drop_quietly(self, batch_id: str) -> None:
        try:
            self.nuxeo.drop(batch_id)
        except NxupError as error:
            log.warning("could not drop batch: %s", error)


__all__ = ["FileCleanup"]
