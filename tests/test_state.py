from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

import engine
from engine.lifecycle import UNFINISHED, Stage, UploadStatus
from engine.state import DB_FILENAME, PartRecord, StateError, StateStore, UnknownUpload, UploadRecord, default_state_dir
from engine.state_schema import SCHEMA_VERSION

# The project root, for the child process of the crash test.
PROJECT_ROOT = Path(engine.__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def new_record(**overrides: object) -> UploadRecord:
    values: dict[str, object] = dict(
        path="/home/user/video.mp4",
        size=123_456_789,
        mtime_ns=1_700_000_000_123_456_789,
        server_url="https://nuxeo.example.com/nuxeo",
        user="alice",
        target="/default-domain/workspaces/projects",
        doc_name="video.mp4",
    )
    values.update(overrides)
    return UploadRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state") as opened:
        yield opened


# -- location and permissions --------------------------------------------------------------------


def test_state_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NXUP_STATE_DIR", str(tmp_path / "custom"))
    assert default_state_dir() == tmp_path / "custom"
    with StateStore.open() as opened:
        assert opened.path == tmp_path / "custom" / DB_FILENAME
    assert (tmp_path / "custom" / DB_FILENAME).is_file()


def test_state_dir_defaults_to_the_platform_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NXUP_STATE_DIR", raising=False)
    assert default_state_dir() == Path(platformdirs.user_state_dir("nxup"))


def test_empty_environment_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NXUP_STATE_DIR", "")
    assert default_state_dir() == Path(platformdirs.user_state_dir("nxup"))


def test_files_are_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "state"
    previous = os.umask(0)
    try:
        with StateStore.open(directory) as opened:
            opened.add_upload(new_record())
            db = directory / DB_FILENAME
            assert mode(directory) == 0o700
            assert mode(db) == 0o600
            for suffix in ("-wal", "-shm"):
                side = db.with_name(db.name + suffix)
                assert side.exists()
                assert mode(side) == 0o600
    finally:
        os.umask(previous)


def test_side_files_recreated_on_reopen_stay_private(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    StateStore.open(directory).close()
    db = directory / DB_FILENAME
    # A clean close checkpoints and removes the WAL; the next run creates fresh side files.
    assert not db.with_name(db.name + "-wal").exists()
    with StateStore.open(directory) as opened:
        record = opened.add_upload(new_record())
        opened.record_part(record.id, PartRecord(number=1, etag='"a"', size=5))
        for name in (DB_FILENAME, DB_FILENAME + "-wal", DB_FILENAME + "-shm"):
            assert mode(directory / name) == 0o600


def test_existing_database_is_made_private(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    os.chmod(tmp_path / DB_FILENAME, 0o644)
    StateStore.open(tmp_path).close()
    assert mode(tmp_path / DB_FILENAME) == 0o600


def test_sqlite_settings(store: StateStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    # Per-connection settings, read through the store's own connection.
    conn = store._conn
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_schema_holds_no_secrets(store: StateStore) -> None:
    conn = store._conn
    columns = [
        row[1]
        for table in ("uploads", "parts")
        for row in conn.execute(f"PRAGMA table_info({table})").fetchall()
    ]
    assert "status" in columns
    for column in columns:
        for word in ("secret", "password", "token", "credential", "access_key", "session"):
            assert word not in column.lower()
    assert conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'uploads'"
        " AND sql LIKE '%(status)%'"
    ).fetchone()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer"):
        StateStore.open(tmp_path)


VERSION_1_UPLOADS = """
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
        server_url TEXT NOT NULL, user TEXT, target TEXT NOT NULL, doc_name TEXT,
        status TEXT NOT NULL, batch_id TEXT, handler TEXT, bucket TEXT, object_key TEXT,
        upload_id TEXT, part_size INTEGER, part_count INTEGER, checksum_algorithm TEXT, etag TEXT,
        completed INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)), doc_uid TEXT,
        error TEXT, created_at REAL, updated_at REAL, finished_at REAL)
"""


def test_version_1_database_gets_stages_from_its_flags(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.execute(VERSION_1_UPLOADS)
    conn.execute("CREATE TABLE parts (upload INTEGER, number INTEGER, etag TEXT, size INTEGER, checksum TEXT)")
    rows = [  # (object_key, upload_id, etag, completed, doc_uid) -> expected stage
        ((None, None, None, 0, None), Stage.NEW),
        (("k", None, None, 0, None), Stage.BATCHED),
        (("k", "mpu", None, 0, None), Stage.SENDING),
        (("k", "mpu", '"e-2"', 0, None), Stage.ON_S3),
        (("k", None, '"e"', 1, None), Stage.REGISTERED),
        (("k", None, '"e"', 1, "uid"), Stage.DOCUMENTED),
    ]
    for values, _ in rows:
        conn.execute(
            "INSERT INTO uploads (path, server_url, target, status, object_key, upload_id, etag, completed, doc_uid)"
            " VALUES ('/f', 'http://n', '/t', 'paused', ?, ?, ?, ?, ?)", values)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with StateStore.open(tmp_path) as store:
        assert [record.stage for record in store.unfinished()] == [stage for _, stage in rows]
        # Each file had a batch of its own then: index 0 of it.
        assert {record.file_idx for record in store.unfinished()} == {0}
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    with StateStore.open(tmp_path) as first:
        record = first.add_upload(new_record())
        first.record_part(record.id, PartRecord(number=1, etag='"e1"', size=10))
    with StateStore.open(tmp_path) as second:
        assert second.get(record.id) == record
        assert second.parts(record.id) == {1: PartRecord(number=1, etag='"e1"', size=10)}


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    opened = StateStore.open(tmp_path)
    opened.close()
    opened.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        opened.get(1)


# -- records -------------------------------------------------------------------------------------


def test_add_and_get_round_trip(store: StateStore) -> None:
    before = time.time()
    original = new_record()
    added = store.add_upload(original)
    assert original.id is None  # the argument is left alone
    assert added.id is not None
    assert before <= added.created_at <= time.time()  # type: ignore[operator]
    assert added.updated_at == added.created_at
    assert added.status is UploadStatus.QUEUED
    assert added.stage is Stage.NEW
    assert store.get(added.id) == added


def test_every_field_round_trips(store: StateStore) -> None:
    record = new_record(
        status=UploadStatus.UPLOADING,
        batch_id="batch-1",
        handler="s3",
        bucket="bucket",
        object_key="prefix/batch-1/0",
        upload_id="mpu-123",
        part_size=20 * 1024**2,
        part_count=7,
        checksum_algorithm="SHA256",
        etag='"abc-7"',
        stage=Stage.CREATING_DOCUMENT,
        document_key="key-1",
        doc_uid="0b3d-uid",
        error="boom",
        created_at=1.5,
        finished_at=3.25,
    )
    added = store.add_upload(record)
    assert added.created_at == 1.5  # a given creation time is kept
    fetched = store.get(added.id)
    assert fetched == added
    assert isinstance(fetched.status, UploadStatus)
    assert fetched.stage is Stage.CREATING_DOCUMENT


def test_add_refuses_a_record_with_an_id(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.add_upload(new_record(id=3))


def test_status_accepts_strings_and_rejects_unknown_values() -> None:
    assert new_record(status="paused").status is UploadStatus.PAUSED
    with pytest.raises(ValueError):
        new_record(status="lost")


def test_get_unknown(store: StateStore) -> None:
    assert store.get(999) is None


def test_update(store: StateStore) -> None:
    added = store.add_upload(new_record())
    time.sleep(0.01)
    store.update(added.id, status=UploadStatus.DONE, etag='"x"', stage="registered", finished_at=9.0)
    fetched = store.get(added.id)
    assert fetched.status is UploadStatus.DONE
    assert fetched.etag == '"x"'
    assert fetched.stage is Stage.REGISTERED
    assert fetched.finished_at == 9.0
    assert fetched.updated_at > added.updated_at  # type: ignore[operator]
    assert fetched.created_at == added.created_at
    store.update(added.id, status="paused", error=None)
    assert store.get(added.id).status is UploadStatus.PAUSED


@pytest.mark.parametrize("name", ["password", "id", "upload", "status; DROP TABLE uploads"])
def test_update_unknown_column(store: StateStore, name: str) -> None:
    added = store.add_upload(new_record())
    with pytest.raises(ValueError, match="column"):
        store.update(added.id, **{name: "x"})
    assert store.get(added.id) == added


def test_update_bad_status(store: StateStore) -> None:
    added = store.add_upload(new_record())
    with pytest.raises(ValueError):
        store.update(added.id, status="lost")


def test_update_unknown_upload(store: StateStore) -> None:
    with pytest.raises(UnknownUpload):
        store.update(42, status=UploadStatus.DONE)


def test_unfinished_and_recent(store: StateStore) -> None:
    ids = {}
    for status in UploadStatus:
        ids[status] = store.add_upload(new_record(path=f"/f/{status}", status=status)).id
    unfinished = store.unfinished()
    assert [r.id for r in unfinished] == sorted(ids[s] for s in UNFINISHED)
    assert {r.status for r in unfinished} == UNFINISHED
    assert UploadStatus.FAILED in UNFINISHED
    recent = store.recent()
    assert [r.id for r in recent] == sorted(ids.values(), reverse=True)
    assert [r.id for r in store.recent(limit=2)] == sorted(ids.values(), reverse=True)[:2]
    assert store.recent(limit=0) == []
    with pytest.raises(ValueError):
        store.recent(limit=-1)


def test_find_active(store: StateStore) -> None:
    key = dict(path="/f/a", server_url="https://s/nuxeo", target="/ws")
    assert store.find_active(**key) is None
    done = store.add_upload(new_record(**key, status=UploadStatus.DONE))
    assert store.find_active(**key) is None
    paused = store.add_upload(new_record(**key, status=UploadStatus.PAUSED))
    store.add_upload(new_record(**{**key, "target": "/other"}))
    store.add_upload(new_record(**{**key, "server_url": "https://t/nuxeo"}))
    store.add_upload(new_record(**{**key, "path": "/f/b"}))
    assert store.find_active(**key).id == paused.id
    store.update(paused.id, status=UploadStatus.CANCELLED)
    assert store.find_active(**key) is None
    assert done.id is not None


def test_ids_are_never_reused(store: StateStore) -> None:
    first = store.add_upload(new_record())
    store.delete(first.id)
    second = store.add_upload(new_record())
    assert second.id != first.id
    with pytest.raises(UnknownUpload):
        store.record_part(first.id, PartRecord(number=1, etag='"e"', size=1))
    assert store.parts(second.id) == {}


def test_tracked_upload_ids(store: StateStore) -> None:
    store.add_upload(new_record(upload_id="mpu-1"))
    store.add_upload(new_record(upload_id="mpu-2", status=UploadStatus.DONE))
    store.add_upload(new_record())  # a single upload has no UploadId
    assert store.tracked_upload_ids() == {"mpu-1", "mpu-2"}


# -- parts ---------------------------------------------------------------------------------------


def test_parts_round_trip_and_replace(store: StateStore) -> None:
    upload = store.add_upload(new_record()).id
    store.record_part(upload, PartRecord(number=2, etag='"b"', size=5, checksum="c2"))
    store.record_part(upload, PartRecord(number=1, etag='"a"', size=5))
    store.record_part(upload, PartRecord(number=1, etag='"a2"', size=5))
    parts = store.parts(upload)
    assert list(parts) == [1, 2]
    assert parts[1] == PartRecord(number=1, etag='"a2"', size=5)
    assert parts[2] == PartRecord(number=2, etag='"b"', size=5, checksum="c2")
    other = store.add_upload(new_record()).id
    assert store.parts(other) == {}


def test_invalid_part(store: StateStore) -> None:
    upload = store.add_upload(new_record()).id
    with pytest.raises(ValueError):
        store.record_part(upload, PartRecord(number=0, etag='"a"', size=5))


def test_record_part_for_unknown_upload(store: StateStore) -> None:
    with pytest.raises(UnknownUpload):
        store.record_part(12345, PartRecord(number=1, etag='"a"', size=5))


def test_forget_parts(store: StateStore) -> None:
    upload = store.add_upload(new_record()).id
    other = store.add_upload(new_record()).id
    for number in (1, 2, 3):
        store.record_part(upload, PartRecord(number=number, etag=f'"{number}"', size=1))
    store.record_part(other, PartRecord(number=1, etag='"o"', size=1))
    store.forget_parts(upload)
    assert store.parts(upload) == {}
    assert list(store.parts(other)) == [1]
    assert store.get(upload) is not None


def test_delete_cascades_to_parts(store: StateStore) -> None:
    upload = store.add_upload(new_record()).id
    kept = store.add_upload(new_record()).id
    store.record_part(upload, PartRecord(number=1, etag='"a"', size=1))
    store.record_part(kept, PartRecord(number=1, etag='"k"', size=1))
    store.delete(upload)
    store.delete(upload)  # deleting twice is harmless
    assert store.get(upload) is None
    count = store._conn.execute("SELECT COUNT(*) FROM parts WHERE upload = ?", (upload,))
    assert count.fetchone()[0] == 0
    assert list(store.parts(kept)) == [1]


# -- crashes and threads -------------------------------------------------------------------------

_CRASH_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from engine.lifecycle import UploadStatus
    from engine.state import PartRecord, StateStore, UploadRecord

    store = StateStore.open(Path(sys.argv[1]))
    upload = store.add_upload(
        UploadRecord(path="/f", server_url="https://s", target="/ws", upload_id="mpu")
    ).id
    print(upload, flush=True)
    number = 0
    while True:
        number += 1
        store.record_part(upload, PartRecord(number=number, etag=f'"{number}"', size=number))
        store.update(upload, status=UploadStatus.UPLOADING, part_count=number)
    """
)


def test_killed_process_leaves_a_consistent_database(tmp_path: Path) -> None:
    python_path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        assert line.strip(), "the child process did not start"
        upload = int(line)
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL

    with StateStore.open(tmp_path) as reopened:
        assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        parts = reopened.parts(upload)
        count = len(parts)
        assert count > 10, f"only {count} parts were committed before the kill"
        # Every committed part is whole and they form a prefix: nothing half-written.
        assert parts == {
            n: PartRecord(number=n, etag=f'"{n}"', size=n) for n in range(1, count + 1)
        }
        record = reopened.get(upload)
        # The part row commits before the count, so the count lags by at most one.
        assert record.part_count in (count - 1, count) or (count == 1 and record.part_count is None)
        assert reopened.tracked_upload_ids() == {"mpu"}


def test_threads_record_parts_concurrently(store: StateStore) -> None:
    shared = store.add_upload(new_record()).id
    own = [store.add_upload(new_record(path=f"/f/{i}")).id for i in range(8)]
    per_thread = 40
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                number = index * per_thread + i + 1
                store.record_part(shared, PartRecord(number=number, etag=f'"{number}"', size=i))
                store.record_part(own[index], PartRecord(number=i + 1, etag='"o"', size=i))
                store.update(own[index], part_count=i + 1)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert list(store.parts(shared)) == list(range(1, 8 * per_thread + 1))
    for upload in own:
        assert list(store.parts(upload)) == list(range(1, per_thread + 1))
        assert store.get(upload).part_count == per_thread


def test_two_stores_on_one_database(tmp_path: Path) -> None:
    # A second nxup process (e.g. `nxup status` while the TUI runs) sees committed writes.
    with StateStore.open(tmp_path) as first, StateStore.open(tmp_path) as second:
        upload = first.add_upload(new_record()).id
        first.record_part(upload, PartRecord(number=1, etag='"a"', size=1))
        assert list(second.parts(upload)) == [1]
        second.update(upload, status=UploadStatus.PAUSED)
        assert first.get(upload).status is UploadStatus.PAUSED


def _version_4_schema() -> list[str]:
    """The tables of version 4: no columns for names taken in the target, no `skipped` status."""
    from engine.state_schema import _SCHEMA

    statements = []
    for statement in _SCHEMA:
        for column in ("existing", "action", "version_of", "doc_revision", "note"):
            statement = statement.replace(f"        {column} TEXT,\n", "")
        statements.append(statement.replace(", 'skipped'", ""))
    return statements


def test_version_4_database_takes_skipped_uploads_and_keeps_its_parts(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    for statement in _version_4_schema():
        conn.execute(statement)
    conn.execute("INSERT INTO uploads (path, server_url, target, status, stage) VALUES ('/f', 'http://n', '/t', "
                 "'paused', 'sending')")
    conn.execute("INSERT INTO parts (upload, number, etag, size) VALUES (1, 1, '\"e1\"', 10)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE uploads SET status = 'skipped'")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    with StateStore.open(tmp_path) as store:
        assert store.parts(1) == {1: PartRecord(number=1, etag='"e1"', size=10)}
        store.update(1, status=UploadStatus.SKIPPED, action="skip", note="same bytes in /t/f")
        record = store.get(1)
        assert (record.status, record.action, record.note) == (UploadStatus.SKIPPED, "skip", "same bytes in /t/f")
        with pytest.raises(sqlite3.IntegrityError):
            store._conn.execute("UPDATE uploads SET status = 'bogus'")
    with StateStore.open(tmp_path) as again:  # a new connection reads the widened check too
        again.update(1, status=UploadStatus.SKIPPED)
        assert again.get(1).status is UploadStatus.SKIPPED
