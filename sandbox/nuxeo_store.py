"""The sandbox Nuxeo server's state in SQLite: documents, upload batches and their files, and
authentication tokens, so that a persistent sandbox survives restarts."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

# The handler that takes bytes through Nuxeo itself; every other handler is an S3 one.
DEFAULT_HANDLER = "default"

FOLDERISH_TYPES = frozenset(
    {
        "Root",
        "Domain",
        "WorkspaceRoot",
        "Workspace",
        "UserWorkspacesRoot",
        "Folder",
        "OrderedFolder",
        "SectionRoot",
        "Section",
        "TemplateRoot",
        "Collections",
    }
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredBlob:
    """A blob as a document keeps it: the S3 object stays where it was uploaded."""

    name: str
    mime_type: str | None
    encoding: str | None
    digest: str
    length: int
    key: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mime-type": self.mime_type,
            "encoding": self.encoding,
            "digest": self.digest,
            "length": self.length,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredBlob:
        return cls(
            data["name"],
            data["mime-type"],
            data["encoding"],
            data["digest"],
            int(data["length"]),
            data["key"],
        )


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    provider: str  # the name of the handler that made it
    base_key: str

    @property
    def is_s3(self) -> bool:
        return self.provider != DEFAULT_HANDLER


@dataclass(frozen=True)
class BatchFile:
    batch_id: str
    idx: int
    etag: str
    blob: StoredBlob

    def info(self) -> dict[str, Any]:
        return {"name": self.blob.name, "size": self.blob.length, "uploadType": "normal"}


@dataclass(frozen=True)
class DocRecord:
    uid: str
    parent_uid: str | None
    name: str
    path: str
    type: str
    properties: dict[str, Any]  # blobs kept in their `StoredBlob.as_dict()` form
    change_token: int
    modified: str

    @property
    def folderish(self) -> bool:
        return self.type in FOLDERISH_TYPES

    @property
    def title(self) -> str:
        return self.properties.get("dc:title") or self.name

    def child_path(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"


@dataclass(frozen=True)
class StoredAnswer:
    """A response kept for replay under its idempotency key."""

    status: int
    headers: dict[str, str]
    body: bytes


class Claim(Enum):
    """The state of an idempotency key that has no stored answer."""

    NEW = "new"  # claimed now: run the request
    RUNNING = "running"  # another request with that key is running


# -- persistence -----------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    uid TEXT PRIMARY KEY,
    parent_uid TEXT REFERENCES documents(uid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    properties TEXT NOT NULL,
    change_token INTEGER NOT NULL,
    modified TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_parent ON documents(parent_uid);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    base_key TEXT NOT NULL,
    created TEXT NOT NULL,
    touched REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batch_files (
    batch_id TEXT NOT NULL REFERENCES batches(batch_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    etag TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    application_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_description TEXT,
    permission TEXT NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (user, application_name, device_id)
);
CREATE TABLE IF NOT EXISTS idempotent_requests (
    key TEXT PRIMARY KEY,
    status INTEGER,
    headers TEXT,
    body BLOB,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotent_requests_expires ON idempotent_requests(expires);
"""

_DOC_COLUMNS = "uid, parent_uid, name, path, type, properties, change_token, modified"


