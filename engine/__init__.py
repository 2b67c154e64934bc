"""nxup's engine: uploads to Nuxeo straight to S3, with no user interface.

The front ends drive a `TransferManager` (through the `Transfers` interface) and read its typed
events; what it needs from outside (S3, Nuxeo, worker pools, the clock) is in `edges`. The names
below are imported when first used, so that importing one module of the engine (its text forms,
its errors) does not load boto3 and the Nuxeo client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .edges import Clock, Executor, ExecutorFactory, NuxeoCalls, S3Calls, SystemClock
    from .errors import (
        ConflictError,
        CredentialsError,
        LocalFileError,
        LocalStateError,
        NotFoundError,
        NxupError,
        TransientError,
    )
    from .events import (
        Event,
        EventSink,
        FileCancelled,
        FileCompleted,
        FileFailed,
        FileIgnored,
        FilePaused,
        FileProgress,
        FileQueued,
        FileSkipped,
        FileStarted,
        Notice,
        PartCompleted,
        PartProgress,
    )
    from .existing import ExistingPolicy
    from .lifecycle import Stage, UploadStatus
    from .manager import TransferManager
    from .nuxeo_batch import ServerConnection
    from .settings import TransferSettings
    from .snapshots import FileSnapshot
    from .state import StateStore
    from .surface import AddResult, Transfers

_HOME: dict[str, str] = {
    "Clock": "edges",
    "Executor": "edges",
    "ExecutorFactory": "edges",
    "NuxeoCalls": "edges",
    "S3Calls": "edges",
    "SystemClock": "edges",
    "ConflictError": "errors",
    "CredentialsError": "errors",
    "LocalFileError": "errors",
    "LocalStateError": "errors",
    "NotFoundError": "errors",
    "NxupError": "errors",
    "TransientError": "errors",
    "Event": "events",
    "EventSink": "events",
    "FileCancelled": "events",
    "FileCompleted": "events",
    "FileFailed": "events",
    "FileIgnored": "events",
    "FilePaused": "events",
    "FileProgress": "events",
    "FileQueued": "events",
    "FileSkipped": "events",
    "FileStarted": "events",
    "Notice": "events",
    "PartCompleted": "events",
    "PartProgress": "events",
    "ExistingPolicy": "existing",
    "Stage": "lifecycle",
    "UploadStatus": "lifecycle",
    "TransferManager": "manager",
    "ServerConnection": "nuxeo_batch",
    "TransferSettings": "settings",
    "FileSnapshot": "snapshots",
    "StateStore": "state",
    "AddResult": "surface",
    "Transfers": "surface",
}

__all__ = [
    "AddResult",
    "Clock",
    "ConflictError",
    "CredentialsError",
    "Event",
    "EventSink",
    "Executor",
    "ExecutorFactory",
    "ExistingPolicy",
    "FileCancelled",
    "FileCompleted",
    "FileFailed",
    "FileIgnored",
    "FilePaused",
    "FileProgress",
    "FileQueued",
    "FileSkipped",
    "FileSnapshot",
    "FileStarted",
    "LocalFileError",
    "LocalStateError",
    "NotFoundError",
    "Notice",
    "NuxeoCalls",
    "NxupError",
    "PartCompleted",
    "PartProgress",
    "S3Calls",
    "ServerConnection",
    "Stage",
    "StateStore",
    "SystemClock",
    "TransferManager",
    "TransferSettings",
    "Transfers",
    "TransientError",
    "UploadStatus",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
