"""The upload state store: one SQLite database that survives crashes, pauses and restarts.

Each upload is a row of `uploads`; each part S3 has acknowledged is a row of `parts`. Every
write is its own committed transaction, so a process killed at any moment leaves a database in
which a part exists only if S3 accepted it and the row was committed; `nxup resume` then sends
only the missing parts.

The store never holds a secret: credentials and tokens stay in memory.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import platformdirs

from .errors import StateError
from .lifecycle import UNFINISHED
from .owner import Owner
from .records import PartRecord, UploadRecord
from .state_rows import COLUMNS, from_row, status_list, to_column, to_row
from .state_schema import migrate

STATE_DIR_ENV = "NXUP_STATE_DIR"
DB_FILENAME = "state.db"
BUSY_TIMEOUT_MS = 5000

# SQLite creates these next to the database in WAL mode; they hold the same data, so they get
# the same permissions.
_SIDE_FILE_SUFFIXES = ("-wal", "-shm")


class UnknownUpload(KeyError):
    """No upload has this id (it was deleted, or never existed)."""


_UPDATABLE: frozenset[str] = frozenset(COLUMNS) - {"id"}

def default_state_dir() -> Path:
    """Where the state database lives: $NXUP_STATE_DIR, else the platform's user state dir."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir("nxup"))


