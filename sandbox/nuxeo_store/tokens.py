"""The `tokens` table: the authentication tokens the user acquired, one per application and
device."""

from __future__ import annotations

import uuid

from .records import now_iso
from .transactions import Transactions

SCHEMA = """
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
"""


class TokenTable:
    def __init__(self, transaction: Transactions) -> None:
        self._transaction = transaction

    def user_of(self, token: str) -> str | None:
        with self._transaction() as db:
            row = db.execute("SELECT user FROM tokens WHERE token = ?", (token,)).fetchone()
            return row[0] if row else None

    def acquire(self, user: str, app: str, device_id: str, permission: str, description: str | None) -> str:
        """The existing token for (user, app, device), else a new one (as Nuxeo does)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT token FROM tokens"
                " WHERE user = ? AND application_name = ? AND device_id = ?",
                (user, app, device_id),
            ).fetchone()
            if row:
                existing: str = row[0]
                return existing
            token = str(uuid.uuid4())
            db.execute(
                "INSERT INTO tokens (token, user, application_name, device_id, device_description,"
                " permission, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token, user, app, device_id, description, permission, now_iso()),
            )
            return token

    def revoke(self, user: str, app: str, device_id: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM tokens WHERE user = ? AND application_name = ? AND device_id = ?",
                (user, app, device_id),
            )
            return cursor.rowcount > 0
