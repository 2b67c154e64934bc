"""Which file's work runs when: admission slots, the shared worker pools, and how a file
settles once its tasks stop (paused, cancelled, failed, or back in the queue for a new round).

The scheduler owns the lock every file's in-memory state changes under; the tasks that do a
file's work (`file_tasks`) run on its pools and report back through it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .edges import Executor
from .errors import NxupError
from .events import Event, EventSink, FileCancelled, FileFailed, FilePaused, FileQueued
from .file_steps import FileSteps
from .lifecycle import UploadStatus
from .part_gate import PartGate
from .pool import Priority
from .settings import TransferSettings
from .slices import StopReason
from .state import StateError, UploadRecord
from .transfer import FileTransfer

log = logging.getLogger(__name__)

# Priorities: lower runs first. Finishing and cleaning up free resources, so they go first;
# then parts of earlier files before later ones; new files last.
P_CLEANUP = 0
P_PART = 1
P_PREPARE = 2

FAILURE = "failure"  # a TransferControl reason: stop the file's other parts after a failure
NEW_ROUND = "new round"  # a TransferControl reason: stop the parts, then recover (see `FileTasks.send_part`)

Task = Callable[..., None]


class FileTaskRunner(Protocol):
    """What the scheduler starts on a file (implemented by `FileTasks`)."""

    def prepare(self, transfer: FileTransfer, generation: int) -> None: ...

    def abort(self, transfer: FileTransfer) -> None: ...

    def start_new_round(self, transfer: FileTransfer) -> None: ...


class Scheduler:
    def __init__(self, *, settings: TransferSettings, steps: FileSteps, sink: EventSink,
                 lock: threading.RLock, pool: Executor, nuxeo_pool: Executor,
                 tasks: Callable[[Scheduler], FileTaskRunner]) -> None:
        self.settings = settings
        self.steps = steps
        self._sink = sink
        self.lock = lock
        self.changed = threading.Condition(lock)
        self.pool = pool
        self.nuxeo_pool = nuxeo_pool
        self.part_gate = PartGate(pool, settings.bandwidth_limit)
        self.files: dict[int, FileTransfer] = {}
        self.waiting: deque[int] = deque()
        self.admitted: set[int] = set()  # files holding a slot: an open file and a live batch
        self._sequence = 0
        self.tasks = tasks(self)  # the tasks report back to this scheduler

    # == files in ==============================================================================
    def register(self, record: UploadRecord, *, queued: bool) -> FileTransfer:
        """Add a file, placed after every file added before it (lock held)."""
        self._sequence += 1
        transfer = FileTransfer(record=record, sequence=self._sequence)
        self.files[transfer.id] = transfer
        if queued:
            self.waiting.append(transfer.id)
        return transfer

    def admit(self) -> None:
        to_prepare: list[FileTransfer] = []
        with self.lock:
            while self.waiting and len(self.admitted) < self.settings.active_limit:
                transfer = self.files[self.waiting.popleft()]
                if transfer.status is not UploadStatus.QUEUED or transfer.id in self.admitted:
                    continue
                self.admitted.add(transfer.id)
                transfer.generation += 1
                to_prepare.append(transfer)
        for transfer in to_prepare:
            self.submit((P_PREPARE, transfer.sequence), self.tasks.prepare, transfer, transfer.generation)

    def submit(self, priority: Priority, task: Task, transfer: FileTransfer, *args: Any) -> None:
        self.pool.submit(priority, self._run_task, task, transfer, *args)

    def submit_part(self, priority: Priority, size: int, task: Task, transfer: FileTransfer, *args: Any) -> None:
        """A part of a multipart upload: on the pool once the bandwidth cap allows it (see `part_gate`)."""
        self.part_gate.submit(priority, size, self._run_task, task, transfer, *args)

    def submit_to_nuxeo(self, priority: Priority, task: Task, transfer: FileTransfer, *args: Any) -> None:
        self.nuxeo_pool.submit(priority, self._run_task, task, transfer, *args)

    def _run_task(self, task: Task, transfer: FileTransfer, *args: Any) -> None:
        """Every task's last guard: whatever escapes it (the state store failing mid-way, a
        bug) ends the file's work with a reason, so no file holds its slot for ever."""
        try:
            task(transfer, *args)
        except Exception as exc:
            log.exception("an upload task failed unexpectedly")
            aborting = task == self.tasks.abort
            with self.lock:
                transfer.preparing = transfer.finishing = False
                transfer.in_flight.clear()
                if aborting:  # cancelled all the same: do not schedule it again
                    transfer.status = UploadStatus.CANCELLED
                    self.emit(FileCancelled(transfer.id, path=transfer.path))
                    self.release(transfer)
            if not aborting:
                self.fail(transfer, exc)
            self.admit()

    def files_await_a_batch(self) -> bool:
        """Whether files queued or being prepared may still take an index of a shared batch."""
        with self.lock:
            return bool(self.waiting) or any(self.files[i].record.batch_id is None for i in self.admitted)

    def is_idle(self) -> bool:
        """True when nothing is queued or uploading (every file is done, failed, cancelled or paused)."""
        with self.lock:
            # Admitted files are busy by definition: answer without walking every file, since
            # waiters ask again each time a file finishes.
            if self.admitted:
                return False
            return not any(
                t.status in (UploadStatus.QUEUED, UploadStatus.UPLOADING) or t.working()
                for t in self.files.values()
            )

    # == state changes =========================================================================
    def release(self, transfer: FileTransfer) -> None:
        """Give back the file's admission slot and open descriptor (lock held)."""
        transfer.close_file()
        self.admitted.discard(transfer.id)
        self.changed.notify_all()

    def emit(self, event: Event) -> None:
        try:
            self._sink(event)
        except Exception:  # a broken sink must not break uploads
            log.exception("event sink failed")

    def persist(self, transfer: FileTransfer, **fields: Any) -> None:
        self.steps.persist(transfer, **fields)

    def requeue(self, transfer: FileTransfer) -> None:
        """Back to the front of the queue for a new round: its slot is given back and tasks of
        the round that ends do nothing (lock held)."""
        transfer.generation += 1
        self.release(transfer)
        transfer.control.clear()
        transfer.resume_requested = False
        transfer.error = None
        transfer.status = UploadStatus.QUEUED
        self.waiting.appendleft(transfer.id)
        self.persist(transfer, status=UploadStatus.QUEUED, error=None)
        self.emit(FileQueued(transfer.id, path=transfer.path, size=transfer.size,
                             target=transfer.record.target, resumed=True))

    def set_paused(self, transfer: FileTransfer) -> None:
        # Tasks still queued for this file belong to the round that ends here: a resume starts
        # a new round (prepare again), and they must not run alongside it.
        transfer.generation += 1
        transfer.status = UploadStatus.PAUSED
        self.release(transfer)
        self.persist(transfer, status=UploadStatus.PAUSED)
        # What the pause kept, and what it dropped: bytes that were in flight go again on resume.
        dropped, transfer.dropped_bytes = transfer.dropped_bytes, 0
        self.emit(FilePaused(transfer.id, path=transfer.path, acknowledged=transfer.done_bytes, dropped=dropped))

    def settle_if_idle(self, transfer: FileTransfer) -> None:
        """Once an interrupted file has nothing in flight, finish its pause, cancel or failure
        (lock held)."""
        if transfer.working():
            return
        reason = transfer.control.reason
        if reason == StopReason.PAUSE and transfer.resume_requested:
            # Resumed before the pause had settled: start a new round instead of stopping.
            self.requeue(transfer)
        elif reason == StopReason.PAUSE and transfer.status is not UploadStatus.PAUSED:
            self.set_paused(transfer)
        elif reason == StopReason.CANCEL and transfer.status is not UploadStatus.CANCELLED:
            transfer.finishing = True
            self.submit((P_CLEANUP, transfer.sequence), self.tasks.abort, transfer)
        elif reason == FAILURE and transfer.status is UploadStatus.FAILED:
            self.release(transfer)
        elif reason == NEW_ROUND and transfer.status is UploadStatus.UPLOADING:
            transfer.finishing = True
            self.submit((P_CLEANUP, transfer.sequence), self.tasks.start_new_round, transfer)
        self.admit()

    def fail(self, transfer: FileTransfer, error: BaseException) -> None:
        reason = str(error) if isinstance(error, NxupError) else f"unexpected error: {error!r}"
        retryable = error.retryable if isinstance(error, NxupError) else True
        with self.lock:
            if transfer.status in (UploadStatus.FAILED, UploadStatus.CANCELLED, UploadStatus.DONE,
                                   UploadStatus.SKIPPED):
                return
            if transfer.control.reason == StopReason.CANCEL:
                self.settle_if_idle(transfer)
                return
            transfer.status = UploadStatus.FAILED
            transfer.error = reason
            transfer.control.interrupt(FAILURE)
            try:
                self.persist(transfer, status=UploadStatus.FAILED, error=reason)
            except StateError as store_error:
                # Failing the file must not fail: it is failed in this run, and the journal
                # still offers it for resume.
                log.warning("%s", store_error)
            # Announced before waiters can wake, so a caller of `wait()` counts the failure.
            self.emit(FileFailed(transfer.id, path=transfer.path, reason=reason, retryable=retryable))
            if not transfer.working():
                self.release(transfer)
        self.admit()
