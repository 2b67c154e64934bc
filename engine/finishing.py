"""The stages of a file after its last part: the single upload or the join of the parts, the
registration with Nuxeo (`/complete`), and the document, checked for its blob; each one
journaled before its request leaves (see `lifecycle`), so a resumed file goes on where it stopped.

`Finishing` is the part of `FileSteps` (which holds the journal, the clients and the recoveries
these stages call: a new batch, a lost upload, a restart) that runs once every byte is sent.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from .errors import (
    AuthenticationError,
    BatchGone,
    FileChanged,
    IntegrityError,
    Interrupted,
    NuxeoNotFound,
    ServerError,
    ServerUnreachable,
    UploadGone,
)
from .events import Notice
from .existing import Action, DocumentChanged, NameTaken, digest_of_file
from .file_cleanup import FileCleanup
from .lifecycle import InvalidTransition, Stage
from .nuxeo_batch import CreatedDocument
from .slices import PartCounter
from .state import PartRecord
from .transfer import FileTransfer, content_type_for

if TYPE_CHECKING:
    from .edges import Clock
    from .settings import TransferSettings

_MAX_NEW_BATCHES = 3  # per round: a server that drops every batch at once is a failure
_CREATION_ATTEMPTS = 3
UPLOAD_GONE_NOTICE = "its multipart upload was gone from S3 (aborted by a clean-up?); sending its parts again"


# Stages whose steps are Nuxeo requests only.
NUXEO_STAGES = frozenset({Stage.REGISTERING, Stage.REGISTERED, Stage.CREATING_DOCUMENT})
# Stages whose step sends a request to S3 or Nuxeo (a single upload's SENDING does too).
_SENDS_A_REQUEST = frozenset({Stage.JOINING, Stage.REGISTERING, Stage.CREATING_DOCUMENT})


class NewRound(Exception):
    """The file goes back to the queue for a new round (prepare, then the parts S3 lacks)."""


class Finishing(FileCleanup):
    """The stages of a file after its last part; `FileSteps` (which prepares it) builds on it. Its
    length: join, `/complete` and the document each have a lost-answer path that looks the result
    up before asking again, and they share those look-ups."""

    settings: TransferSettings
    _clock: Clock

    if TYPE_CHECKING:
        def _replace_batch(self, transfer: FileTransfer) -> None: ...

    def _send_single(self, transfer: FileTransfer) -> str:
        assert transfer.plan is not None and transfer.fd is not None
        counter = PartCounter(number=1, size=transfer.plan.file_size)
        with self._lock:
            transfer.in_flight[1] = counter
        try:
            etag = self._s3.put_object(transfer, counter=counter)
        except Interrupted:
            with self._lock:
                transfer.drop_in_flight(1)
            raise
        finally:
            with self._lock:
                transfer.in_flight.pop(1, None)
        with self._lock:
            transfer.done_bytes = transfer.plan.file_size
            transfer.done[1] = PartRecord(number=1, etag=etag, size=transfer.plan.file_size)
        return etag

    def finish(self, transfer: FileTransfer, *, s3_only: bool = False) -> bool:
        """Drive the file from its last part to its document, one journaled stage at a time
        (a resumed file starts wherever its journal says it stopped). With `s3_only`, stop
        where only Nuxeo requests are left (the caller hands them to the Nuxeo workers).
        True once the document is made."""
        record = transfer.record
        new_batches = 0
        while record.stage is not Stage.DOCUMENTED:
            if s3_only and record.stage in NUXEO_STAGES:
                return False
            try:
                self._finish_step(transfer)
            except BatchGone:
                new_batches += 1
                if new_batches > _MAX_NEW_BATCHES:
                    raise
                self._replace_batch(transfer)
        assert record.doc_uid is not None
        return True

    def _finish_step(self, transfer: FileTransfer) -> None:
        record = transfer.record
        plan = transfer.plan
        assert plan is not None
        stage = record.stage
        if transfer.batch is None and stage is not Stage.CREATING_DOCUMENT:
            raise BatchGone("the upload batch expired on the server")
        if stage in _SENDS_A_REQUEST or (stage is Stage.SENDING and not plan.multipart):
            self.save_held(transfer)  # the request's intent is in the journal before it leaves
        if stage is Stage.SENDING and plan.multipart:
            self._check_unchanged(transfer)  # parts read before and after a change must not be joined
            self.advance(transfer, Stage.JOINING)
        elif stage is Stage.SENDING:
            try:
                etag = self._send_single(transfer)
            except IntegrityError:
                self._check_unchanged(transfer)  # a file written to while sent starts over
                raise
            self._check_unchanged(transfer)
            if self.settings.verify_etag:
                self._s3.verify_etag(transfer, etag=etag)
            self.advance(transfer, Stage.ON_S3, etag=etag)
        elif stage is Stage.JOINING:
            self._join(transfer)
        elif stage is Stage.ON_S3:
            self.advance(transfer, Stage.REGISTERING)
        elif stage is Stage.REGISTERING:
            self._register(transfer)
            self.advance(transfer, Stage.REGISTERED)
        elif stage is Stage.REGISTERED:
            self.advance(transfer, Stage.CREATING_DOCUMENT, document_key=str(uuid.uuid4()))
        elif stage is Stage.CREATING_DOCUMENT:
            self._create_document(transfer)
        else:
            raise InvalidTransition(f"nothing finishes an upload at stage {stage.value}")

    def _join(self, transfer: FileTransfer) -> None:
        """CompleteMultipartUpload, whose intent is journaled: after a crash it is sent again."""
        try:
            etag = self._s3.complete_multipart(transfer)
        except UploadGone:
            # Joined by a run that died before saving S3's answer, or aborted by a clean-up.
            # The batch credentials may not read the object: Nuxeo checks it with its own.
            if self._registered_by_nuxeo(transfer):
                self.advance(transfer, Stage.REGISTERED)
                return
            self.forget_upload(transfer, notice=UPLOAD_GONE_NOTICE)
            raise NewRound() from None
        except IntegrityError as error:
            if error.code != "InvalidPart" or transfer.resent_invalid_parts:
                raise
            # S3 lacks parts the journal has: send them again (all of them when S3 may not say
            # which), once per round.
            transfer.resent_invalid_parts = True
            self.store.forget_parts(transfer.id)
            self.advance(transfer, Stage.SENDING)
            self._emit(
                Notice(transfer.id, message=f"{transfer.path}: S3 lacked parts it had acknowledged; sending them again")
            )
            raise NewRound() from None
        if self.settings.verify_etag:
            self._s3.verify_etag(transfer, etag=etag)
        self.advance(transfer, Stage.ON_S3, etag=etag)

    def _register(self, transfer: FileTransfer) -> None:
        record = transfer.record
        assert transfer.batch is not None
        self.nuxeo.complete(
            transfer.batch.batch_id,
            name=transfer.name,
            size=transfer.size,
            key=record.object_key or "",
            bucket=record.bucket or "",
            etag=record.etag or "",
            mime_type=content_type_for(transfer.name),
            file_idx=record.file_idx,
        )

    def _registered_by_nuxeo(self, transfer: FileTransfer) -> bool:
        """Whether the object is whole on S3, asked of Nuxeo: `/complete` registers it if it
        exists (the server reads it with its own rights), and the batch then says its size."""
        try:
            self._register(transfer)
        except BatchGone:
            self._replace_batch(transfer)
            self._register(transfer)
        except ServerError:
            return False  # a stock server answers 500 for a key with no object
        assert transfer.batch is not None
        return self.nuxeo.registered_size(transfer.batch.batch_id, transfer.record.file_idx) == transfer.size

    def _create_document(self, transfer: FileTransfer) -> None:
        """The document: a new one, or a new version of the existing one (`--existing version`)."""
        record = transfer.record
        assert record.batch_id is not None and record.document_key is not None
        batch_id = record.batch_id
        versioning = record.action == Action.VERSION.value
        document = None
        for attempt in range(1, _CREATION_ATTEMPTS + 1):
            if transfer.creation_may_have_run:
                # An earlier request may have made the document and its answer been lost: look
                # before sending again (the key alone suffices only on servers that keep it).
                document = self._version_made_earlier(transfer) if versioning else self._document_made_earlier(transfer)
                if document is not None:
                    break
            transfer.creation_may_have_run = True
            try:
                if versioning:
                    assert record.version_of is not None
                    document = self.nuxeo.add_version(
                        record.version_of, batch_id=batch_id, file_idx=record.file_idx, change_token=record.doc_revision
                    )
                else:
                    document = self.nuxeo.create_file_document(
                        record.target,
                        name=transfer.name,
                        batch_id=batch_id,
                        key=record.document_key,
                        file_idx=record.file_idx,
                    )
                break
            except DocumentChanged:
                # The version's guard: the document changed since it was listed, by this very
                # request sent twice (the HTTP layer repeats a PUT whose answer was lost) or by
                # someone else. Which one, the document says.
                document = self._version_made_earlier(transfer) if versioning else None
                if document is None:
                    self.persist(transfer, action=None, version_of=None, doc_revision=None)
                    raise NameTaken(
                        f"the document {record.target.rstrip('/')}/{transfer.name} changed on the "
                        "server meanwhile; run the upload again to decide anew"
                    ) from None
                break
            except NuxeoNotFound:
                self.nuxeo.batch_info(batch_id)  # BatchGone when the 404 was about the batch
                raise
            except (ServerUnreachable, ServerError) as error:
                if not error.retryable or isinstance(error, AuthenticationError) or attempt == _CREATION_ATTEMPTS:
                    raise
                if self._clock.pause(transfer.control, attempt):
                    raise Interrupted(transfer.control.reason or "") from error
        assert document is not None
        with self._lock:  # the file is done with its batch (which others may share)
            transfer.batch = None
        if versioning and document.blob_length != transfer.size:
            # The user's document is never removed: the new version is named as wrong.
            raise IntegrityError(
                f"the new version of {document.path} holds {document.blob_length} bytes, not the file's {transfer.size}"
            )
        if document.blob_length is None:
            # A stock server makes the document without its blob when the batch is gone
            # (and answers 201): remove it and register the object with a new batch.
            self.nuxeo.delete_document(document.uid)
            raise BatchGone("the server created the document without its file")
        if document.blob_length != transfer.size:
            self.nuxeo.delete_document(document.uid)
            raise IntegrityError(
                f"the document Nuxeo created holds {document.blob_length} bytes, not the file's {transfer.size}"
            )
        transfer.document_path = document.path
        transfer.version_label = document.version_label or "" if versioning else ""
        self.advance(transfer, Stage.DOCUMENTED, doc_uid=document.uid)

    def _version_made_earlier(self, transfer: FileTransfer) -> CreatedDocument | None:
        """The document to version, if it already holds the file's bytes (a new version made
        by a request whose answer was lost): same length, and same digest in its algorithm."""
        record = transfer.record
        assert record.version_of is not None
        found = self.nuxeo.file_document(record.version_of)
        if found is None or found.blob_length != transfer.size or not found.blob_digest:
            return None
        if found.change_token is not None and found.change_token == record.doc_revision:
            return None  # untouched since it was listed
        local = digest_of_file(record.path, found.blob_digest_algorithm or "MD5")
        return found if local == found.blob_digest else None

    def _document_made_earlier(self, transfer: FileTransfer) -> CreatedDocument | None:
        """A document in the target folder named after the file and holding exactly its size
        (and its MD5, when S3's ETag of a single upload gives it)."""
        md5 = (transfer.record.etag or "").strip('"')
        for found in self.nuxeo.find_file_documents(transfer.record.target, name=transfer.name):
            if found.blob_length != transfer.size:
                continue
            if len(md5) == 32 and found.blob_digest and found.blob_digest != md5:
                continue
            return found
        return None

    def _check_unchanged(self, transfer: FileTransfer) -> None:
        """The bytes sent are the file's: same size and modification time as when its upload
        started, and its path still names the file that was read. Raises `FileChanged`."""
        record = transfer.record
        assert transfer.fd is not None
        read = os.fstat(transfer.fd)
        try:
            named = os.stat(record.path)
        except OSError:
            named = None
        if (read.st_size, read.st_mtime_ns) != (record.size, record.mtime_ns):
            raise FileChanged("the file changed while it was being uploaded")
        if named is None or (named.st_dev, named.st_ino) != (read.st_dev, read.st_ino):
            raise FileChanged("the file was replaced or removed while it was being uploaded")

    def differs_from_start(self, transfer: FileTransfer) -> bool:
        try:
            self._check_unchanged(transfer)
        except FileChanged:
            return True
        return False


__all__ = ["Finishing", "NUXEO_STAGES", "NewRound", "UPLOAD_GONE_NOTICE"]
