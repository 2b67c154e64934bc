"""Pause, resume and cancel of one file: each stops or restarts a file now if nothing runs on
it, or marks it so that its last running task settles it (see `Scheduler.settle_if_idle`)."""

from __future__ import annotations

from .lifecycle import UploadStatus
from .scheduler import P_CLEANUP, Scheduler
from .slices import StopReason
from .state import StateStore


class FileControl:
    def __init__(self, scheduler: Scheduler, *, store: StateStore) -> None:
        self._scheduler = scheduler
        self._lock = scheduler.lock
        self._store = store

    def pause(self, file_id: int) -> None:
        with self._lock:
            transfer = self._scheduler.files.get(file_id)
            if transfer is None or transfer.status not in (UploadStatus.QUEUED, UploadStatus.UPLOADING):
                return
            transfer.control.interrupt(StopReason.PAUSE)
            transfer.resume_requested = False
            if transfer.id not in self._scheduler.admitted:
                self._scheduler.set_paused(transfer)
            else:
                self._scheduler.settle_if_idle(transfer)

    def resume(self, file_id: int) -> None:
        with self._lock:
            transfer = self._scheduler.files.get(file_id)
            if transfer is None:
                return
            if transfer.control.reason == StopReason.PAUSE and transfer.working():
                # Still winding down from a pause: queue it again as soon as it has settled.
                transfer.resume_requested = True
                return
            if transfer.status not in (UploadStatus.PAUSED, UploadStatus.FAILED) or transfer.working():
                return
            self._scheduler.requeue(transfer)
        self._scheduler.admit()

    def cancel(self, file_id: int) -> None:
        with self._lock:
            transfer = self._scheduler.files.get(file_id)
            if transfer is None or transfer.status in (UploadStatus.DONE, UploadStatus.CANCELLED,
                                                       UploadStatus.SKIPPED):
                return
            transfer.control.interrupt(StopReason.CANCEL)
            working = transfer.working()
            if not working:
                transfer.finishing = True
        # Recorded before the cleanup: a crash meanwhile must not bring the file back on resume
        # (an upload left behind is then listed by `nxup stale`).
        self._store.update(transfer.id, status=UploadStatus.CANCELLED)
        if not working:  # otherwise the last task to stop schedules the cleanup
            self._scheduler.submit((P_CLEANUP, transfer.sequence), self._scheduler.tasks.abort, transfer)
