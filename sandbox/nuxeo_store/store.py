"""The SQLite file behind the sandbox Nuxeo server, and its tables."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from . import batches, documents, idempotency_keys, tokens
from .batches import BatchTable
from .documents import DocumentTable
from .idempotency_keys import IdempotencyKeyTable
from .tokens import TokenTable


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
        for table in (documents, batches, tokens, idempotency_keys):
            self._conn.executescript(table.SCHEMA)
        batches.upgrade(self._conn)
        self.documents = DocumentTable(self.transaction)
        self.batches = BatchTable(self.transaction)
        self.tokens = TokenTable(self.transaction)
        self.idempotency_keys = IdempotencyKeyTable(self.transaction)
        self.idempotency_keys.release_running()

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
