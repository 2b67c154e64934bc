"""The `batches` and `batch_files` tables: upload batches and the files completed into them.

A batch's `touched` is when it was made or last had a file completed (epoch seconds); its
lifetime is counted from it."""

from __future__ import annotations

import json
import sqlite3

from .records import BatchFile, BatchRecord, StoredBlob, now_iso
from .transactions import Transactions

SCHEMA = """
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
"""


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring the tables of a database written by an older sandbox up to the current schema."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(batches)")}
    if "touched" not in columns:
        # Its batches count as expired: their credentials were scoped the old way.
        conn.execute("ALTER TABLE batches ADD COLUMN touched REAL NOT NULL DEFAULT 0")
        conn.commit()


class BatchTable:
    def __init__(self, transaction: Transactions) -> None:
        self._transaction = transaction

    def add(self, batch: BatchRecord, *, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, provider, base_key, created, touched)"
                " VALUES (?, ?, ?, ?, ?)",
                (batch.batch_id, batch.provider, batch.base_key, now_iso(), now),
            )

    def get(self, batch_id: str, *, touched_after: float) -> BatchRecord | None:
        """The batch, unless it was last touched at `touched_after` or before: then it is
        evicted, as the transient store does at the end of its TTL."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM batches WHERE batch_id = ? AND touched <= ?", (batch_id, touched_after)
            )
            row = db.execute(
                "SELECT batch_id, provider, base_key FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            return BatchRecord(*row) if row else None

    def drop(self, batch_id: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,)).rowcount > 0

    def files(self, batch_id: str) -> list[BatchFile]:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT idx, etag, blob FROM batch_files WHERE batch_id = ? ORDER BY idx",
                (batch_id,),
            ).fetchall()
        return [
            BatchFile(batch_id, idx, etag, StoredBlob.from_dict(json.loads(blob)))
            for idx, etag, blob in rows
        ]

    def file(self, batch_id: str, idx: int) -> BatchFile | None:
        with self._transaction() as db:
            row = db.execute(
                "SELECT etag, blob FROM batch_files WHERE batch_id = ? AND idx = ?", (batch_id, idx)
            ).fetchone()
        if row is None:
            return None
        return BatchFile(batch_id, idx, row[0], StoredBlob.from_dict(json.loads(row[1])))

    def put_file(self, entry: BatchFile, *, now: float) -> bool:
        """Record the file and touch its batch; False when the batch was dropped meanwhile."""
        with self._transaction() as db:
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

    def delete_file(self, batch_id: str, idx: int) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM batch_files WHERE batch_id = ? AND idx = ?", (batch_id, idx)
            )
            return cursor.rowcount > 0
