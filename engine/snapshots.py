"""What the front ends read of a file while it uploads: a snapshot of its counters, and the
progress events sampled from them a few times a second."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .events import FileProgress, PartProgress
from .lifecycle import UploadStatus
from .scheduler import Scheduler
from .transfer import FileTransfer


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    file_id: int
    path: str
    name: str
    target: str
    size: int
    sent: int  # acknowledged + in_flight
    status: UploadStatus
    error: str | None
    part_count: int
    parts_done: int
    parts_in_flight: tuple[PartProgress, ...]
    done_part_numbers: frozenset[int]
    acknowledged: int = 0  # bytes of parts S3 answered for
    in_flight: int = 0  # bytes of parts S3 has not answered yet


def snapshot_of(transfer: FileTransfer) -> FileSnapshot:
    """Read without the lock: counters move while they are read, and a sample is all a view needs."""
    in_flight = tuple(
        PartProgress(number=c.number, sent=c.sent, size=c.size)
        for c in list(transfer.in_flight.values())
    )
    plan = transfer.plan
    acknowledged = transfer.done_bytes
    in_flight_bytes = sum(part.sent for part in in_flight)
    return FileSnapshot(
        file_id=transfer.id,
        path=transfer.path,
        name=transfer.name,
        target=transfer.record.target,
        size=transfer.size,
        sent=acknowledged + in_flight_bytes,
        acknowledged=acknowledged,
        in_flight=in_flight_bytes,
        status=transfer.status,
        error=transfer.error,
        part_count=plan.part_count if plan else 0,
        parts_done=len(transfer.done),
        parts_in_flight=in_flight,
        done_part_numbers=frozenset(transfer.done),
    )


class ProgressTicker:
    """Samples the counters a few times a second; one progress event per changed file."""

    def __init__(self, scheduler: Scheduler, *, interval_s: float) -> None:
        self._scheduler = scheduler
        self._interval_s = interval_s
        self._closed = threading.Event()
        self._last_sent: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name="nxup-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._closed.set()

    def join(self, timeout: float) -> None:
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        scheduler = self._scheduler
        while not self._closed.wait(self._interval_s):
            # Only admitted files can be uploading: no walk over every queued file.
            with scheduler.lock:
                uploading = [scheduler.files[i] for i in scheduler.admitted
                             if scheduler.files[i].status is UploadStatus.UPLOADING and scheduler.files[i].counting]
            for transfer in uploading:
                snapshot = snapshot_of(transfer)
                # Nothing sent yet is no progress to tell (a tiny file is often done before).
                if self._last_sent.get(transfer.id, 0) == snapshot.sent:
                    continue
                self._last_sent[transfer.id] = snapshot.sent
                scheduler.emit(
                    FileProgress(
                        transfer.id,
                        sent=snapshot.sent,
                        size=snapshot.size,
                        parts_done=snapshot.parts_done,
                        part_count=snapshot.part_count,
                        parts_in_flight=snapshot.parts_in_flight,
                        acknowledged=snapshot.acknowledged,
                        in_flight=snapshot.in_flight,
                    )
                )