class Store:
    """SQLite state: one connection shared by the request threads behind a re-entrant lock."""

    def __init__(self, path: Path) -> None:
        # Create the file 0600 before SQLite does: it holds tokens.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn.execute("PRAGMA foreign_keys = ON")
        # Several commits per request: WAL without an fsync per commit keeps them cheap, and a
        # killed process still loses nothing committed (only a power cut could).
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)
        self._upgrade()
        with self.transaction() as db:
            # Nothing runs across a restart: a key still marked running would answer 409 forever.
            db.execute("DELETE FROM idempotent_requests WHERE status IS NULL")

    def _upgrade(self) -> None:
        """Bring a database written by an older sandbox up to the current schema."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(batches)")}
        if "touched" not in columns:
            # Its batches count as expired: their credentials were scoped the old way.
            self._conn.execute("ALTER TABLE batches ADD COLUMN touched REAL NOT NULL DEFAULT 0")
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Nestable: only the outermost level commits (or rolls back on error)."""
        with self._lock:
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                if self._depth == 1:
                    self._conn.rollback()
                raise
            else:
                if self._depth == 1:
                    self._conn.commit()
            finally:
                self._depth -= 1

    # documents
    @staticmethod
    def _doc(row: tuple[Any, ...] | None) -> DocRecord | None:
        if row is None:
            return None
        uid, parent_uid, name, path, doc_type, props, token, modified = row
        return DocRecord(uid, parent_uid, name, path, doc_type, json.loads(props), token, modified)

    def doc_by_uid(self, uid: str) -> DocRecord | None:
        with self.transaction() as db:
            row = db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE uid = ?", (uid,))
            return self._doc(row.fetchone())

    def doc_by_path(self, path: str) -> DocRecord | None:
        with self.transaction() as db:
            row = db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (path,))
            return self._doc(row.fetchone())

    def children(self, parent_uid: str) -> list[DocRecord]:
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE parent_uid = ? ORDER BY rowid",
                (parent_uid,),
            )
            return [doc for doc in map(self._doc, rows.fetchall()) if doc is not None]

    def all_docs(self) -> list[DocRecord]:
        with self.transaction() as db:
            rows = db.execute(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY rowid")
            return [doc for doc in map(self._doc, rows.fetchall()) if doc is not None]

    def move_doc(self, doc: DocRecord, name: str) -> None:
        """Rename a document in its folder (its descendants' paths follow)."""
        path = f"{doc.path.rsplit('/', 1)[0]}/{name}"
        with self.transaction() as db:
            db.execute(
                "UPDATE documents SET path = ? || substr(path, ?) WHERE path LIKE ? ESCAPE '\\'",
                (path, len(doc.path) + 1, _like_prefix(doc.path) + "/%"),
            )
            db.execute("UPDATE documents SET name = ?, path = ? WHERE uid = ?", (name, path, doc.uid))

    def save_doc(self, doc: DocRecord) -> None:
        with self.transaction() as db:
            db.execute(
                # An upsert, not INSERT OR REPLACE: a replace deletes the row first, and
                # the cascade would take the children with it.
                f"INSERT INTO documents ({_DOC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(uid) DO UPDATE SET properties = excluded.properties,"
                " change_token = excluded.change_token, modified = excluded.modified",
                (
                    doc.uid,
                    doc.parent_uid,
                    doc.name,
                    doc.path,
                    doc.type,
                    json.dumps(doc.properties),
                    doc.change_token,
                    doc.modified,
                ),
            )

    def delete_doc(self, uid: str) -> None:
        # Children go too, through ON DELETE CASCADE.
        with self.transaction() as db:
            db.execute("DELETE FROM documents WHERE uid = ?", (uid,))

    # batches: `touched` is when the batch was made or last had a file completed (epoch seconds)
    def add_batch(self, batch: BatchRecord, *, now: float) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, provider, base_key, created, touched)"
                " VALUES (?, ?, ?, ?, ?)",
                (batch.batch_id, batch.provider, batch.base_key, now_iso(), now),
            )

    def batch(self, batch_id: str, *, touched_after: float) -> BatchRecord | None:
        """The batch, unless it was last touched at `touched_after` or before: then it is
        evicted, as the transient store does at the end of its TTL."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM batches WHERE batch_id = ? AND touched <= ?", (batch_id, touched_after)
            )
            row = db.execute(
                "SELECT batch_id, provider, base_key FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            return BatchRecord(*row) if row else None

    def drop_batch(self, batch_id: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,)).rowcount > 0

    def batch_files(self, batch_id: str) -> list[BatchFile]:
        with self.transaction() as db:
            rows = db.execute(
                "SELECT idx, etag, blob FROM batch_files WHERE batch_id = ? ORDER BY idx",
                (batch_id,),
            ).fetchall()
        return [
            BatchFile(batch_id, idx, etag, StoredBlob.from_dict(json.loads(blob)))
            for idx, etag, blob in rows
        ]

    def batch_file(self, batch_id: str, idx: int) -> BatchFile | None:
        with self.transaction() as db:
            row = db.execute(
                "SELECT etag, blob FROM batch_files WHERE batch_id = ? AND idx = ?", (batch_id, idx)
            ).fetchone()
        if row is None:
            return None
        return BatchFile(batch_id, idx, row[0], StoredBlob.from_dict(json.loads(row[1])))

    def put_batch_file(self, entry: BatchFile, *, now: float) -> bool:
        """Record the file and touch its batch; False when the batch was dropped meanwhile."""
        with self.transaction() as db:
            touched = db.execute(
                "UPDATE batches SET touched = ? WHERE batch_id = ?", (now, entry.batch_id)
            )
            if touched.rowcount == 0:
                return False
            db.execute(
                "INSERT OR REPLACE INTO batch_files (batch_id, idx, etag, blob)"
                " VALUES (?, ?, ?, ?)",
                (entry.batch_id, entry.idx, entry.etag, json.dumps(entry.blob.as_dict())),
            )
            return True

    def delete_batch_file(self, batch_id: str, idx: int) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM batch_files WHERE batch_id = ? AND idx = ?", (batch_id, idx)
            )
            return cursor.rowcount > 0

    # tokens
    def token_user(self, token: str) -> str | None:
        with self.transaction() as db:
            row = db.execute("SELECT user FROM tokens WHERE token = ?", (token,)).fetchone()
            return row[0] if row else None

    def acquire_token(
        self, user: str, app: str, device_id: str, permission: str, description: str | None
    ) -> str:
        """The existing token for (user, app, device), else a new one (as Nuxeo does)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT token FROM tokens"
                " WHERE user = ? AND application_name = ? AND device_id = ?",
                (user, app, device_id),
            ).fetchone()
            if row:
                return row[0]
            token = str(uuid.uuid4())
            db.execute(
                "INSERT INTO tokens (token, user, application_name, device_id, device_description,"
                " permission, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token, user, app, device_id, description, permission, now_iso()),
            )
            return token

    def revoke_token(self, user: str, app: str, device_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM tokens WHERE user = ? AND application_name = ? AND device_id = ?",
                (user, app, device_id),
            )
            return cursor.rowcount > 0

    # idempotency keys
    def claim_request(self, key: str, *, now: float, ttl_s: float) -> Claim | StoredAnswer:
        """Claim `key` for a new request, or say why not: one is running, or here is its answer."""
        with self.transaction() as db:
            db.execute("DELETE FROM idempotent_requests WHERE expires <= ?", (now,))
            row = db.execute(
                "SELECT status, headers, body FROM idempotent_requests WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO idempotent_requests (key, expires) VALUES (?, ?)",
                    (key, now + ttl_s),
                )
                return Claim.NEW
            status, headers, body = row
            if status is None:
                return Claim.RUNNING
            return StoredAnswer(status, json.loads(headers), body)

    def store_answer(self, key: str, answer: StoredAnswer, *, expires: float) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE idempotent_requests SET status = ?, headers = ?, body = ?, expires = ?"
                " WHERE key = ?",
                (answer.status, json.dumps(answer.headers), answer.body, expires, key),
            )

    def release_request(self, key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM idempotent_requests WHERE key = ?", (key,))


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
