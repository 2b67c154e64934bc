"""The journey of one file through its journaled stages (see `lifecycle`), and the recoveries
a real Nuxeo server calls for.

*prepare*: open the file, check it did not change, make sure of its folder, its batch (a new one
when the server dropped it, keeping the object key), its plan, and which parts S3 still lacks
(from the journal; from S3's own list only where the credentials may list it). *finish*: the
single upload or the join of the parts, the registration with Nuxeo (`/complete`), and the
document, checked for its blob. Each effect that must happen once is journaled before its
request leaves, so a resumed file starts wherever its journal says it stopped.

The transfer manager schedules (admission, the worker pool, pause, resume, cancel); this module
decides what each stage does. It runs in the manager's worker threads, under the manager's lock
where it touches a `FileTransfer`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from enum import Enum

from .checksums import can_compute, digest_slice
from .edges import Clock, NuxeoCalls, S3Calls
from .errors import (
    BatchGone,
    Interrupted,
    NuxeoNotFound,
    StorageError,
    StorageUnreachable,
    UploadGone,
)
from .events import Event, FileStarted, Notice
from .existing import Action, Decision, ExistingPolicy, TargetListings
from .finishing import UPLOAD_GONE_NOTICE, Finishing
from .inputs import open_for_upload
from .lifecycle import Stage, UploadStatus, stage_after_new_batch
from .planning import UploadPlan, plan_resumed_upload, plan_upload
from .settings import TransferSettings
from .shared_batches import SharedBatches
from .state import PartRecord, StateStore
from .transfer import FileTransfer

_START_ATTEMPTS = 3
# Failures after which S3 may have acted on a request (its answer lost), unlike a refusal: a lost
# connection (`StorageUnreachable`), or one of these codes.
_MAYBE_ACTED = frozenset({"InternalError", "500", "502", "504"})

_BATCH_GONE_NOTICE = (
    "its upload batch expired on the server; going on with a new batch (nothing S3 holds is sent again)"
)
_UNKNOWN_UPLOAD_NOTICE = (
    "nxup stopped while S3 was starting its multipart upload; if S3 started one, it is left to the "
    "Nuxeo server's clean-up of old uploads (or `nxup stale` with admin keys)"
)
_LOST_START_NOTICE = (
    "S3's answer to starting its multipart upload was lost; if S3 started one, it is left to the Nuxeo "
    "server's clean-up of old uploads (or `nxup stale` with admin keys)"
)
# Stages at which bytes may still have to go to S3.
_BEFORE_JOINING = frozenset({Stage.NEW, Stage.BATCHED, Stage.STARTING_MULTIPART, Stage.SENDING})


class NextStep(Enum):
    """What follows a file's preparation."""

    PARTS = "parts"  # send the parts S3 lacks
    FINISH = "finish"  # nothing to send as parts: the single upload, or the stages after the join
    DONE = "done"  # the document exists; only the bookkeeping of the end is left
    SKIPPED = "skipped"  # its name is taken in the target folder and nothing is to be sent


