"""The `idempotent_requests` table: each idempotency key, running (no status yet) or with the
answer kept for replay until it expires."""

from __future__ import annotations

import json

from .records import Claim, StoredAnswer
from .transactions import Transactions

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotent_requests (
    key TEXT PRIMARY KEY,
    status INTEGER,
    headers TEXT,
    body BLOB,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotent_requests_expires ON idempotent_requests(expires);
"""


class IdempotencyKeyTable:
    def __init__(self, transaction: Transactions) -> None:
        self._transaction = transaction

    def claim(self, key: str, *, now: float, ttl_s: float) -> Claim | StoredAnswer:
        """Claim `key` for a new request, or say why not: one is running, or here is its answer."""
        with self._transaction() as db:
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

    def keep_answer(self, key: str, answer: StoredAnswer, *, expires: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE idempotent_requests SET status = ?, headers = ?, body = ?, expires = ?"
                " WHERE key = ?",
                (answer.status, json.dumps(answer.headers), answer.body, expires, key),
            )

    def release(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM idempotent_requests WHERE key = ?", (key,))

    def release_running(self) -> None:
        """Nothing runs across a restart: a key still marked running would answer 409 forever."""
        with self._transaction() as db:
            db.execute("DELETE FROM idempotent_requests WHERE status IS NULL")
