"""One document per file holding exactly its bytes: the same file given twice, a file rewritten
during its upload, a second nxup process on the same uploads, a state database that cannot be
written or read, and the start-up clean-up next to a running upload."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import (
    MIB,
    EventLog,
    assert_document_holds,
    kill_after_first_part,
    multipart_uploads,
    nxup_env,
    run_nxup,
    start_slow_upload,
    write,
)
from nuxeo.client import Nuxeo

from engine.errors import ServerUnreachable
from engine.events import FileCompleted, FileFailed, Notice, PartCompleted
from engine.lifecycle import UploadStatus
from engine.nuxeo_batch import NuxeoBatchClient, ServerConnection
from engine.stale import abort_obsolete
from engine.state import DB_FILENAME, StateStore
from sandbox import Sandbox

MakeManager = Callable[..., tuple[Any, EventLog]]


def children(nuxeo: Nuxeo, folder: str) -> list[Any]:
    return list(nuxeo.documents.get_children(path=folder))


def test_the_same_file_given_twice_is_one_upload(make_manager: MakeManager, nuxeo: Nuxeo, target_folder: str,
                                                tmp_path: Path) -> None:
    path = tmp_path / "twice.txt"
    content = write(path, 1234)
    manager, events = make_manager()
    first = manager.add([path, tmp_path / "." / "twice.txt", path], target_folder).file_ids
    again = manager.add([path], target_folder).file_ids
    assert manager.wait(timeout=30)
    assert len(set(first)) == 1 and again == first[:1]
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=content)
    assert len(children(nuxeo, target_folder)) == 1


def test_file_rewritten_in_place_during_its_upload_is_sent_again(
    make_manager: MakeManager, nuxeo: Nuxeo, s3_admin: Any, target_folder: str, tmp_path: Path,
) -> None:
    """Same size, rewritten after part 1 went: parts of two versions must never be joined."""
    manager, events = make_manager(workers=1, bandwidth_limit=8 * MIB)
    path = tmp_path / "edited.bin"
    write(path, 12 * MIB)
    (file_id,) = manager.add([path], target_folder).file_ids
    events.wait_for(PartCompleted, file_id=file_id)
    new_content = os.urandom(12 * MIB)
    with open(path, "r+b") as handle:  # in place: same inode, same size
        handle.write(new_content)
    assert manager.wait(timeout=60)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    assert any("changed while it was being uploaded" in n.message for n in events.of(Notice, file_id))
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=new_content)
    record = manager.store.get(file_id)
    assert multipart_uploads(s3_admin, bucket=record.bucket, prefix=record.object_key) == []
    assert len(children(nuxeo, target_folder)) == 1


def test_a_second_process_leaves_uploads_in_use_alone(sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str,
                                                     tmp_path: Path) -> None:
    info = sandbox.info
    state_dir = tmp_path / "state"
    path = tmp_path / "shared.bin"
    content = write(path, 48 * MIB)  # six seconds at the slow upload's cap: time for two more nxup to start
    output = start_slow_upload(info, state_dir, path, target_folder)
    child = output.process
    try:
        output.wait_for(lambda e: e["event"] == "started")
        # A resume and a second upload of the same file, both started while the first process sends it.
        with ThreadPoolExecutor(2) as pool:
            resuming = pool.submit(run_nxup, ["resume", "--no-tui"], nxup_env(info, state_dir))
            uploading = pool.submit(run_nxup, ["upload", str(path), "--to", target_folder, "--no-tui"],
                                    nxup_env(info, state_dir))
            resumed, again = resuming.result(), uploading.result()
        assert output.finish(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    for second in (resumed, again):
        assert second.returncode == 0, second.stdout + second.stderr
        assert f"in use by nxup pid {child.pid}" in second.stdout + second.stderr
    (done,) = [e for e in output.events if e["event"] == "completed"]
    assert_document_holds(nuxeo, done["document_uid"], name=path.name, content=content)
    assert len(children(nuxeo, target_folder)) == 1
    with StateStore.open(state_dir) as store:
        (record,) = store.recent()
        assert record.status is UploadStatus.DONE and record.owner_pid is None  # released at exit


def test_start_up_clean_up_leaves_a_running_upload_alone(sandbox: Sandbox, s3_admin: Any, target_folder: str,
                                                         tmp_path: Path) -> None:
    info = sandbox.info
    state_dir = tmp_path / "state"
    path = tmp_path / "busy.bin"
    write(path, 15 * MIB)
    output = start_slow_upload(info, state_dir, path, target_folder)
    child = output.process
    try:
        output.wait_for(lambda e: e["event"] == "part_completed")
        batches = NuxeoBatchClient(ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password))
        with StateStore.open(state_dir) as store:
            later = datetime.now(UTC) + timedelta(days=30)
            assert abort_obsolete(store, max_age=timedelta(days=7), now=lambda: later, batches=batches) == []
            (record,) = store.unfinished()
        assert output.finish(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert [e for e in output.events if e["event"] == "completed"]
    assert multipart_uploads(s3_admin, bucket=info.bucket, prefix=record.object_key) == []


def test_age_of_an_upload_counts_from_its_last_part(sandbox: Sandbox, tmp_path: Path, target_folder: str) -> None:
    """Saving a part does not touch the upload's row: the clean-up's age must still see it."""
    from conftest import kill_upload_after_first_part

    state_dir = tmp_path / "state"
    record = kill_upload_after_first_part(sandbox.info, state_dir, tmp_path / "recent.mov", target_folder)
    with StateStore.open(state_dir) as store:
        store._conn.execute("UPDATE uploads SET updated_at = ? WHERE id = ?", (time.time() - 30 * 86400, record.id))
        assert store.last_activity(record.id) > time.time() - 60
        assert abort_obsolete(store, max_age=timedelta(days=7)) == []


def test_state_database_locked_fails_the_file_and_does_not_hang(
    make_manager: MakeManager, nuxeo: Nuxeo, target_folder: str, tmp_path: Path,
) -> None:
    state_dir = tmp_path / "locked-state"
    manager, events = make_manager(state_dir=state_dir, workers=1, bandwidth_limit=8 * MIB)
    path = tmp_path / "stuck.bin"
    content = write(path, 12 * MIB)
    (file_id,) = manager.add([path], target_folder).file_ids
    events.wait_for(PartCompleted, file_id=file_id)
    blocker = sqlite3.connect(state_dir / DB_FILENAME, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another program holding the database
    try:
        assert manager.wait(timeout=60), "the manager must not hang on a locked database"
        (failed,) = events.of(FileFailed, file_id)
        assert "state database cannot be written" in failed.reason and "locked" in failed.reason
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # Nothing is lost: the journal still offers the file, and resuming finishes it.
    manager.resume(file_id)
    assert manager.wait(timeout=60)
    (done,) = events.of(FileCompleted, file_id)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=content)


def test_a_state_database_that_is_not_one_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    (state_dir / DB_FILENAME).write_bytes(b"this is not a database" * 100)
    for args in (["status"], ["resume", "--no-tui"], ["upload", str(tmp_path), "--to", "/x", "--no-tui"]):
        result = run_nxup(args, nxup_env(sandbox.info, state_dir))
        assert result.returncode == 1, result
        (line,) = result.stderr.strip().splitlines()
        assert str(state_dir / DB_FILENAME) in line and "move it aside" in line


def test_a_killed_process_claims_are_free(sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tmp_path: Path) -> None:
    info = sandbox.info
    state_dir = tmp_path / "state"
    path = tmp_path / "orphaned.bin"
    content = write(path, 12 * MIB)
    output = start_slow_upload(info, state_dir, path, target_folder)
    kill_after_first_part(output)
    with StateStore.open(state_dir) as store:
        (record,) = store.unfinished()
        assert record.owner_pid == output.process.pid and store.owner_of(record.id) is None
    resumed = run_nxup(["resume", "--no-tui"], nxup_env(info, state_dir))
    assert resumed.returncode == 0 and "in use" not in resumed.stdout + resumed.stderr
    (document,) = children(nuxeo, target_folder)
    assert_document_holds(nuxeo, document.uid, name=path.name, content=content)


def test_lost_answer_to_a_document_creation_is_looked_up_not_sent_again(
    make_manager: MakeManager, nuxeo: Nuxeo, target_folder: str, tmp_path: Path,
) -> None:
    """The server made the document but its answer never came back (then, for the second
    file, the request never arrived): one document each, holding its bytes."""
    manager, events = make_manager()
    create = manager.nuxeo.create_file_document
    lost: list[str] = []

    def lossy_create(parent: str, *, name: str, **kwargs: Any) -> Any:
        if name not in lost:
            lost.append(name)
            if name == "answer-lost.txt":
                create(parent, name=name, **kwargs)  # the server acts...
            raise ServerUnreachable("cannot reach the Nuxeo server while creating the document")
        return create(parent, name=name, **kwargs)

    manager.nuxeo.create_file_document = lossy_create
    contents = {name: write(tmp_path / name, 2000 + len(name)) for name in ("answer-lost.txt", "never-sent.txt")}
    manager.add([tmp_path / name for name in contents], target_folder)
    assert manager.wait(timeout=60)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    assert sorted(lost) == sorted(contents)
    documents = children(nuxeo, target_folder)
    assert sorted(d.title for d in documents) == sorted(contents)
    for document in documents:
        assert_document_holds(nuxeo, document.uid, name=document.title, content=contents[document.title])
