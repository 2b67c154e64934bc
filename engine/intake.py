"""Files into the queue: local files turned into journal rows (or matched with an unfinished
upload of the same file), and unfinished uploads loaded back from the journal; each claimed
for this process first, so that two nxup processes never work on one upload."""

from __future__ import annotations

import threading

from .events import FilePaused, FileQueued, Notice
from .existing import ExistingPolicy
from .inputs import LocalFile
from .lifecycle import UploadStatus
from .nuxeo_batch import ServerConnection
from .owner import Owner
from .scheduler import Scheduler
from .settings import TransferSettings
from .slices import StopReason
from .state import StateStore, UploadRecord


class Intake:
    def __init__(self, scheduler: Scheduler, *, store: StateStore, connection: ServerConnection,
                 settings: TransferSettings, owner: Owner) -> None:
        self._scheduler = scheduler
        self._lock = scheduler.lock
        self._store = store
        self._connection = connection
        self._settings = settings
        self._owner = owner
        self._settings_text = settings.journal_text()  # kept with every upload added
        # Adding is check-then-insert (an unfinished upload of the same file is reused): two
        # adds at once (the UI runs each in its own thread) must not both insert.
        self._add_lock = threading.Lock()

    def queue(self, items: list[LocalFile], policy: ExistingPolicy) -> list[int]:
        """Queue a chunk of files: one transaction for the new rows, then uploads may start
        while the next chunk is read (queueing 10,000 files must not wait for all of them)."""
        with self._add_lock:
            ids = self._queue_chunk(items, policy)
        self._scheduler.admit()
        return ids

    def _queue_chunk(self, items: list[LocalFile], policy: ExistingPolicy) -> list[int]:
        ids: list[int] = []
        fresh: dict[tuple[str, str], UploadRecord] = {}  # the same file twice is one upload
        for item in items:
            existing = self._store.find_active(
                path=str(item.path), server_url=self._connection.url, target=item.target
            )
            if existing is not None and existing.id is not None:
                with self._lock:
                    known = existing.id in self._scheduler.files
                if known:
                    ids.append(existing.id)
                elif self._claimed([existing]):
                    ids.append(self._enqueue(existing, resumed=True))
                continue
            fresh.setdefault((str(item.path), item.target), UploadRecord(
                path=str(item.path),
                size=item.size,
                mtime_ns=item.mtime_ns,
                server_url=self._connection.url,
                user=self._connection.user,
                target=item.target,
                doc_name=item.path.name,
                existing=policy.value,
                status=UploadStatus.QUEUED,
                checksum_algorithm=self._settings.checksum.value,
                transfer_settings=self._settings_text,
                owner_pid=self._owner.pid,
                owner_started=self._owner.started,
            ))
        ids.extend(self._enqueue(record, resumed=False) for record in self._store.add_uploads(list(fresh.values())))
        return ids

    def _claimed(self, records: list[UploadRecord]) -> list[UploadRecord]:
        """The records this process may work on; the others (another nxup works on them) are
        named once each, and left alone."""
        held = self._store.claim([r.id for r in records if r.id is not None], self._owner)
        for record in records:
            if record.id in held:
                self._scheduler.emit(Notice(record.id, message=f"{record.path}: in use by nxup pid {held[record.id]}; "
                                                               "left to it"))
        return [r for r in records if r.id not in held]

    def load_unfinished(self, *, paused: bool = False) -> list[int]:
        """Queue every unfinished upload of this server from the state store (after a crash,
        a quit, a pause or a failure). With `paused`, they wait for `resume` instead."""
        ids = []
        with self._add_lock:
            with self._lock:
                candidates = [
                    record for record in self._store.unfinished()
                    if record.server_url == self._connection.url and record.id is not None
                    and record.id not in self._scheduler.files
                ]
            for record in self._claimed(candidates):
                ids.append(self._enqueue(record, resumed=True, paused=paused))
        self._scheduler.admit()
        return ids

    def _enqueue(self, record: UploadRecord, *, resumed: bool, paused: bool = False) -> int:
        assert record.id is not None
        with self._lock:
            transfer = self._scheduler.register(record, queued=not paused)
        wanted = UploadStatus.PAUSED if paused else UploadStatus.QUEUED
        if record.status is not wanted:
            self._scheduler.persist(transfer, status=wanted, error=None)
        self._scheduler.emit(FileQueued(record.id, path=record.path, size=record.size or 0, target=record.target,
                                        resumed=resumed))
        if paused:
            transfer.status = UploadStatus.PAUSED
            transfer.control.interrupt(StopReason.PAUSE)
            self._scheduler.emit(FilePaused(record.id, path=record.path))
        return record.id