class FileSteps(Finishing):
    """What each stage of a file does; shared by every worker (per-file state lives on the
    `FileTransfer`). The stages after the last part are in `Finishing`, the ends of an upload in
    `FileCleanup`, the journal writes in `FileJournal`: each a base of the one after. Its length:
    the stages before the last part (batch, plan, start, parts), each journaled before its request,
    are one sequence that reads best in one place."""

    def __init__(
        self,
        *,
        store: StateStore,
        nuxeo: NuxeoCalls,
        s3: S3Calls,
        settings: TransferSettings,
        emit: Callable[[Event], None],
        lock: threading.RLock,
        clock: Clock,
    ) -> None:
        shared_batches = SharedBatches(
            new_batch=nuxeo.new_batch, credentials_for=nuxeo.batch_credentials, capacity=settings.files_per_batch
        )
        super().__init__(store=store, lock=lock, nuxeo=nuxeo, s3=s3, emit=emit, shared_batches=shared_batches)
        self._clock = clock
        self.settings = settings
        self._known_folders: set[str] = set()
        self.listings = TargetListings(nuxeo.list_children)

    def prepare(self, transfer: FileTransfer) -> NextStep:
        record = transfer.record
        if record.stage is Stage.DOCUMENTED and record.doc_uid:
            # The document exists: only the final bookkeeping was missing (the local file is
            # not needed any more, and may be gone).
            return NextStep.DONE
        fd, info = open_for_upload(record.path)
        with self._lock:
            transfer.fd = fd
        if info.st_size != record.size or info.st_mtime_ns != record.mtime_ns:
            self.restart(
                transfer,
                notice="the file changed since its upload started; uploading it again from the start",
                size=info.st_size,
                mtime_ns=info.st_mtime_ns,
            )
        if not record.upload_id and record.checksum_algorithm != self.settings.checksum.value:
            # Nothing started on S3 yet: this run's algorithm applies (a multipart upload keeps
            # the one it was started with, which is journaled).
            self.persist(transfer, checksum_algorithm=self.settings.checksum.value)
        self._ensure_folder(record.target)
        # Journaled as being created: an earlier run may have sent the creation.
        transfer.creation_may_have_run = record.stage is Stage.CREATING_DOCUMENT
        # The decision on the file's name, the batch, the plan and the start of sending: one
        # write before the first byte.
        with self.writes_held(transfer):
            if record.action is None and record.stage is Stage.NEW:
                decision = self._decide(transfer)
                if decision.action is Action.SKIP:
                    with self._lock:
                        transfer.close_file()
                        transfer.document_path = decision.document.path if decision.document else ""
                    self.persist(
                        transfer,
                        status=UploadStatus.SKIPPED,
                        action=Action.SKIP.value,
                        note=decision.reason,
                        doc_uid=decision.document.uid if decision.document else None,
                    )
                    return NextStep.SKIPPED
            self._attach_batch(transfer)
            plan = self._plan(transfer)
            with self._lock:
                transfer.plan = plan
                transfer.status = UploadStatus.UPLOADING
            self.persist(transfer, status=UploadStatus.UPLOADING, error=None)
            if record.stage in _BEFORE_JOINING and not plan.multipart:
                self.advance(transfer, Stage.SENDING)
        pending: list[int] = []
        if record.stage not in _BEFORE_JOINING:  # every byte is on S3 already
            with self._lock:
                if record.stage is Stage.JOINING:  # the join is sent again: with the journal's parts
                    transfer.done = self.store.parts(transfer.id)
                transfer.done_bytes = plan.file_size
        elif plan.multipart:
            pending = self._reconcile_multipart(transfer, plan)
        self._emit(
            FileStarted(
                transfer.id,
                path=record.path,
                size=plan.file_size,
                multipart=plan.multipart,
                part_size=plan.part_size,
                part_count=plan.part_count,
                parts_already_done=len(transfer.done),
                bytes_already_done=transfer.done_bytes,
            )
        )
        with self._lock:
            transfer.pending = sorted(pending)
            transfer.counting = True
        return NextStep.PARTS if pending else NextStep.FINISH

    def _decide(self, transfer: FileTransfer) -> Decision:
        """What the file's name, taken or not in its folder, leads to (see `existing`); the
        decision is journaled (with the batch, before any request) so that a resumed run does
        the same. `NameTaken` when the policy says to fail."""
        record = transfer.record
        policy = ExistingPolicy(record.existing or ExistingPolicy.VERSION.value)
        decision = self.listings.decide_and_reserve(
            record.target, title=transfer.name, path=record.path, size=record.size or 0, policy=policy
        )
        if decision.action is Action.VERSION:
            assert decision.document is not None
            self.persist(
                transfer,
                action=decision.action.value,
                version_of=decision.document.uid,
                doc_revision=decision.document.change_token,
            )
        elif decision.action is Action.RENAME:
            self.persist(transfer, action=decision.action.value, doc_name=decision.title)
        elif decision.action is Action.CREATE:
            self.persist(transfer, action=decision.action.value)
        return decision

    def _ensure_folder(self, target: str) -> None:
        # Checked once per folder and run: most files share a handful of folders.
        if target in self._known_folders:
            return
        if self.nuxeo.folder_exists(self.nuxeo.resolve_folder(target)):
            self._known_folders.add(target)
            return
        parent, _, name = target.rstrip("/").rpartition("/")
        if not name or not parent:
            raise NuxeoNotFound(f"the target folder {target} does not exist on Nuxeo")
        self._ensure_folder(parent)
        # A folder of that title (named otherwise) is the one the local folder goes to.
        same_title = self.listings.of(parent).folder_titled(name)
        if same_title is not None:
            self.nuxeo.use_folder(target, same_title.path)
        else:
            self.nuxeo.ensure_folder(parent, name)
        self._known_folders.add(target)

    def _attach_batch(self, transfer: FileTransfer) -> None:
        record = transfer.record
        if record.batch_id:
            try:
                self._use_batch(transfer, self.nuxeo.batch_info(record.batch_id))
            except BatchGone:
                if record.stage is Stage.CREATING_DOCUMENT:
                    # The server drops the batch at the end of a creation that ran: the creation
                    # is first sent again under its key, which answers with that document.
                    return
                self._replace_batch(transfer)
            return
        if (record.size or 0) <= self.settings.single_upload_limit:
            # A small file: one of the files of a shared batch.
            slot = self.shared_batches.take(transfer.id)
            batch, file_idx = slot.batch, slot.file_idx
            with self._lock:
                transfer.batch = batch
                transfer.credentials = slot.credentials
        else:
            batch, file_idx = self.nuxeo.new_batch(), 0
            self._use_batch(transfer, batch)
        self.advance(
            transfer,
            Stage.BATCHED,
            batch_id=batch.batch_id,
            file_idx=file_idx,
            handler=batch.provider,
            bucket=batch.location.bucket,
            object_key=batch.base_key + str(uuid.uuid4()),
        )

    def _replace_batch(self, transfer: FileTransfer) -> None:
        """Go on with a new batch after the server dropped the file's batch (it expires some
        hours after its creation). The object key, the multipart upload and the parts S3 holds
        are kept: a stock server's batch credentials cover the whole bucket, and `/complete`
        takes any key of it. Only what the old batch held is done again."""
        record = transfer.record
        batch = self.nuxeo.new_batch()
        if record.bucket and batch.location.bucket != record.bucket:
            self.restart(
                transfer, notice="its upload batch expired and the server now uses another bucket; uploading it again"
            )
            self._use_batch(transfer, batch)
            self.advance(
                transfer,
                Stage.BATCHED,
                batch_id=batch.batch_id,
                file_idx=0,
                handler=batch.provider,
                bucket=batch.location.bucket,
                object_key=batch.base_key + str(uuid.uuid4()),
            )
            return
        self._use_batch(transfer, batch)
        transfer.batch_replaced = True
        self.advance(
            transfer, stage_after_new_batch(record.stage), batch_id=batch.batch_id, file_idx=0, handler=batch.provider
        )
        self._emit(Notice(transfer.id, message=f"{record.path}: {_BATCH_GONE_NOTICE}"))

    def _plan(self, transfer: FileTransfer) -> UploadPlan:
        record = transfer.record
        size = record.size or 0
        if record.upload_id and record.part_size:
            return plan_resumed_upload(size, part_size=record.part_size)
        plan = plan_upload(
            size, single_upload_limit=self.settings.single_upload_limit, part_size=self.settings.part_size
        )
        self.persist(transfer, part_size=plan.part_size, part_count=plan.part_count)
        return plan

    def _reconcile_multipart(self, transfer: FileTransfer, plan: UploadPlan) -> list[int]:
        """Which parts still need sending. The journal is the truth; where the credentials may
        list the parts S3 holds (a stock Nuxeo's may not), that list corrects it: a part S3
        lacks is sent again, a part S3 holds that the journal missed is kept if it holds the
        file's bytes."""
        record = transfer.record
        if record.stage is Stage.STARTING_MULTIPART and not record.upload_id:
            self._emit(Notice(transfer.id, message=f"{record.path}: {_UNKNOWN_UPLOAD_NOTICE}"))
            self.advance(transfer, Stage.BATCHED)
        held: dict[int, PartRecord] = self._held_parts(transfer, plan) if record.upload_id else {}
        if not record.upload_id:
            self.advance(transfer, Stage.STARTING_MULTIPART, part_size=plan.part_size, part_count=plan.part_count)
            self.advance(transfer, Stage.SENDING, upload_id=self._start_multipart(transfer))
        with self._lock:
            transfer.done = held
            transfer.done_bytes = sum(p.size for p in held.values())
        return [part.number for part in plan.parts() if part.number not in held]

    def _start_multipart(self, transfer: FileTransfer) -> str:
        """CreateMultipartUpload, sent again (a few times) when its answer is lost, after
        accounting for the upload S3 may have started: aborted where the credentials may list
        and abort, else left to the server's clean-up, and the user told."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return self._s3.create_multipart(transfer)
            except StorageError as error:
                if not error.retryable or attempt == _START_ATTEMPTS:
                    raise
                if (
                    isinstance(error, StorageUnreachable) or error.code in _MAYBE_ACTED
                ) and not self._s3.abort_uploads_of_key(transfer):
                    self._emit(Notice(transfer.id, message=f"{transfer.path}: {_LOST_START_NOTICE}"))
                if self._clock.pause(transfer.control, 0.5 * attempt):
                    raise Interrupted(transfer.control.reason or "") from error
        raise AssertionError("unreachable")

    def _held_parts(self, transfer: FileTransfer, plan: UploadPlan) -> dict[int, PartRecord]:
        def fits(part: PartRecord) -> bool:
            return part.number <= plan.part_count and part.size == plan.part(part.number).size

        journal = self.store.parts(transfer.id)
        try:
            listed = self._s3.listed_parts(transfer)
        except UploadGone:
            self.forget_upload(transfer, notice=UPLOAD_GONE_NOTICE)
            return {}
        if listed is None:
            held = {number: part for number, part in journal.items() if fits(part)}
        else:
            held = {}
            for part in filter(fits, listed):
                known = journal.get(part.number)
                if known is not None and known.etag == part.etag:
                    held[part.number] = replace(part, checksum=part.checksum or known.checksum)
                else:
                    adopted = self._adopt_part(transfer, plan, part)
                    if adopted is not None:
                        held[part.number] = adopted
        if held != journal:
            self.store.replace_parts(transfer.id, held.values())
        return held

    def _adopt_part(self, transfer: FileTransfer, plan: UploadPlan, part: PartRecord) -> PartRecord | None:
        """A part S3 holds that the journal does not know (acknowledged as the last run died):
        kept when its ETag is the MD5 of the file's slice and its checksum can be computed
        here (completion needs it, and S3-compatible servers list none); else sent again."""
        algorithm = self._s3.algorithm(transfer)
        if part.checksum is None and not can_compute(algorithm):
            return None
        assert transfer.fd is not None
        slice_ = plan.part(part.number)
        digest = digest_slice(transfer.fd, offset=slice_.offset, size=slice_.size, algorithm=algorithm)
        if digest.md5_hex != part.etag.strip('"'):
            return None
        return replace(part, checksum=part.checksum or digest.checksum)


__all__ = ["FileSteps", "NextStep"]
