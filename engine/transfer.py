"""The in-memory state of one file being uploaded, shared by the tasks that work on it."""

from __future__ import annotations

import mimetypes
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypeVar

from .credentials import BatchCredentials
from .lifecycle import UploadStatus
from .nuxeo_batch import BatchInfo
from .planning import UploadPlan
from .slices import PartCounter, TransferControl
from .state import PartRecord, UploadRecord


class NewRoundCause(IntEnum):
    """What a part found that the file recovers from by a new round; a stronger cause's recovery
    covers a weaker one's (starting over also replaces a lost upload)."""

    BATCH_GONE = 0  # prepare takes a new batch
    UPLOAD_GONE = 1  # the multipart upload is gone from S3: its parts go again under a new one
    KEY_DENIED = 2  # a new batch may not write to the old key: start over under a new key
    FILE_CHANGED = 3  # the file changed while read: start over


def content_type_for(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


_MAKING = threading.Lock()
_Made = TypeVar("_Made")


class _MadeOnUse(Generic[_Made]):
    """A container attribute of `FileTransfer` made on first use: most of 100,000 queued files
    never need their part containers (about 250 bytes a file). Made under a lock, since a sampler
    reading it while a worker first writes it must get the same one."""

    def __init__(self, slot: str, make: Callable[[], _Made]) -> None:
        self._slot = slot
        self._make = make

    def __get__(self, transfer: FileTransfer, owner: type | None = None) -> _Made:
        made: _Made | None = getattr(transfer, self._slot)
        if made is None:
            with _MAKING:
                made = getattr(transfer, self._slot)
                if made is None:
                    made = self._make()
                    setattr(transfer, self._slot, made)
        return made

    def __set__(self, transfer: FileTransfer, value: _Made) -> None:
        setattr(transfer, self._slot, value)


@dataclass(slots=True)
class FileTransfer:
    """Mutable; every change happens under the manager's lock."""

    record: UploadRecord
    sequence: int
    control: TransferControl = field(default_factory=TransferControl)
    status: UploadStatus = UploadStatus.QUEUED
    plan: UploadPlan | None = None
    batch: BatchInfo | None = None
    credentials: BatchCredentials | None = None
    fd: int | None = None
    done_bytes: int = 0
    # Bytes of parts in flight that a pause stopped this round: they are sent again on resume.
    dropped_bytes: int = 0
    # The counters hold this round's figures (from the moment its start is told): before, they
    # are being rebuilt from the journal and would read as bytes going back.
    counting: bool = False
    error: str | None = None
    finishing: bool = False
    preparing: bool = False
    # Bumped each time the file is admitted or paused; a task carries the value it was
    # submitted with and does nothing if the file has moved on since.
    generation: int = 0
    resume_requested: bool = False  # resumed while a pause was still winding down
    batch_replaced: bool = False  # the batch expired and another took over its object key
    # Why the parts stopped for a new round (the strongest cause seen, see `NewRoundCause`).
    new_round_cause: NewRoundCause | None = None
    resent_invalid_parts: bool = False  # S3 refused the join for missing parts once already
    document_path: str = ""
    version_label: str = ""  # of the new version, when the file went to an existing document
    creation_may_have_run: bool = False  # a document creation was sent (here or by a dead run)
    # Journal fields held back until the next request leaves (see `FileSteps.writes_held`),
    # and the thread holding them: other threads write straight through.
    unsaved_by: int | None = None
    # Parts S3 acknowledged, parts being sent, parts left to send, and journal fields held
    # back: made on first use (see `_MadeOnUse`). Only the attributes below name them.
    _done: dict[int, PartRecord] | None = None
    _in_flight: dict[int, PartCounter] | None = None
    _pending: list[int] | None = None
    _unsaved: dict[str, object] | None = None

    # Not annotated: descriptors, not dataclass fields.
    done = _MadeOnUse[dict[int, PartRecord]]("_done", dict)
    in_flight = _MadeOnUse[dict[int, PartCounter]]("_in_flight", dict)
    pending = _MadeOnUse[list[int]]("_pending", list)
    unsaved = _MadeOnUse[dict[str, object]]("_unsaved", dict)

    @property
    def id(self) -> int:
        assert self.record.id is not None
        return self.record.id

    @property
    def path(self) -> str:
        return self.record.path

    @property
    def name(self) -> str:
        return self.record.doc_name or os.path.basename(self.record.path)

    @property
    def size(self) -> int:
        return self.record.size or 0

    def working(self) -> bool:
        """A task is running on this file: pause, cancel and failure settle once it ends."""
        return bool(self.in_flight) or self.finishing or self.preparing

    def in_flight_bytes(self) -> int:
        """Bytes sent in parts S3 has not answered yet (sampled without a lock)."""
        return sum(counter.sent for counter in list(self.in_flight.values()))

    def drop_in_flight(self, number: int) -> None:
        """A part stopped before S3 answered it: its bytes will be sent again (lock held)."""
        counter = self.in_flight.pop(number, None)
        if counter is not None:
            self.dropped_bytes += counter.sent

    def close_file(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def reset_progress(self) -> None:
        self.done.clear()
        self.done_bytes = 0
        self.dropped_bytes = 0
        self.counting = False
        self.in_flight.clear()
        self.pending.clear()
        self.plan = None
        self.finishing = False
