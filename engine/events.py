"""Typed events the engine sends out, through one narrow interface: `EventSink`.

Lifecycle events are sent as they happen, from whichever engine thread saw them. Progress is
not sent per chunk: the manager's ticker samples the counters a few times a second and sends
one `FileProgress` per file whose bytes changed (plus `PartProgress` for its parts in flight).
A sink must be quick and must not block (a UI posts a message; a CLI prints a line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    file_id: int

    @property
    def kind(self) -> str:
        return _KIND[type(self)]


@dataclass(frozen=True, slots=True)
class FileQueued(Event):
    path: str
    size: int
    target: str
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class FileStarted(Event):
    path: str
    size: int
    multipart: bool
    part_size: int
    part_count: int
    parts_already_done: int = 0
    bytes_already_done: int = 0  # on S3 before this run: not part of this run's speed


@dataclass(frozen=True, slots=True)
class PartProgress:
    number: int
    sent: int
    size: int


@dataclass(frozen=True, slots=True)
class FileProgress(Event):
    sent: int  # acknowledged + in_flight
    size: int
    parts_done: int
    part_count: int
    parts_in_flight: tuple[PartProgress, ...] = field(default=())
    acknowledged: int = 0  # bytes of parts S3 answered: they stay sent whatever happens
    in_flight: int = 0  # bytes of parts S3 has not answered yet: a pause or a crash sends them again


@dataclass(frozen=True, slots=True)
class PartCompleted(Event):
    number: int
    size: int


@dataclass(frozen=True, slots=True)
class FileCompleted(Event):
    path: str
    size: int
    document_path: str
    document_uid: str
    etag: str
    version_label: str = ""  # the new version, when the file went to an existing document


@dataclass(frozen=True, slots=True)
class FileSkipped(Event):
    """Its name was taken in the target folder and nothing was sent (see `existing`)."""

    path: str
    reason: str
    document_path: str = ""


@dataclass(frozen=True, slots=True)
class FileIgnored(Event):
    """Left out by the include and exclude patterns (a negative id: it was never queued)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileFailed(Event):
    path: str
    reason: str
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class FilePaused(Event):
    path: str
    acknowledged: int = 0  # bytes S3 holds for the file, kept for its resume
    dropped: int = 0  # bytes that were in flight when it paused: sent again on resume


@dataclass(frozen=True, slots=True)
class FileCancelled(Event):
    path: str


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """Something the user should read that is not a failure (a restarted file, a cleanup)."""

    message: str


_KIND: dict[type, str] = {
    FileQueued: "queued",
    FileStarted: "started",
    FileProgress: "progress",
    PartCompleted: "part_completed",
    FileCompleted: "completed",
    FileSkipped: "skipped",
    FileIgnored: "ignored",
    FileFailed: "failed",
    FilePaused: "paused",
    FileCancelled: "cancelled",
    Notice: "notice",
}


class EventSink(Protocol):
    def __call__(self, event: Event) -> None: ...

