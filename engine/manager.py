"""The transfer manager: the one interface the TUI and the CLI drive.

Commands in: `add`, `load_unfinished`, `pause`/`resume`/`cancel` (one file or all),
`set_bandwidth_limit`, `shutdown`. Typed events out, through the sink given at construction.

How a file goes: *prepare* (open the file, get or re-check its batch, plan parts, create or
reconcile the multipart upload) → *parts* (each an independent task in the shared pool) →
*finish* (complete on S3, complete on Nuxeo, create the document, drop the batch). Every step is
written to the state store as soon as it is acknowledged, so a crash at any moment resumes
from what S3 and Nuxeo really hold.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .bandwidth import BandwidthLimiter
from .errors import (
    AccessDenied,
    BatchGone,
    FileChanged,
    IntegrityError,
    Interrupted,
    NotFoundError,
    NxupError,
    UploadGone,
)
from .events import (
    Event,
    EventSink,
    FileCancelled,
    FileCompleted,
    FileFailed,
    FilePaused,
    FileProgress,
    FileQueued,
    Notice,
    PartCompleted,
    PartProgress,
)
from .file_s3 import FileS3
from .file_steps import FileSteps, NextStep
from .finishing import UPLOAD_GONE_NOTICE, NewRound
from .inputs import LocalFile, RejectedPath, expand
from .nuxeo_batch import FOLDERISH, NuxeoBatchClient, ServerConnection
from .owner import Owner
from .pool import WorkerPool
from .s3 import S3Clients, S3Tuning
from .settings import TransferSettings
from .slices import PartCounter, StopReason
from .state import StateError, StateStore, UploadRecord, UploadStatus
from .transfer import FileTransfer, NewRoundCause

log = logging.getLogger(__name__)

# Priorities: lower runs first. Finishing and cleaning up free resources, so they go first;
# then parts of earlier files before later ones; new files last.
_P_CLEANUP = 0
_P_PART = 1
_P_PREPARE = 2

_FAILURE = "failure"  # a TransferControl reason: stop the file's other parts after a failure


_NEW_ROUND = "new round"  # a TransferControl reason: stop the parts, then recover (see `_send_part`)

_ADD_CHUNK = 500


@dataclass(slots=True)
class AddResult:
    file_ids: list[int] = field(default_factory=list)
    rejected: list[RejectedPath] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    file_id: int
    path: str
    name: str
    target: str
    size: int
    sent: int
    status: UploadStatus
    error: str | None
    part_count: int
    parts_done: int
    parts_in_flight: tuple[PartProgress, ...]
    done_part_numbers: frozenset[int]


class TransferManager:
    def __init__(
        self,
        connection: ServerConnection,
        *,
        store: StateStore,
        sink: EventSink,
        settings: TransferSettings | None = None,
    ) -> None:
        self.settings = settings or TransferSettings()
        self._settings_text = self.settings.journal_text()  # kept with every upload added
        self.connection = connection
        self.store = store
        self._sink = sink
        self.nuxeo = NuxeoBatchClient(connection)
        self.limiter = BandwidthLimiter(self.settings.bandwidth_limit)
        self._s3 = FileS3(
            clients=S3Clients(
                S3Tuning(
                    max_connections=self.settings.workers + 4,
                    max_attempts=self.settings.max_attempts,
                )
            ),
            checksum=self.settings.checksum,
            limiter=self.limiter,
        )
        self._pool = WorkerPool(self.settings.workers)
        self._nuxeo_pool = WorkerPool(self.settings.nuxeo_workers, name="nxup-nuxeo")
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._files: dict[int, FileTransfer] = {}
        self._waiting: deque[int] = deque()
        self._admitted: set[int] = set()  # files holding a slot: an open file and a live batch
        self._sequence = 0
        self._rejected_ids = 0
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="nxup-progress", daemon=True)
        self._last_sent: dict[int, int] = {}
        self._owner = Owner.current()
        self._steps = FileSteps(store=store, nuxeo=self.nuxeo, s3=self._s3, settings=self.settings,
                                emit=self._emit, lock=self._lock)
        # Adding is check-then-insert (an unfinished upload of the same file is reused): two
        # adds at once (the UI runs each in its own thread) must not both insert.
        self._add_lock = threading.Lock()

    # == lifecycle ============================================================================
    def start(self) -> TransferManager:
        self._pool.start()
        self._nuxeo_pool.start()
        self._ticker.start()
        return self

    def __enter__(self) -> TransferManager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self, *, timeout: float = 30.0) -> None:
        """Pause whatever is in flight (so `nxup resume` continues it) and stop the workers."""
        self.pause_all()
        deadline = time.monotonic() + timeout
        with self._changed:
            while any(t.working() for t in self._files.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
        self._closed.set()
        self._pool.stop(timeout=max(1.0, deadline - time.monotonic()))
        self._nuxeo_pool.stop(timeout=max(1.0, deadline - time.monotonic()))
        self._steps.drop_idle_batches()
        self._ticker.join(timeout=2)
        with self._lock:
            for transfer in self._files.values():
                if not transfer.working():  # a task still running closes its own file
                    transfer.close_file()
        # Idle keep-alive connections would otherwise hold the servers' graceful stop.
        self._s3.clients.close()
        self.nuxeo.close()
        try:
            self.store.release(self._owner)
        except StateError as error:  # a dead process's claims are free anyway
            log.warning("%s", error)

    # == commands =============================================================================
    def add(self, paths: Iterable[str | os.PathLike[str]], target: str) -> AddResult:
        """Queue files and folders (walked, mirrored under `target`). Bad paths are reported
        as `FileFailed` events with negative ids and never stop the others."""
        result = AddResult()
        target = "/" + target.strip("/") if target.strip("/") else "/"
        # Checked once for the whole call: a wrong password, an unreachable server or a missing
        # target folder is one clear error, not one per file. Sub-folders are created later.
        kind = self.nuxeo.folder_kind(target)
        if kind is None:
            self.nuxeo.check_rest_api()  # a URL that is no Nuxeo server says so, not "no folder"
            raise NotFoundError(f"the target folder {target} does not exist on Nuxeo")
        if kind != FOLDERISH:
            raise NotFoundError(f"the target {target} is a {kind} document, not a folder")
        chunk: list[LocalFile] = []
        for item in expand(paths, target):
            if isinstance(item, RejectedPath):
                result.rejected.append(item)
                with self._lock:
                    self._rejected_ids -= 1
                    rejected_id = self._rejected_ids
                self._emit(FileFailed(rejected_id, path=item.path, reason=item.reason, retryable=False))
                continue
            chunk.append(item)
            if len(chunk) >= _ADD_CHUNK:
                result.file_ids.extend(self._queue_local(chunk))
                chunk = []
        result.file_ids.extend(self._queue_local(chunk))
        return result

    def _queue_local(self, items: list[LocalFile]) -> list[int]:
        """Queue a chunk of files: one transaction for the new rows, then uploads may start
        while the next chunk is read (queueing 10,000 files must not wait for all of them)."""
        with self._add_lock:
            ids = self._queue_chunk(items)
        self._admit()
        return ids

    def _queue_chunk(self, items: list[LocalFile]) -> list[int]:
        ids: list[int] = []
        fresh: dict[tuple[str, str], UploadRecord] = {}  # the same file twice is one upload
        for item in items:
            existing = self.store.find_active(
                path=str(item.path), server_url=self.connection.url, target=item.target
            )
            if existing is not None and existing.id is not None:
                with self._lock:
                    known = existing.id in self._files
                if known:
                    ids.append(existing.id)
                elif self._claimed([existing]):
                    ids.append(self._enqueue(existing, resumed=True))
                continue
            fresh.setdefault((str(item.path), item.target), UploadRecord(
                path=str(item.path),
                size=item.size,
                mtime_ns=item.mtime_ns,
                server_url=self.connection.url,
                user=self.connection.user,
                target=item.target,
                doc_name=item.path.name,
                status=UploadStatus.QUEUED,
                checksum_algorithm=self.settings.checksum.value,
                transfer_settings=self._settings_text,
                owner_pid=self._owner.pid,
                owner_started=self._owner.started,
            ))
        ids.extend(self._enqueue(record, resumed=False) for record in self.store.add_uploads(list(fresh.values())))
        return ids

    def _claimed(self, records: list[UploadRecord]) -> list[UploadRecord]:
        """The records this process may work on; the others (another nxup works on them) are
        named once each, and left alone."""
        held = self.store.claim([r.id for r in records if r.id is not None], self._owner)
        for record in records:
            if record.id in held:
                self._emit(Notice(record.id, message=f"{record.path}: in use by nxup pid {held[record.id]}; left to it"))
        return [r for r in records if r.id not in held]

    def load_unfinished(self, *, paused: bool = False) -> list[int]:
        """Queue every unfinished upload of this server from the state store (after a crash,
        a quit, a pause or a failure). With `paused`, they wait for `resume` instead."""
        ids = []
        with self._add_lock:
            with self._lock:
                candidates = [
                    record for record in self.store.unfinished()
                    if record.server_url == self.connection.url and record.id is not None
                    and record.id not in self._files
                ]
            for record in self._claimed(candidates):
                ids.append(self._enqueue(record, resumed=True, paused=paused))
        self._admit()
        return ids

    def _enqueue(self, record: UploadRecord, *, resumed: bool, paused: bool = False) -> int:
        assert record.id is not None
        with self._lock:
            self._sequence += 1
            transfer = FileTransfer(record=record, sequence=self._sequence)
            self._files[record.id] = transfer
            if not paused:
                self._waiting.append(record.id)
        wanted = UploadStatus.PAUSED if paused else UploadStatus.QUEUED
        if record.status is not wanted:
            self._persist(transfer, status=wanted, error=None)
        self._emit(FileQueued(record.id, path=record.path, size=record.size or 0, target=record.target, resumed=resumed))
        if paused:
            transfer.status = UploadStatus.PAUSED
            transfer.control.interrupt(StopReason.PAUSE)
            self._emit(FilePaused(record.id, path=record.path))
        return record.id

    def pause(self, file_id: int) -> None:
        with self._lock:
            transfer = self._files.get(file_id)
            if transfer is None or transfer.status not in (UploadStatus.QUEUED, UploadStatus.UPLOADING):
                return
            transfer.control.interrupt(StopReason.PAUSE)
            transfer.resume_requested = False
            if transfer.id not in self._admitted:
                self._set_paused(transfer)
            else:
                self._settle_if_idle(transfer)

    def resume(self, file_id: int) -> None:
        with self._lock:
            transfer = self._files.get(file_id)
            if transfer is None:
                return
            if transfer.control.reason == StopReason.PAUSE and transfer.working():
                # Still winding down from a pause: queue it again as soon as it has settled.
                transfer.resume_requested = True
                return
            if transfer.status not in (UploadStatus.PAUSED, UploadStatus.FAILED) or transfer.working():
                return
            self._requeue(transfer)
        self._admit()

    def _requeue(self, transfer: FileTransfer) -> None:
        """Back to the front of the queue for a new round: its slot is given back and tasks of
        the round that ends do nothing (lock held)."""
        transfer.generation += 1
        self._release(transfer)
        transfer.control.clear()
        transfer.resume_requested = False
        transfer.error = None
        transfer.status = UploadStatus.QUEUED
        self._waiting.appendleft(transfer.id)
        self._persist(transfer, status=UploadStatus.QUEUED, error=None)
        self._emit(FileQueued(transfer.id, path=transfer.path, size=transfer.size,
                              target=transfer.record.target, resumed=True))

    def cancel(self, file_id: int) -> None:
        with self._lock:
            transfer = self._files.get(file_id)
            if transfer is None or transfer.status in (UploadStatus.DONE, UploadStatus.CANCELLED):
                return
            transfer.control.interrupt(StopReason.CANCEL)
            working = transfer.working()
            if not working:
                transfer.finishing = True
        # Recorded before the cleanup: a crash meanwhile must not bring the file back on resume
        # (an upload left behind is then listed by `nxup stale`).
        self.store.update(transfer.id, status=UploadStatus.CANCELLED)
        if not working:  # otherwise the last task to stop schedules the cleanup
            self._submit((_P_CLEANUP, transfer.sequence), self._abort, transfer)

    def pause_all(self) -> None:
        for file_id in self.file_ids():
            self.pause(file_id)

    def resume_all(self) -> None:
        for file_id in self.file_ids():
            self.resume(file_id)

    def cancel_all(self) -> None:
        for file_id in self.file_ids():
            self.cancel(file_id)

    def set_bandwidth_limit(self, rate: int | None) -> None:
        self.limiter.set_rate(rate)

    # == queries ==============================================================================
    def file_ids(self) -> list[int]:
        with self._lock:
            return list(self._files)

    def snapshot(self, file_id: int) -> FileSnapshot | None:
        transfer = self._files.get(file_id)
        if transfer is None:
            return None
        in_flight = tuple(
            PartProgress(number=c.number, sent=c.sent, size=c.size)
            for c in list(transfer.in_flight.values())
        )
        plan = transfer.plan
        return FileSnapshot(
            file_id=file_id,
            path=transfer.path,
            name=transfer.name,
            target=transfer.record.target,
            size=transfer.size,
            sent=transfer.sent(),
            status=transfer.status,
            error=transfer.error,
            part_count=plan.part_count if plan else 0,
            parts_done=len(transfer.done),
            parts_in_flight=in_flight,
            done_part_numbers=frozenset(transfer.done),
        )

    @property
    def credentials_rejected(self) -> int:
        """How many S3 calls were refused for expired credentials, then sent again."""
        return self._s3.credentials_rejected

    def is_idle(self) -> bool:
        """True when nothing is queued or uploading (every file is done, failed, cancelled or paused)."""
        with self._lock:
            # Admitted files are busy by definition: answer without walking every file, since
            # waiters ask again each time a file finishes.
            if self._admitted:
                return False
            return not any(
                t.status in (UploadStatus.QUEUED, UploadStatus.UPLOADING) or t.working()
                for t in self._files.values()
            )

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self.is_idle():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining if remaining is not None else 1.0)
        return True

    def counts(self) -> dict[UploadStatus, int]:
        with self._lock:
            counts = {status: 0 for status in UploadStatus}
            for transfer in self._files.values():
                counts[transfer.status] += 1
            return counts

    # == scheduling ===========================================================================
    def _admit(self) -> None:
        to_prepare: list[FileTransfer] = []
        with self._lock:
            while self._waiting and len(self._admitted) < self.settings.active_limit:
                transfer = self._files[self._waiting.popleft()]
                if transfer.status is not UploadStatus.QUEUED or transfer.id in self._admitted:
                    continue
                self._admitted.add(transfer.id)
                transfer.generation += 1
                to_prepare.append(transfer)
        for transfer in to_prepare:
            self._submit((_P_PREPARE, transfer.sequence), self._prepare, transfer, transfer.generation)

    def _submit(self, priority: tuple[int, ...], task: Callable[..., None], transfer: FileTransfer,
                *args: Any) -> None:
        self._pool.submit(priority, self._run_task, task, transfer, *args)

    def _run_task(self, task: Callable[..., None], transfer: FileTransfer, *args: Any) -> None:
        """Every task's last guard: whatever escapes it (the state store failing mid-way, a
        bug) ends the file's work with a reason, so no file holds its slot for ever."""
        try:
            task(transfer, *args)
        except Exception as exc:
            log.exception("an upload task failed unexpectedly")
            with self._lock:
                transfer.preparing = transfer.finishing = False
                transfer.in_flight.clear()
                if task == self._abort:  # cancelled all the same: do not schedule it again
                    transfer.status = UploadStatus.CANCELLED
                    self._emit(FileCancelled(transfer.id, path=transfer.path))
                    self._release(transfer)
            if task != self._abort:
                self._fail(transfer, exc)
            self._admit()

    def _files_await_a_batch(self) -> bool:
        """Whether files queued or being prepared may still take an index of a shared batch."""
        with self._lock:
            return bool(self._waiting) or any(self._files[i].record.batch_id is None for i in self._admitted)

    def _release(self, transfer: FileTransfer) -> None:
        """Give back the file's admission slot and open descriptor (lock held)."""
        transfer.close_file()
        self._admitted.discard(transfer.id)
        self._changed.notify_all()

    def _emit(self, event: Event) -> None:
        try:
            self._sink(event)
        except Exception:  # a broken sink must not break uploads
            log.exception("event sink failed")

    def _persist(self, transfer: FileTransfer, **fields: Any) -> None:
        self._steps.persist(transfer, **fields)

    def _tick(self) -> None:
        """Sample the counters a few times a second; one progress event per changed file."""
        while not self._closed.wait(self.settings.progress_interval_s):
            # Only admitted files can be uploading: no walk over every queued file.
            with self._lock:
                uploading = [i for i in self._admitted if self._files[i].status is UploadStatus.UPLOADING]
            for file_id in uploading:
                snapshot = self.snapshot(file_id)
                # Nothing sent yet is no progress to tell (a tiny file is often done before).
                if snapshot is None or self._last_sent.get(file_id, 0) == snapshot.sent:
                    continue
                self._last_sent[file_id] = snapshot.sent
                self._emit(
                    FileProgress(
                        file_id,
                        sent=snapshot.sent,
                        size=snapshot.size,
                        parts_done=snapshot.parts_done,
                        part_count=snapshot.part_count,
                        parts_in_flight=snapshot.parts_in_flight,
                    )
                )

    # == state changes ========================================================================
    def _set_paused(self, transfer: FileTransfer) -> None:
        # Tasks still queued for this file belong to the round that ends here: a resume starts
        # a new round (prepare again), and they must not run alongside it.
        transfer.generation += 1
        transfer.status = UploadStatus.PAUSED
        self._release(transfer)
        self._persist(transfer, status=UploadStatus.PAUSED)
        self._emit(FilePaused(transfer.id, path=transfer.path))

    def _settle_if_idle(self, transfer: FileTransfer) -> None:
        """Once an interrupted file has nothing in flight, finish its pause, cancel or failure
        (lock held)."""
        if transfer.working():
            return
        reason = transfer.control.reason
        if reason == StopReason.PAUSE and transfer.resume_requested:
            # Resumed before the pause had settled: start a new round instead of stopping.
            self._requeue(transfer)
        elif reason == StopReason.PAUSE and transfer.status is not UploadStatus.PAUSED:
            self._set_paused(transfer)
        elif reason == StopReason.CANCEL and transfer.status is not UploadStatus.CANCELLED:
            transfer.finishing = True
            self._submit((_P_CLEANUP, transfer.sequence), self._abort, transfer)
        elif reason == _FAILURE and transfer.status is UploadStatus.FAILED:
            self._release(transfer)
        elif reason == _NEW_ROUND and transfer.status is UploadStatus.UPLOADING:
            transfer.finishing = True
            self._submit((_P_CLEANUP, transfer.sequence), self._start_new_round, transfer)
        self._admit()

    def _fail(self, transfer: FileTransfer, error: BaseException) -> None:
        reason = str(error) if isinstance(error, NxupError) else f"unexpected error: {error!r}"
        retryable = error.retryable if isinstance(error, NxupError) else True
        with self._lock:
            if transfer.status in (UploadStatus.FAILED, UploadStatus.CANCELLED, UploadStatus.DONE):
                return
            if transfer.control.reason == StopReason.CANCEL:
                self._settle_if_idle(transfer)
                return
            transfer.status = UploadStatus.FAILED
            transfer.error = reason
            transfer.control.interrupt(_FAILURE)
            try:
                self._persist(transfer, status=UploadStatus.FAILED, error=reason)
            except StateError as store_error:
                # Failing the file must not fail: it is failed in this run, and the journal
                # still offers it for resume.
                log.warning("%s", store_error)
            # Announced before waiters can wake, so a caller of `wait()` counts the failure.
            self._emit(FileFailed(transfer.id, path=transfer.path, reason=reason, retryable=retryable))
            if not transfer.working():
                self._release(transfer)
        self._admit()

    # == prepare ==============================================================================
    def _prepare(self, transfer: FileTransfer, generation: int) -> None:
        with self._lock:
            if generation != transfer.generation:
                return
            if transfer.control.is_interrupted():
                self._settle_if_idle(transfer)
                return
            transfer.preparing = True
            transfer.reset_progress()
        next_step: NextStep | None = None
        try:
            next_step = self._steps.prepare(transfer)
        except Interrupted:
            pass
        except Exception as exc:  # every failure becomes a one-line reason on this file
            with self._lock:
                transfer.preparing = False
                transfer.close_file()
            self._fail(transfer, exc)
            return
        if next_step is NextStep.DONE:
            with self._lock:
                transfer.preparing = False
            assert transfer.record.doc_uid is not None
            self._finish_done(transfer, transfer.record.doc_uid, document_path="")
            return
        with self._lock:
            transfer.preparing = False
            if transfer.control.is_interrupted() or next_step is None:
                self._settle_if_idle(transfer)
                return
            if next_step is NextStep.FINISH:
                transfer.finishing = True
            pending = list(transfer.pending)
        if next_step is NextStep.FINISH:
            # A single upload is sent by the finish step itself (priority of a part).
            self._submit((_P_PART, transfer.sequence, 0), self._finish, transfer, generation)
            return
        for number in pending:
            self._submit((_P_PART, transfer.sequence, number), self._send_part, transfer, number, generation)

    # == parts ================================================================================
    def _send_part(self, transfer: FileTransfer, number: int, generation: int) -> None:
        with self._lock:
            if generation != transfer.generation or transfer.plan is None:
                return
            if transfer.control.is_interrupted() or transfer.fd is None:
                self._settle_if_idle(transfer)
                return
            part = transfer.plan.part(number)
            counter = PartCounter(number=number, size=part.size)
            transfer.in_flight[number] = counter
            if number in transfer.pending:
                transfer.pending.remove(number)
        try:
            part_record = self._s3.send_part(transfer, part=part, counter=counter)
            self.store.record_part(transfer.id, part_record)
        except Interrupted:
            with self._lock:
                transfer.in_flight.pop(number, None)
                transfer.pending.append(number)
                self._settle_if_idle(transfer)
            return
        except (UploadGone, BatchGone) as exc:
            # Recoverable without the user: once the other parts have stopped, a new round
            # takes a new batch or a new multipart upload and sends what S3 lacks.
            cause = NewRoundCause.UPLOAD_GONE if isinstance(exc, UploadGone) else NewRoundCause.BATCH_GONE
            self._stop_for_new_round(transfer, number, cause)
            return
        except IntegrityError as exc:
            # S3 found the part's bytes differ from their checksum: the file was written to
            # while it was read (then it starts over), or the bytes were damaged on the way.
            if self._steps.differs_from_start(transfer):
                self._stop_for_new_round(transfer, number, NewRoundCause.FILE_CHANGED)
            else:
                self._stop_for_failure(transfer, number, exc)
            return
        except FileChanged:
            # The file became shorter under the part being read: it starts over, as one that grew.
            self._stop_for_new_round(transfer, number, NewRoundCause.FILE_CHANGED)
            return
        except AccessDenied as exc:
            if not transfer.batch_replaced:
                self._stop_for_failure(transfer, number, exc)
                return
            # A deployment whose batch credentials cover only their own batch's prefix: the
            # new batch may not go on with the old key, so the file starts over under a new one.
            self._stop_for_new_round(transfer, number, NewRoundCause.KEY_DENIED)
            return
        except Exception as exc:
            self._stop_for_failure(transfer, number, exc)
            return
        with self._lock:
            transfer.in_flight.pop(number, None)
            transfer.done[number] = part_record
            transfer.done_bytes += part.size
            all_done = len(transfer.done) == transfer.plan.part_count
            interrupted = transfer.control.is_interrupted()
            if all_done and not interrupted:
                transfer.finishing = True
        self._emit(PartCompleted(transfer.id, number=number, size=part.size))
        if interrupted:
            with self._lock:
                self._settle_if_idle(transfer)
        elif all_done:
            self._finish(transfer)

    def _stop_for_failure(self, transfer: FileTransfer, number: int, error: BaseException) -> None:
        with self._lock:
            transfer.in_flight.pop(number, None)
            transfer.pending.append(number)
        self._fail(transfer, error)
        with self._lock:
            self._settle_if_idle(transfer)

    def _stop_for_new_round(self, transfer: FileTransfer, number: int, cause: NewRoundCause) -> None:
        with self._lock:
            transfer.in_flight.pop(number, None)
            transfer.pending.append(number)
            transfer.new_round_cause = max(cause, transfer.new_round_cause or cause)
            transfer.control.interrupt(_NEW_ROUND)
            self._settle_if_idle(transfer)

    def _start_new_round(self, transfer: FileTransfer) -> None:
        """After a part found the batch or the multipart upload gone (see `_send_part`)."""
        cause, transfer.new_round_cause = transfer.new_round_cause, None
        try:
            if cause is NewRoundCause.FILE_CHANGED:
                self._steps.restart_changed(transfer, FileChanged("the file changed while it was being uploaded"))
            elif cause is NewRoundCause.KEY_DENIED:
                self._steps.restart(transfer, notice="the new upload batch may not write to the old one's key; uploading it again")
            elif cause is NewRoundCause.UPLOAD_GONE:
                self._steps.forget_upload(transfer, notice=UPLOAD_GONE_NOTICE)
        except Exception as exc:
            with self._lock:
                transfer.finishing = False
            self._fail(transfer, exc)
            return
        with self._lock:
            transfer.finishing = False
            self._requeue(transfer)
        self._admit()

    # == finish ===============================================================================
    def _finish(self, transfer: FileTransfer, generation: int | None = None, *, on_nuxeo_worker: bool = False) -> None:
        """Runs on the S3 worker that sent the last part (or at prepare, when nothing is left)
        until only Nuxeo requests are left, then goes on on a Nuxeo worker."""
        if generation is not None and generation != transfer.generation:
            return
        try:
            # Stages between requests are journaled together (see `FileSteps.writes_held`).
            with self._steps.writes_held(transfer):
                documented = self._steps.finish(transfer, s3_only=not on_nuxeo_worker)
                if documented:
                    assert transfer.record.doc_uid is not None
                    self._finish_done(transfer, transfer.record.doc_uid, document_path=transfer.document_path)
            if not documented:  # handed over once its journal is written
                self._nuxeo_pool.submit((_P_CLEANUP, transfer.sequence), self._run_task,
                                        self._finish_on_nuxeo_worker, transfer)
        except Interrupted:
            with self._lock:
                transfer.finishing = False
                self._settle_if_idle(transfer)
        except NewRound:
            with self._lock:
                transfer.finishing = False
                self._requeue(transfer)
            self._admit()
        except FileChanged as change:
            try:
                self._steps.restart_changed(transfer, change)
            except Exception as exc:
                with self._lock:
                    transfer.finishing = False
                self._fail(transfer, exc)
                return
            with self._lock:
                transfer.finishing = False
                self._requeue(transfer)
            self._admit()
        except Exception as exc:
            with self._lock:
                transfer.finishing = False
            self._fail(transfer, exc)

    def _finish_on_nuxeo_worker(self, transfer: FileTransfer) -> None:
        self._finish(transfer, on_nuxeo_worker=True)

    def _finish_done(self, transfer: FileTransfer, doc_uid: str, *, document_path: str) -> None:
        # Stored while the file still counts as working, and announced before waiters wake:
        # once `wait()` returns, the store says DONE (a caller may close it right away) and the
        # sink has seen the completion.
        self._persist(transfer, status=UploadStatus.DONE, doc_uid=doc_uid, error=None, finished_at=time.time())
        self._steps.save_held(transfer)
        self._steps.done_with_batch(transfer, more_coming=self._files_await_a_batch())
        if transfer.control.reason == StopReason.CANCEL:
            # A cancel that came once every byte was on S3 finishes the file instead of leaving
            # an object no document holds.
            self._emit(Notice(transfer.id, message=f"{transfer.path}: cancelled too late: its bytes were all on "
                                                   "S3, so its upload was finished"))
        with self._lock:
            transfer.status = UploadStatus.DONE
            transfer.finishing = False
            transfer.done_bytes = transfer.size
            self._emit(
                FileCompleted(
                    transfer.id, path=transfer.path, size=transfer.size, document_path=document_path,
                    document_uid=doc_uid, etag=transfer.record.etag or "",
                )
            )
            self._release(transfer)
        self._admit()

    # == cancel ===============================================================================
    def _abort(self, transfer: FileTransfer) -> None:
        self._steps.abort_multipart_quietly(transfer)
        self._steps.done_with_batch(transfer, more_coming=self._files_await_a_batch())
        self.store.forget_parts(transfer.id)
        # As in `_finish_done`: stored and announced before the file stops counting as working.
        self._persist(transfer, status=UploadStatus.CANCELLED, finished_at=time.time())
        with self._lock:
            transfer.status = UploadStatus.CANCELLED
            transfer.finishing = False
            self._emit(FileCancelled(transfer.id, path=transfer.path))
            self._release(transfer)
        self._admit()

__all__ = [
    "AddResult",
    "FileSnapshot",
    "TransferManager",
    "TransferSettings",
]
