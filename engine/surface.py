"""What the front ends (the terminal UI, the command line) use of the transfer manager, as one
interface: they depend on it, not on `TransferManager` and its parts."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .bandwidth import BandwidthLimiter
from .edges import NuxeoCalls
from .existing import ExistingPolicy
from .inputs import SEND_EVERYTHING, IgnoredPath, PathFilter
from .lifecycle import UploadStatus
from .nuxeo_batch import ServerConnection
from .settings import TransferSettings
from .snapshots import FileSnapshot
from .state import StateStore


@dataclass(slots=True)
class AddResult:
    file_ids: list[int] = field(default_factory=list)
    ignored: list[IgnoredPath] = field(default_factory=list)


class Transfers(Protocol):
    """Commands in, queries out; events go to the sink the manager was made with."""

    connection: ServerConnection
    store: StateStore
    settings: TransferSettings
    limiter: BandwidthLimiter
    nuxeo: NuxeoCalls

    def start(self) -> Transfers: ...

    def shutdown(self, *, timeout: float = 30.0) -> None: ...

    def add(self, paths: Iterable[str | os.PathLike[str]], target: str, *,
            existing: ExistingPolicy = ExistingPolicy.VERSION, patterns: PathFilter = SEND_EVERYTHING) -> AddResult: ...

    def load_unfinished(self, *, paused: bool = False) -> list[int]: ...

    def pause(self, file_id: int) -> None: ...

    def resume(self, file_id: int) -> None: ...

    def cancel(self, file_id: int) -> None: ...

    def pause_all(self) -> None: ...

    def resume_all(self) -> None: ...

    def cancel_all(self) -> None: ...

    def set_bandwidth_limit(self, rate: int | None) -> None: ...

    def file_ids(self) -> list[int]: ...

    def snapshot(self, file_id: int) -> FileSnapshot | None: ...

    def counts(self) -> dict[UploadStatus, int]: ...

    def is_idle(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


__all__ = ["AddResult", "Transfers"]