class StateStore:
    """Thread-safe access to the state database.

    One connection is shared by all threads behind a lock: writes are tiny, and SQLite would
    serialise them anyway. Use `StateStore.open()` rather than the constructor. Its length: every
    query of the journal shares that connection, its lock and its transactions (the schema and its
    migrations are apart, in `state_schema`).
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._conn = connection
        self._path = path
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, directory: Path | None = None) -> StateStore:
        """Open (creating if needed) `state.db` in `directory`, by default `default_state_dir()`."""
        directory = Path(directory) if directory is not None else default_state_dir()
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
            # mkdir's mode is filtered by the umask; set it outright.
            directory.chmod(0o700)
        path = directory / DB_FILENAME
        try:
            return cls._open(path)
        except sqlite3.Error as exc:
            raise StateError(
                f"{path}: the state database cannot be used ({exc}); if no other nxup is running, "
                f"move it aside (mv {path} {path}.broken) and run nxup again"
            ) from exc

    @classmethod
    def _open(cls, path: Path) -> StateStore:
        # Create the file ourselves so it is private from its first byte; sqlite3 would create
        # it with the umask's permissions.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)

        connection = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            # Autocommit: each statement commits on its own, multi-statement writes use an
            # explicit BEGIN, and nothing is left in an implicit open transaction.
            isolation_level=None,
        )
        try:
            connection.row_factory = sqlite3.Row
            # WAL with synchronous=NORMAL survives a killed process (only a power cut can lose
            # the last commits, never consistency) and does not fsync on every part.
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StateError(f"cannot use WAL journaling for {path} (got {mode!r})")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Off by default in SQLite, and needed for parts to go with their upload.
            connection.execute("PRAGMA foreign_keys=ON")
            migrate(connection, path, elsewhere=f"set {STATE_DIR_ENV} to another directory")
            # SQLite gives the -wal and -shm files the database file's permissions, but they
            # may predate this run; chmod rather than change the umask, which is process-wide
            # and would race with other threads creating files.
            _make_private(path)
        except BaseException:
            connection.close()
            raise
        return cls(connection, path)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- uploads -------------------------------------------------------------------------------

    def add_upload(self, record: UploadRecord) -> UploadRecord:
        """Insert `record` and return a copy with its id and timestamps set."""
        return self.add_uploads([record])[0]

    def add_uploads(self, records: list[UploadRecord]) -> list[UploadRecord]:
        """Insert many records in one transaction (one commit instead of one per file)."""
        now = time.time()
        stored = []
        with self._transaction() as conn:
            for record in records:
                if record.id is not None:
                    raise ValueError(f"record already has id {record.id}")
                row = replace(
                    record,
                    created_at=record.created_at if record.created_at is not None else now,
                    updated_at=now,
                )
                values = to_row(row)
                del values["id"]
                names = ", ".join(values)
                marks = ", ".join(f":{name}" for name in values)
                row.id = conn.execute(f"INSERT INTO uploads ({names}) VALUES ({marks})", values).lastrowid
                stored.append(row)
        return stored

    def get(self, file_id: int) -> UploadRecord | None:
        with self._locked() as conn:
            row = conn.execute("SELECT * FROM uploads WHERE id = ?", (file_id,)).fetchone()
        return from_row(row) if row is not None else None

    def update(self, file_id: int, /, **fields: Any) -> None:
        """Set the given columns of one upload, and its `updated_at`.

        Raises ValueError for a name that is not a column (or is `id`), UnknownUpload if there
        is no such upload.
        """
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not an updatable upload column: {', '.join(sorted(unknown))}")
        values = {name: to_column(name, value) for name, value in fields.items()}
        values.setdefault("updated_at", time.time())
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        with self._locked() as conn:
            cursor = conn.execute(
                f"UPDATE uploads SET {assignments} WHERE id = :_id", {**values, "_id": file_id}
            )
        if cursor.rowcount == 0:
            raise UnknownUpload(file_id)

    def unfinished(self) -> list[UploadRecord]:
        """Uploads `nxup resume` should pick up, oldest first."""
        return self._select(
            f"SELECT * FROM uploads WHERE status IN ({status_list(UNFINISHED)}) ORDER BY id"
        )

    def recent(self, *, limit: int = 50) -> list[UploadRecord]:
        """The latest `limit` uploads whatever their status, newest first."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        return self._select("SELECT * FROM uploads ORDER BY id DESC LIMIT ?", (limit,))

    def find_active(self, *, path: str, server_url: str, target: str) -> UploadRecord | None:
        """The newest unfinished upload of this file to this folder of this server, if any.

        Used to resume that upload instead of starting a duplicate when a file is added again.
        """
        records = self._select(
            f"SELECT * FROM uploads WHERE path = ? AND server_url = ? AND target = ?"
            f" AND status IN ({status_list(UNFINISHED)}) ORDER BY id DESC LIMIT 1",
            (path, server_url, target),
        )
        return records[0] if records else None

    def delete(self, file_id: int) -> None:
        """Forget an upload and its parts. Deleting an unknown id does nothing."""
        with self._locked() as conn:
            conn.execute("DELETE FROM uploads WHERE id = ?", (file_id,))

    def tracked_upload_ids(self) -> set[str]:
        """The S3 multipart UploadIds of every upload in the store, whatever its status."""
        with self._locked() as conn:
            rows = conn.execute(
                "SELECT DISTINCT upload_id FROM uploads WHERE upload_id IS NOT NULL"
            ).fetchall()
        return {row[0] for row in rows}

    def with_multipart_upload(self) -> list[UploadRecord]:
        """Every upload that still names an S3 multipart UploadId, whatever its status, oldest
        first: the ones `nxup stale` can explain."""
        return self._select("SELECT * FROM uploads WHERE upload_id IS NOT NULL ORDER BY id")

    # -- parts ---------------------------------------------------------------------------------

    def record_part(self, file_id: int, part: PartRecord) -> None:
        """Record a part S3 acknowledged, replacing an earlier record of the same number."""
        with self._locked() as conn:
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO parts (upload, number, etag, size, checksum, saved_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (file_id, part.number, part.etag, part.size, part.checksum, time.time()),
                )
            except sqlite3.IntegrityError as error:
                if "FOREIGN KEY" in str(error):
                    raise UnknownUpload(file_id) from error
                raise ValueError(f"invalid part {part}: {error}") from error

    def parts(self, file_id: int) -> dict[int, PartRecord]:
        """The recorded parts of an upload, by part number."""
        with self._locked() as conn:
            rows = conn.execute(
                "SELECT number, etag, size, checksum FROM parts WHERE upload = ? ORDER BY number",
                (file_id,),
            ).fetchall()
        return {
            row["number"]: PartRecord(
                number=row["number"], etag=row["etag"], size=row["size"], checksum=row["checksum"]
            )
            for row in rows
        }

    def replace_parts(self, file_id: int, parts: Iterable[PartRecord]) -> None:
        """Make the recorded parts exactly `parts`, in one transaction (resuming a file with
        thousands of parts must not cost thousands of commits)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (file_id,))
            conn.executemany(
                "INSERT INTO parts (upload, number, etag, size, checksum) VALUES (?, ?, ?, ?, ?)",
                [(file_id, p.number, p.etag, p.size, p.checksum) for p in parts],
            )

    def last_activity(self, file_id: int) -> float | None:
        """When the upload last moved: its row's last change or its last part saved (saving a
        part does not touch the row), None if neither is known."""
        with self._locked() as conn:
            row = conn.execute(
                "SELECT max(coalesce(u.updated_at, 0), coalesce((SELECT max(saved_at) FROM parts"
                " WHERE upload = u.id), 0)) FROM uploads u WHERE u.id = ?",
                (file_id,),
            ).fetchone()
        return row[0] or None if row is not None else None

    # -- owners --------------------------------------------------------------------------------

    def claim(self, file_ids: Iterable[int], owner: Owner) -> dict[int, int]:
        """Make `owner` the owner of these uploads, except those a live other process owns:
        returns them, with that process's pid. Read and written under SQLite's write lock, so
        two processes claiming at once cannot both win."""
        ids = list(file_ids)
        held: dict[int, int] = {}
        with self._transaction(immediate=True) as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT id, owner_pid, owner_started FROM uploads WHERE id IN ({marks})"
                    " AND owner_pid IS NOT NULL", chunk,
                ):
                    other = Owner(row["owner_pid"], row["owner_started"] or 0)
                    if other != owner and other.is_alive():
                        held[row["id"]] = other.pid
                free = [i for i in chunk if i not in held]
                conn.executemany(
                    "UPDATE uploads SET owner_pid = ?, owner_started = ? WHERE id = ?",
                    [(owner.pid, owner.started, i) for i in free],
                )
        return held

    def owner_of(self, file_id: int) -> Owner | None:
        """The live process that owns the upload, if any."""
        with self._locked() as conn:
            row = conn.execute("SELECT owner_pid, owner_started FROM uploads WHERE id = ?", (file_id,)).fetchone()
        if row is None or row["owner_pid"] is None:
            return None
        owner = Owner(row["owner_pid"], row["owner_started"] or 0)
        return owner if owner.is_alive() else None

    def release(self, owner: Owner) -> None:
        """Give up every claim of `owner` (at a clean exit; a crash frees them by itself)."""
        with self._locked() as conn:
            conn.execute(
                "UPDATE uploads SET owner_pid = NULL, owner_started = NULL WHERE owner_pid = ? AND owner_started = ?",
                (owner.pid, owner.started),
            )

    def batch_in_use(self, batch_id: str, *, besides: int) -> bool:
        """Whether an unfinished upload other than `besides` uses batch `batch_id` (small
        files share batches; one of them ending must not drop the others' batch)."""
        with self._locked() as conn:
            row = conn.execute(
                f"SELECT 1 FROM uploads WHERE batch_id = ? AND id != ? AND status IN ({status_list(UNFINISHED)})"
                " LIMIT 1",
                (batch_id, besides),
            ).fetchone()
        return row is not None

    def forget_parts(self, file_id: int) -> None:
        """Drop every recorded part, e.g. when the multipart upload is restarted from scratch."""
        with self._locked() as conn:
            conn.execute("DELETE FROM parts WHERE upload = ?", (file_id,))

    # -- internals -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StateError("the state store is closed")
            try:
                yield self._conn
            except sqlite3.IntegrityError:
                raise  # a caller's mistake, translated where it is made
            except sqlite3.Error as exc:
                # Disk full, a lock held too long by another program, a file gone bad: the
                # upload at hand fails with this line instead of a raw traceback.
                raise StateError(f"{self._path}: the state database cannot be written ({exc})") from exc

    @contextmanager
    def _transaction(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """Several statements committed together, or not at all (`immediate`: holding the
        write lock from the start, for a read-then-write no other process may interleave)."""
        with self._locked() as conn:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _select(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[UploadRecord]:
        with self._locked() as conn:
            rows = conn.execute(sql, parameters).fetchall()
        return [from_row(row) for row in rows]


def _make_private(path: Path) -> None:
    for candidate in (path, *(path.with_name(path.name + s) for s in _SIDE_FILE_SUFFIXES)):
        try:
            os.chmod(candidate, 0o600)
        except FileNotFoundError:
            pass


__all__ = [
    "DB_FILENAME",
    "STATE_DIR_ENV",
    "PartRecord",
    "StateError",
    "StateStore",
    "UnknownUpload",
    "UploadRecord",
    "default_state_dir",
]
