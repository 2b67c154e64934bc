"""The transfer manager: the one interface the TUI and the CLI drive.

Commands in: `add`, `load_unfinished`, `pause`/`resume`/`cancel` (one file or all),
`set_bandwidth_limit`, `shutdown`. Typed events out, through the sink given at construction.

How a file goes: *prepare* → *parts* → *finish* (see `file_tasks`), each task scheduled on a
shared pool (`scheduler`). Every step is written to the state store as soon as it is
acknowledged, so a crash at any moment resumes from what S3 and Nuxeo really hold.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable

from .bandwidth import BandwidthLimiter
from .edges import Clock, Executor, ExecutorFactory, NuxeoCalls, S3Calls, SystemClock
from .errors import NuxeoNotFound
from .events import Event, EventSink, FileFailed, FileIgnored
from .existing import ExistingPolicy
from .file_control import FileControl
from .file_s3 import FileS3
from .file_steps import FileSteps
from .file_tasks import FileTasks
from .inputs import SEND_EVERYTHING, IgnoredPath, LocalFile, PathFilter, RejectedPath, expand
from .intake import Intake
from .lifecycle import UploadStatus, count_by_status
from .nuxeo_batch import NuxeoBatchClient, ServerConnection
from .nuxeo_folders import FOLDERISH
from .owner import Owner
from .pool import WorkerPool
from .s3 import S3Clients, S3Tuning
from .scheduler import Scheduler
from .settings import TransferSettings
from .snapshots import FileSnapshot, ProgressTicker, snapshot_of
from .state import StateError, StateStore
from .surface import AddResult

log = logging.getLogger(__name__)

_ADD_CHUNK = 500


def _worker_pool(workers: int, name: str) -> Executor:
    return WorkerPool(workers, name=name)


class TransferManager:
    def __init__(
        self,
        connection: ServerConnection,
        *,
        store: StateStore,
        sink: EventSink,
        settings: TransferSettings | None = None,
        nuxeo: NuxeoCalls | None = None,
        s3: S3Calls | None = None,
        executor: ExecutorFactory = _worker_pool,
        clock: Clock | None = None,
    ) -> None:
        """`nuxeo`, `s3`, `executor` and `clock` are the real ones unless given (see `edges`):
        the Nuxeo client of `connection`, S3 through boto3 (at the bandwidth cap), thread pools
        and the system clock."""
        self.settings = settings or TransferSettings()
        self.connection = connection
        self.store = store
        self.nuxeo: NuxeoCalls = nuxeo or NuxeoBatchClient(connection)
        self.limiter = BandwidthLimiter(self.settings.bandwidth_limit)
        self._s3: S3Calls = s3 or FileS3(
            clients=S3Clients(
                S3Tuning(
                    max_connections=self.settings.workers + 4,
                    max_attempts=self.settings.max_attempts,
                )
            ),
            checksum=self.settings.checksum,
            limiter=self.limiter,
        )
        clock = clock or SystemClock()
        self._owner = Owner.current()
        self._lock = threading.RLock()
        self._rejected_ids = 0
        self._steps = FileSteps(store=store, nuxeo=self.nuxeo, s3=self._s3, settings=self.settings,
                                emit=self._emit, lock=self._lock, clock=clock)
        self._scheduler = Scheduler(
            settings=self.settings, steps=self._steps, sink=sink, lock=self._lock,
            pool=executor(self.settings.workers, "nxup-worker"),
            nuxeo_pool=executor(self.settings.nuxeo_workers, "nxup-nuxeo"),
            tasks=lambda scheduler: FileTasks(scheduler, steps=self._steps, s3=self._s3, store=store, clock=clock),
        )
        self._intake = Intake(self._scheduler, store=store, connection=connection, settings=self.settings,
                              owner=self._owner)
        self._control = FileControl(self._scheduler, store=store)
        interval = self.settings.progress_interval_s
        self._ticker = ProgressTicker(self._scheduler, interval_s=interval) if interval is not None else None

    # == lifecycle ============================================================================
    def start(self) -> TransferManager:
        self._scheduler.pool.start()
        self._scheduler.nuxeo_pool.start()
        if self._ticker is not None:
            self._ticker.start()
        return self

    def __enter__(self) -> TransferManager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self, *, timeout: float = 30.0) -> None:
        """Pause whatever is in flight (so `nxup resume` continues it) and stop the workers."""
        self.pause_all()
        scheduler = self._scheduler
        deadline = time.monotonic() + timeout
        with scheduler.changed:
            while any(t.working() for t in scheduler.files.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                scheduler.changed.wait(remaining)
        if self._ticker is not None:
            self._ticker.stop()
        scheduler.pool.stop(timeout=max(1.0, deadline - time.monotonic()))
        scheduler.nuxeo_pool.stop(timeout=max(1.0, deadline - time.monotonic()))
        self._steps.drop_idle_batches()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            for transfer in scheduler.files.values():
                if not transfer.working():  # a task still running closes its own file
                    transfer.close_file()
        # Idle keep-alive connections would otherwise hold the servers' graceful stop.
        self._s3.close()
        self.nuxeo.close()
        try:
            self.store.release(self._owner)
        except StateError as error:  # a dead process's claims are free anyway
            log.warning("%s", error)

    # == commands =============================================================================
    def add(self, paths: Iterable[str | os.PathLike[str]], target: str, *,
            existing: ExistingPolicy = ExistingPolicy.VERSION, patterns: PathFilter = SEND_EVERYTHING) -> AddResult:
        """Queue files and folders (walked, mirrored under `target`; `patterns` leave some out,
        each told as `FileIgnored`). Bad paths are reported as `FileFailed` events with negative
        ids and never stop the others. `existing` says what becomes of a name already taken."""
        result = AddResult()
        target = "/" + target.strip("/") if target.strip("/") else "/"
        # Checked once for the whole call: a wrong password, an unreachable server or a missing
        # target folder is one clear error, not one per file. Sub-folders are created later.
        kind = self.nuxeo.folder_kind(target)
        if kind is None:
            self.nuxeo.check_rest_api()  # a URL that is no Nuxeo server says so, not "no folder"
            raise NuxeoNotFound(f"the target folder {target} does not exist on Nuxeo")
        if kind != FOLDERISH:
            raise NuxeoNotFound(f"the target {target} is a {kind} document, not a folder")
        chunk: list[LocalFile] = []
        for item in expand(paths, target, patterns):
            if isinstance(item, IgnoredPath):
                result.ignored.append(item)
                with self._lock:
                    self._rejected_ids -= 1
                    ignored_id = self._rejected_ids
                self._emit(FileIgnored(ignored_id, path=item.path, reason=item.reason))
                continue
            if isinstance(item, RejectedPath):
                with self._lock:
                    self._rejected_ids -= 1
                    rejected_id = self._rejected_ids
                self._emit(FileFailed(rejected_id, path=item.path, reason=item.reason, retryable=False))
                continue
            chunk.append(item)
            if len(chunk) >= _ADD_CHUNK:
                result.file_ids.extend(self._intake.queue(chunk, existing))
                chunk = []
        result.file_ids.extend(self._intake.queue(chunk, existing))
        return result

    def load_unfinished(self, *, paused: bool = False) -> list[int]:
        """Queue every unfinished upload of this server from the state store (after a crash,
        a quit, a pause or a failure). With `paused`, they wait for `resume` instead."""
        return self._intake.load_unfinished(paused=paused)

    def pause(self, file_id: int) -> None:
        self._control.pause(file_id)

    def resume(self, file_id: int) -> None:
        self._control.resume(file_id)

    def cancel(self, file_id: int) -> None:
        self._control.cancel(file_id)

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
        self._scheduler.part_gate.set_rate(rate)

    # == queries ==============================================================================
    def file_ids(self) -> list[int]:
        with self._lock:
            return list(self._scheduler.files)

    def snapshot(self, file_id: int) -> FileSnapshot | None:
        transfer = self._scheduler.files.get(file_id)
        return None if transfer is None else snapshot_of(transfer)

    @property
    def credentials_rejected(self) -> int:
        """How many S3 calls were refused for expired credentials, then sent again."""
        return self._s3.credentials_rejected

    @property
    def direct_puts(self) -> int:
        """How many small objects went to S3 by a direct PUT (see `s3_direct_put`)."""
        return self._s3.direct_puts

    @property
    def direct_puts_declined(self) -> int:
        """How many direct PUTs were not answered 200, their objects then sent through botocore."""
        return self._s3.direct_puts_declined

    def is_idle(self) -> bool:
        """True when nothing is queued or uploading (every file is done, failed, cancelled or paused)."""
        return self._scheduler.is_idle()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        changed = self._scheduler.changed
        with changed:
            while not self.is_idle():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                changed.wait(remaining if remaining is not None else 1.0)
        return True

    def counts(self) -> dict[UploadStatus, int]:
        with self._lock:
            return count_by_status(transfer.status for transfer in self._scheduler.files.values())

    def _emit(self, event: Event) -> None:
        self._scheduler.emit(event)


__all__ = [
    "AddResult",
    "FileSnapshot",
    "TransferManager",
    "TransferSettings",
]
