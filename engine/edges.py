"""What the transfer manager needs from outside itself, as interfaces: the S3 calls of one file,
the Nuxeo calls, the worker pools that run its tasks, and the clock. The manager takes each as a
constructor parameter with the real one as default (`FileS3`, `NuxeoBatchClient`, `WorkerPool`,
`SystemClock`), so that the per-file state machine runs without servers or threads in tests,
and a benchmark can wrap a call to time it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from .credentials import BatchCredentials
from .existing import ExistingDocument
from .nuxeo_batch import BatchInfo, CreatedDocument, ServerConnection
from .planning import Part
from .pool import Priority
from .records import PartRecord
from .s3 import ChecksumAlgorithm
from .slices import PartCounter, TransferControl
from .transfer import FileTransfer


class S3Calls(Protocol):
    """The S3 requests of one file, signed with its batch credentials (see `FileS3`)."""

    @property
    def credentials_rejected(self) -> int:
        """How many calls S3 refused for expired credentials, then sent again."""
        ...

    @property
    def direct_puts(self) -> int:
        """How many small objects went by a direct PUT (see `s3_direct_put`)."""
        ...

    @property
    def direct_puts_declined(self) -> int:
        """How many direct PUTs were not answered 200 (then sent through botocore)."""
        ...

    def create_multipart(self, transfer: FileTransfer) -> str: ...

    def abort_uploads_of_key(self, transfer: FileTransfer) -> bool: ...

    def listed_parts(self, transfer: FileTransfer) -> list[PartRecord] | None: ...

    def send_part(self, transfer: FileTransfer, *, part: Part, counter: PartCounter) -> PartRecord: ...

    def complete_multipart(self, transfer: FileTransfer) -> str: ...

    def abort_multipart(self, transfer: FileTransfer) -> None: ...

    def put_object(self, transfer: FileTransfer, *, counter: PartCounter) -> str: ...

    def verify_etag(self, transfer: FileTransfer, *, etag: str) -> None: ...

    def algorithm(self, transfer: FileTransfer) -> ChecksumAlgorithm:
        """The file's checksum algorithm (the one its upload started with)."""
        ...

    def close(self) -> None: ...


class NuxeoCalls(Protocol):
    """The Nuxeo requests of the transfer manager (see `NuxeoBatchClient`)."""

    # Whom the calls go to, as whom (never shown with its password or token).
    connection: ServerConnection

    # -- the server and its folders
    def check_login(self) -> str: ...

    def check_rest_api(self) -> None: ...

    def folder_kind(self, path: str) -> str | None: ...

    def folder_exists(self, path: str) -> bool: ...

    def ensure_folder(self, parent: str, name: str) -> str: ...

    def resolve_folder(self, logical: str) -> str: ...

    def use_folder(self, logical: str, real: str) -> None: ...

    def list_children(self, folder: str) -> list[ExistingDocument] | None: ...

    # -- batches
    def new_batch(self) -> BatchInfo: ...

    def batch_info(self, batch_id: str) -> BatchInfo: ...

    def batch_credentials(self, batch: BatchInfo) -> BatchCredentials: ...

    def complete(self, batch_id: str, *, name: str, size: int, key: str, bucket: str, etag: str,
                 mime_type: str | None = None, file_idx: int = 0) -> None: ...

    def registered_size(self, batch_id: str, file_idx: int = 0) -> int | None: ...

    def drop(self, batch_id: str) -> None: ...

    # -- documents
    def create_file_document(self, parent: str, *, name: str, batch_id: str, key: str,
                             file_idx: int = 0) -> CreatedDocument: ...

    def find_file_documents(self, parent: str, *, name: str) -> list[CreatedDocument]: ...

    def file_document(self, uid: str) -> CreatedDocument | None: ...

    def add_version(self, uid: str, *, batch_id: str, file_idx: int, change_token: str | None) -> CreatedDocument: ...

    def delete_document(self, uid: str) -> None: ...

    def close(self) -> None: ...


class Executor(Protocol):
    """Runs tasks by priority, lowest first (see `WorkerPool`)."""

    def start(self) -> None: ...

    def submit(self, priority: Priority, task: Callable[..., None], *args: Any) -> None: ...

    def stop(self, *, timeout: float | None = 30.0) -> None: ...


# Makes an executor of this many workers, its threads named after the second argument.
ExecutorFactory = Callable[[int, str], Executor]


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (the journal's times)."""
        ...

    def pause(self, control: TransferControl, seconds: float) -> bool:
        """Wait before trying a request again, waking early when the file is paused or
        cancelled; True if it was."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def pause(self, control: TransferControl, seconds: float) -> bool:
        return control.wait(seconds)


__all__ = ["Clock", "Executor", "ExecutorFactory", "NuxeoCalls", "S3Calls", "SystemClock"]
