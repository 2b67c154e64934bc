"""What the transfer screens show, kept apart from widgets so it can be tested on its own.

Lifecycle events update rows as they arrive; `sample()` reads the engine's byte counters a few
times a second for the files that are uploading, and derives speed and ETA from them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from engine.events import (
    Event,
    FileCancelled,
    FileCompleted,
    FileFailed,
    FileIgnored,
    FilePaused,
    FileQueued,
    FileSkipped,
    FileStarted,
    Notice,
)
from engine.lifecycle import UploadStatus
from engine.manager import FileSnapshot
from engine.text import display_name, printable, size_text

# Speeds are smoothed over a few samples so the numbers are readable.
_SPEED_SMOOTHING = 0.3
SPARKLINE_SECONDS = 60


@dataclass(slots=True)
class FileRow:
    file_id: int
    path: str
    size: int
    status: UploadStatus = UploadStatus.QUEUED
    sent: int = 0  # acknowledged + in flight
    acknowledged: int = 0  # of `sent`, the bytes S3 answered for: they never go back
    speed: float = 0.0
    reason: str = ""
    document_path: str = ""
    multipart: bool = False
    part_count: int = 0
    _last_sample: tuple[float, int] | None = None

    @property
    def name(self) -> str:
        return display_name(self.path)

    @property
    def fraction(self) -> float:
        if self.status is UploadStatus.DONE:
            return 1.0
        return min(self.sent / self.size, 1.0) if self.size else 0.0

    @property
    def acknowledged_fraction(self) -> float:
        if self.status is UploadStatus.DONE:
            return 1.0
        return min(self.acknowledged / self.size, 1.0) if self.size else 0.0

    @property
    def eta(self) -> float | None:
        if self.status is not UploadStatus.UPLOADING or self.speed < 1:
            return None
        return max(self.size - self.sent, 0) / self.speed

    def state_text(self) -> str:
        if self.status is UploadStatus.FAILED:
            return f"failed: {printable(self.reason)}" if self.reason else "failed"
        return self.status.value


@dataclass(slots=True)
class Totals:
    files: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    paused: int = 0
    skipped: int = 0  # already in the target folder: nothing sent
    uploading: int = 0
    size: int = 0
    sent: int = 0
    speed: float = 0.0

    @property
    def left(self) -> int:
        return self.files - self.done - self.failed - self.cancelled - self.skipped

    @property
    def eta(self) -> float | None:
        if self.speed < 1:
            return None
        return max(self.size - self.sent, 0) / self.speed


@dataclass
class TransferModel:
    """Rows by file id, totals, a throughput history and a log of notable events.

    Totals are kept up to date as rows change, so reading them costs the same with 10 files or
    10,000: only the files uploading right now are summed on each sample.
    """

    clock: Callable[[], float] = time.monotonic
    rows: dict[int, FileRow] = field(default_factory=dict)
    history: deque[float] = field(default_factory=lambda: deque([0.0] * SPARKLINE_SECONDS, maxlen=SPARKLINE_SECONDS))
    log: deque[str] = field(default_factory=lambda: deque(maxlen=2000))  # lines as shown (printable)
    _last_total: tuple[float, int] | None = None
    _resumed_bytes: int = 0  # on S3 before this run, in files started since: not throughput
    _settled: Totals = field(default_factory=Totals)  # every row that is not uploading
    _uploading: set[int] = field(default_factory=set)

    # -- totals bookkeeping ----------------------------------------------------------------
    def _count(self, row: FileRow, sign: int) -> None:
        """Add (sign=1) or remove (sign=-1) a row's share of the totals."""
        if row.status is UploadStatus.UPLOADING:
            if sign > 0:
                self._uploading.add(row.file_id)
            else:
                self._uploading.discard(row.file_id)
            self._settled.files += sign
            self._settled.size += sign * row.size
            return
        totals = self._settled
        totals.files += sign
        if row.status is UploadStatus.CANCELLED:
            totals.cancelled += sign
            return
        if row.status is UploadStatus.SKIPPED:
            totals.skipped += sign
            return
        if row.status is UploadStatus.FAILED and row.file_id < 0:
            totals.failed += sign  # a path rejected before upload: no bytes to count
            return
        totals.size += sign * row.size
        if row.status is UploadStatus.DONE:
            totals.done += sign
            totals.sent += sign * row.size
            return
        totals.sent += sign * row.sent
        if row.status is UploadStatus.FAILED:
            totals.failed += sign
        elif row.status is UploadStatus.PAUSED:
            totals.paused += sign

    def recount(self) -> None:
        """Rebuild the totals from the rows (after rows were changed directly)."""
        self._settled, self._uploading = Totals(), set()
        for row in self.rows.values():
            self._count(row, +1)

    def totals(self) -> Totals:
        totals = replace(self._settled)
        for file_id in self._uploading:
            row = self.rows[file_id]
            totals.uploading += 1
            totals.sent += row.sent
            totals.speed += row.speed
        return totals

    # -- lifecycle events ------------------------------------------------------------------
    def apply(self, events: Iterable[Event]) -> set[int]:
        """Apply lifecycle events; returns the ids of rows that changed (new ones included)."""
        changed: set[int] = set()
        for event in events:
            row = self.rows.get(event.file_id)
            if isinstance(event, Notice):
                self.log.append(printable(event.message))
                continue
            if isinstance(event, FileIgnored):
                self.log.append(printable(f"ignored: {event.path}: {event.reason}"))
                continue
            if row is None:
                if isinstance(event, FileQueued):
                    row = self.rows[event.file_id] = FileRow(event.file_id, event.path, event.size)
                elif isinstance(event, FileFailed):
                    row = self.rows[event.file_id] = FileRow(event.file_id, event.path, 0)
                    row.status, row.reason = UploadStatus.FAILED, event.reason
                    self.log.append(printable(f"failed: {event.path}: {event.reason}"))
                else:
                    continue
                self._count(row, +1)
                changed.add(event.file_id)
                continue
            self._count(row, -1)
            self._change(row, event)
            self._count(row, +1)
            changed.add(event.file_id)
        return changed

    def _change(self, row: FileRow, event: Event) -> None:
        if isinstance(event, FileQueued):
            row.status, row.reason = UploadStatus.QUEUED, ""
        elif isinstance(event, FileStarted):
            row.status, row.multipart, row.part_count = UploadStatus.UPLOADING, event.multipart, event.part_count
            row.size = event.size
            row._last_sample = None
            self._resumed_bytes += event.bytes_already_done
        elif isinstance(event, FileCompleted):
            row.status, row.sent, row.speed = UploadStatus.DONE, row.size, 0.0
            row.document_path = event.document_path
            self.log.append(printable(f"done: {event.path} -> {event.document_path}"))
        elif isinstance(event, FileFailed):
            row.status, row.reason, row.speed = UploadStatus.FAILED, event.reason, 0.0
            self.log.append(printable(f"failed: {event.path}: {event.reason}"))
        elif isinstance(event, FilePaused):
            row.status, row.speed = UploadStatus.PAUSED, 0.0
            if row.acknowledged or event.acknowledged:  # a file paused before it started keeps its figures
                row.sent = row.acknowledged = event.acknowledged
            if event.dropped:
                self.log.append(printable(f"paused: {event.path}: kept {size_text(event.acknowledged)} acknowledged, "
                                          f"{size_text(event.dropped)} in flight will be sent again"))
        elif isinstance(event, FileCancelled):
            row.status, row.speed, row.sent = UploadStatus.CANCELLED, 0.0, 0
            self.log.append(printable(f"cancelled: {event.path}"))
        elif isinstance(event, FileSkipped):
            row.status, row.reason, row.speed, row.sent = UploadStatus.SKIPPED, event.reason, 0.0, 0
            row.document_path = event.document_path
            self.log.append(printable(f"skipped: {event.path}: {event.reason}"))

    # -- sampling --------------------------------------------------------------------------
    def sample(self, snapshot: Callable[[int], FileSnapshot | None]) -> set[int]:
        """Read the counters of uploading files; returns the ids whose numbers changed."""
        now = self.clock()
        changed: set[int] = set()
        for file_id in list(self._uploading):
            row = self.rows[file_id]
            snap = snapshot(file_id)
            if snap is None:
                continue
            sent = snap.sent
            if row._last_sample is not None:
                then, before = row._last_sample
                if now > then:
                    instant = max(sent - before, 0) / (now - then)
                    row.speed = instant if row.speed == 0 else (
                        _SPEED_SMOOTHING * instant + (1 - _SPEED_SMOOTHING) * row.speed
                    )
            row._last_sample = (now, sent)
            if sent != row.sent or snap.acknowledged != row.acknowledged or snap.part_count != row.part_count:
                row.sent, row.acknowledged, row.part_count = sent, snap.acknowledged, snap.part_count or row.part_count
                changed.add(row.file_id)
            elif row.speed:
                changed.add(row.file_id)
        return changed

    def record_throughput(self, totals: Totals) -> bool:
        """Add one point per second to the throughput history; True when a point was added."""
        now = self.clock()
        sent = totals.sent - self._resumed_bytes
        if self._last_total is None:
            self._last_total = (now, sent)
            return False
        then, sent_then = self._last_total
        if now - then < 1.0:
            return False
        self.history.append(max(sent - sent_then, 0) / (now - then))
        self._last_total = (now, sent)
        return True
