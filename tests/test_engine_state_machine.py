"""The per-file state machine, driven without servers or threads: the transfer manager is given
an S3 and a Nuxeo in memory (at the edge: what they hold, what they answer), one queue that runs
its tasks when the test says, and a clock that never sleeps. A crash is the process stopping right
after a server acted: the journal is copied as it stood at that instant, and a new manager resumes
from the copy, as `nxup resume` would from what a dead process left."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.credentials import CredentialSet
from engine.errors import BatchGone, ServerFailed, ServerUnreachable, StorageUnreachable, UploadGone
from engine.events import Event, FileCompleted
from engine.existing import ExistingDocument
from engine.lifecycle import Stage, UploadStatus
from engine.manager import TransferManager, TransferSettings
from engine.nuxeo_batch import BatchInfo, CreatedDocument, ServerConnection
from engine.nuxeo_folders import FOLDERISH
from engine.planning import MiB, Part
from engine.records import PartRecord, UploadRecord
from engine.s3 import ChecksumAlgorithm, S3Location
from engine.slices import PartCounter, TransferControl
from engine.state import DB_FILENAME, StateStore
from engine.transfer import FileTransfer

TARGET = "/default-domain/workspaces/ws"


class SimulatedCrash(BaseException):
    """The process stops: no handler of the engine runs (it is no `Exception`)."""


class ManualPool:
    """Both of the manager's pools: tasks wait in one priority queue until `run`."""

    def __init__(self) -> None:
        self._queue: list[tuple[tuple[int, ...], int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def start(self) -> None:
        pass

    def submit(self, priority: tuple[int, ...], task: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._queue, (priority, next(self._order), task, args))

    def stop(self, *, timeout: float | None = 30.0) -> None:
        self._queue.clear()

    def run(self) -> bool:
        """Run tasks (and the tasks they submit) until none is left; False on a crash."""
        while self._queue:
            _, _, task, args = heapq.heappop(self._queue)
            try:
                task(*args)
            except SimulatedCrash:
                self._queue.clear()
                return False
        return True


class FakeClock:
    def __init__(self) -> None:
        self.time = 1_800_000_000.0

    def now(self) -> float:
        return self.time

    def pause(self, control: TransferControl, seconds: float) -> bool:
        self.time += seconds
        return control.is_interrupted()


@dataclass
class Faults:
    """What a server does on its next calls of a kind: "lose" acts and loses the answer; "crash"
    acts, then the process stops."""

    planned: dict[str, list[str]] = field(default_factory=dict)
    on_crash: Callable[[], None] = lambda: None

    def plan(self, call: str, *outcomes: str) -> None:
        self.planned.setdefault(call, []).extend(outcomes)

    def after_acting(self, call: str, lost: Callable[[], Exception]) -> None:
        outcomes = self.planned.get(call)
        outcome = outcomes.pop(0) if outcomes else "answer"
        if outcome == "crash":
            self.on_crash()
            raise SimulatedCrash(call)
        if outcome == "lose":
            raise lost()


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


class MemoryS3:
    """The S3 calls of a file, against buckets in memory (see `edges.S3Calls`)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.parts_received: list[int] = []
        self.credentials_rejected = 0
        self.direct_puts = self.direct_puts_declined = 0
        self._ids = itertools.count(1)

    def create_multipart(self, transfer: FileTransfer) -> str:
        upload_id = f"upload-{next(self._ids)}"
        self.uploads[upload_id] = {}
        self.faults.after_acting("create_multipart", lambda: StorageUnreachable("lost the connection to S3"))
        return upload_id

    def send_part(self, transfer: FileTransfer, *, part: Part, counter: PartCounter) -> PartRecord:
        assert transfer.fd is not None and transfer.record.upload_id is not None
        data = os.pread(transfer.fd, part.size, part.offset)
        self.uploads[transfer.record.upload_id][part.number] = data
        self.parts_received.append(part.number)
        self.faults.after_acting("send_part", lambda: StorageUnreachable("lost the connection to S3"))
        return PartRecord(number=part.number, etag=_etag(data), size=part.size)

    def complete_multipart(self, transfer: FileTransfer) -> str:
        record = transfer.record
        assert record.upload_id is not None and record.object_key is not None
        parts = self.uploads.pop(record.upload_id, None)
        if parts is None:
            raise UploadGone("the multipart upload no longer exists on S3")
        assert sorted(parts) == sorted(transfer.done), "joined with the parts S3 holds"
        self.objects[record.object_key] = b"".join(parts[n] for n in sorted(parts))
        self.faults.after_acting("complete_multipart", lambda: StorageUnreachable("lost the connection to S3"))
        return _etag(self.objects[record.object_key])

    def put_object(self, transfer: FileTransfer, *, counter: PartCounter) -> str:
        assert transfer.fd is not None and transfer.record.object_key is not None
        data = os.pread(transfer.fd, transfer.size, 0)
        self.objects[transfer.record.object_key] = data
        self.faults.after_acting("put_object", lambda: StorageUnreachable("lost the connection to S3"))
        return _etag(data)

    def abort_multipart(self, transfer: FileTransfer) -> None:
        assert transfer.record.upload_id is not None
        self.uploads.pop(transfer.record.upload_id, None)

    def listed_parts(self, transfer: FileTransfer) -> list[PartRecord] | None:
        return None  # a stock Nuxeo's batch credentials may not list parts

    def abort_uploads_of_key(self, transfer: FileTransfer) -> bool:
        return False  # nor list uploads

    def verify_etag(self, transfer: FileTransfer, *, etag: str) -> None:
        pass

    def algorithm(self, transfer: FileTransfer) -> ChecksumAlgorithm:
        return ChecksumAlgorithm.NONE

    def close(self) -> None:
        pass


@dataclass
class Document:
    uid: str
    parent: str
    name: str
    content: bytes

    def created(self) -> CreatedDocument:
        return CreatedDocument(uid=self.uid, path=f"{self.parent}/{self.name}", blob_length=len(self.content),
                               blob_digest=hashlib.md5(self.content).hexdigest(), blob_digest_algorithm="MD5")


class MemoryNuxeo:
    """The Nuxeo calls of the manager, against batches and documents in memory (see
    `edges.NuxeoCalls`). `/complete` reads the object from S3, as a real server does."""

    def __init__(self, s3: MemoryS3, faults: Faults) -> None:
        self.s3 = s3
        self.faults = faults
        self.folders = {TARGET}
        self.batches: dict[str, dict[int, str]] = {}  # batch id -> file index -> object key
        self.documents: list[Document] = []
        self.by_key: dict[str, Document] = {}  # Idempotency-Key -> the document it made
        self._ids = itertools.count(1)

    def check_rest_api(self) -> None:
        pass

    def folder_kind(self, path: str) -> str | None:
        return FOLDERISH if path in self.folders else None

    def folder_exists(self, path: str) -> bool:
        return path in self.folders

    def ensure_folder(self, parent: str, name: str) -> str:
        self.folders.add(f"{parent}/{name}")
        return f"{parent}/{name}"

    def resolve_folder(self, logical: str) -> str:
        return logical

    def use_folder(self, logical: str, real: str) -> None:
        raise AssertionError("no folder of another name in these tests")

    def list_children(self, folder: str) -> list[ExistingDocument] | None:
        return [] if folder in self.folders else None

    def new_batch(self) -> BatchInfo:
        batch_id = f"batch-{next(self._ids)}"
        self.batches[batch_id] = {}
        return self._info(batch_id)

    def batch_info(self, batch_id: str) -> BatchInfo:
        if batch_id not in self.batches:
            raise BatchGone("the upload batch expired on the server")
        return self._info(batch_id)

    @staticmethod
    def _info(batch_id: str) -> BatchInfo:
        keys = CredentialSet(access_key_id="AKIATEST", secret_access_key="secret", session_token="token",
                             expiration=datetime.now(UTC) + timedelta(hours=1))
        location = S3Location(bucket="bucket", region="us-east-1", endpoint=None, path_style=True, accelerate=False)
        return BatchInfo(batch_id=batch_id, provider="s3", location=location, base_key="upload/", credentials=keys)

    def batch_credentials(self, batch: BatchInfo) -> Any:
        return batch.credentials  # signs nothing: the S3 here takes no signature

    def complete(self, batch_id: str, *, name: str, size: int, key: str, bucket: str, etag: str,
                 mime_type: str | None = None, file_idx: int = 0) -> None:
        if batch_id not in self.batches:
            raise BatchGone("the upload batch expired on the server")
        if len(self.s3.objects.get(key, b"")) != size:
            raise ServerFailed("Nuxeo failed while completing the upload on Nuxeo (500)")
        self.batches[batch_id][file_idx] = key
        self.faults.after_acting("complete", lambda: ServerUnreachable("cannot reach the Nuxeo server"))

    def registered_size(self, batch_id: str, file_idx: int = 0) -> int | None:
        key = self.batches.get(batch_id, {}).get(file_idx)
        return None if key is None else len(self.s3.objects[key])

    def drop(self, batch_id: str) -> None:
        self.batches.pop(batch_id, None)

    def create_file_document(self, parent: str, *, name: str, batch_id: str, key: str,
                             file_idx: int = 0) -> CreatedDocument:
        if key in self.by_key:  # the same Idempotency-Key: the answer of the request that ran
            return self.by_key[key].created()
        object_key = self.batches[batch_id][file_idx]
        document = Document(uid=f"doc-{next(self._ids)}", parent=parent, name=name,
                            content=self.s3.objects[object_key])
        self.documents.append(document)
        self.by_key[key] = document
        self.faults.after_acting("create_file_document", lambda: ServerUnreachable("cannot reach the Nuxeo server"))
        return document.created()

    def find_file_documents(self, parent: str, *, name: str) -> list[CreatedDocument]:
        return [d.created() for d in self.documents if d.parent == parent and d.name == name]

    def file_document(self, uid: str) -> CreatedDocument | None:
        return next((d.created() for d in self.documents if d.uid == uid), None)

    def add_version(self, uid: str, *, batch_id: str, file_idx: int, change_token: str | None) -> CreatedDocument:
        raise AssertionError("no versions in these tests")

    def delete_document(self, uid: str) -> None:
        self.documents = [d for d in self.documents if d.uid != uid]

    def close(self) -> None:
        pass


class World:
    """The servers, and the managers that run one after another against them (a crash ends
    one; the next resumes from the journal the crash left)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.faults = Faults(on_crash=self._copy_journal)
        self.s3 = MemoryS3(self.faults)
        self.nuxeo = MemoryNuxeo(self.s3, self.faults)
        self.clock = FakeClock()
        self.events: list[Event] = []
        self.runs = 0
        self.store = self._open(tmp_path / "run-0")

    def _open(self, directory: Path) -> StateStore:
        return StateStore.open(directory)

    def _copy_journal(self) -> None:
        """The journal as the dying process left it: what was written, nothing held back."""
        self.crashed_journal = self.tmp_path / f"run-{self.runs + 1}"
        self.crashed_journal.mkdir()
        source = sqlite3.connect(self.store.path)
        copy = sqlite3.connect(self.crashed_journal / DB_FILENAME)
        with copy:
            source.backup(copy)
        source.close()
        copy.close()

    def manager(self) -> tuple[TransferManager, ManualPool]:
        pool = ManualPool()
        settings = TransferSettings(workers=2, nuxeo_workers=1, part_size=5 * MiB, single_upload_limit=5 * MiB)
        manager = TransferManager(
            ServerConnection(url="http://nuxeo.invalid/nuxeo", user="alice", password="secret"),
            store=self.store, sink=self.events.append, settings=settings,
            nuxeo=self.nuxeo, s3=self.s3, executor=lambda workers, name: pool, clock=self.clock,
        )
        return manager, pool

    def resume_after_crash(self) -> tuple[TransferManager, ManualPool]:
        self.runs += 1
        self.store = self._open(self.crashed_journal)
        manager, pool = self.manager()
        manager.load_unfinished()
        return manager, pool

    def record(self, file_id: int) -> UploadRecord:
        record = self.store.get(file_id)
        assert record is not None
        return record


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def _only_document(world: World, data: bytes) -> None:
    (document,) = world.nuxeo.documents
    assert document.content == data
    assert not world.s3.uploads, "no multipart upload left on S3"


def _journaled_done(world: World, file_id: int) -> UploadRecord:
    record = world.record(file_id)
    assert (record.status, record.stage) == (UploadStatus.DONE, Stage.DOCUMENTED)
    assert record.doc_uid == world.nuxeo.documents[0].uid
    return record


def test_a_crash_after_a_part_resumes_with_the_parts_the_journal_holds(world: World, tmp_path: Path) -> None:
    path, data = _file(tmp_path, 12 * MiB)  # parts 1 and 2 of 5 MiB, part 3 of 2 MiB
    world.faults.plan("send_part", "answer", "crash")
    manager, pool = world.manager()
    (file_id,) = manager.add([path], TARGET).file_ids
    assert not pool.run()

    crashed = StateStore.open(world.crashed_journal)
    at_crash = crashed.get(file_id)
    assert at_crash is not None and at_crash.stage is Stage.SENDING and at_crash.upload_id == "upload-1"
    assert set(crashed.parts(file_id)) == {1}, "part 2 reached S3, but its answer never did"
    crashed.close()

    manager, pool = world.resume_after_crash()
    assert pool.run()
    # The same multipart upload goes on: part 1 is not sent again; part 2, unknown, is.
    assert world.s3.parts_received == [1, 2, 2, 3]
    record = _journaled_done(world, file_id)
    assert record.upload_id == "upload-1" and set(world.store.parts(file_id)) == {1, 2, 3}
    _only_document(world, data)
    assert world.s3.objects[record.object_key or ""] == data


def test_a_join_done_before_a_crash_is_confirmed_by_nuxeo_not_sent_again(world: World, tmp_path: Path) -> None:
    path, data = _file(tmp_path, 11 * MiB)
    world.faults.plan("complete_multipart", "crash")
    manager, pool = world.manager()
    (file_id,) = manager.add([path], TARGET).file_ids
    assert not pool.run()
    crashed = StateStore.open(world.crashed_journal)
    at_crash = crashed.get(file_id)
    assert at_crash is not None and at_crash.stage is Stage.JOINING, "the join's intent is journaled before it leaves"
    crashed.close()

    manager, pool = world.resume_after_crash()
    assert pool.run()
    # S3 no longer knows the upload (it was joined): Nuxeo's /complete finds the object whole.
    record = _journaled_done(world, file_id)
    assert world.s3.parts_received == [1, 2, 3]
    assert world.s3.objects[record.object_key or ""] == data
    _only_document(world, data)


def test_a_lost_answer_to_the_document_creation_makes_one_document(world: World, tmp_path: Path) -> None:
    path, data = _file(tmp_path, 64 * 1024)  # one PUT
    world.faults.plan("create_file_document", "lose")
    manager, pool = world.manager()
    (file_id,) = manager.add([path], TARGET).file_ids
    assert pool.run()
    _journaled_done(world, file_id)
    _only_document(world, data)
    (completed,) = [e for e in world.events if isinstance(e, FileCompleted)]
    assert completed.document_uid == world.nuxeo.documents[0].uid


def test_a_crash_after_the_document_was_made_finds_it_instead_of_making_another(
    world: World, tmp_path: Path,
) -> None:
    path, data = _file(tmp_path, 64 * 1024)
    world.faults.plan("create_file_document", "crash")
    manager, pool = world.manager()
    (file_id,) = manager.add([path], TARGET).file_ids
    assert not pool.run()
    crashed = StateStore.open(world.crashed_journal)
    at_crash = crashed.get(file_id)
    assert at_crash is not None and at_crash.stage is Stage.CREATING_DOCUMENT and at_crash.document_key
    crashed.close()

    manager, pool = world.resume_after_crash()
    assert pool.run()
    _journaled_done(world, file_id)
    _only_document(world, data)


def test_a_lost_answer_to_completion_fails_the_file_and_its_resume_completes_it(
    world: World, tmp_path: Path,
) -> None:
    path, data = _file(tmp_path, 64 * 1024)
    world.faults.plan("complete", "lose")
    manager, pool = world.manager()
    (file_id,) = manager.add([path], TARGET).file_ids
    assert pool.run()
    failed = world.record(file_id)
    # Journaled as registering: a resume sends /complete again (it only records the object).
    assert (failed.status, failed.stage) == (UploadStatus.FAILED, Stage.REGISTERING)
    assert failed.error == "cannot reach the Nuxeo server"

    world.clock.time += 60
    manager.resume(file_id)
    assert pool.run()
    record = _journaled_done(world, file_id)
    _only_document(world, data)
    assert record.finished_at == world.clock.now()
