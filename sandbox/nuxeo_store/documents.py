"""The `documents` table: the document tree, one row per document, its properties as JSON."""

from __future__ import annotations

import json
from typing import Any

from .records import DocRecord
from .transactions import Transactions

SCHEMA = """
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
"""

_COLUMNS = "uid, parent_uid, name, path, type, properties, change_token, modified"


class DocumentTable:
    def __init__(self, transaction: Transactions) -> None:
        self._transaction = transaction

    def by_uid(self, uid: str) -> DocRecord | None:
        with self._transaction() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM documents WHERE uid = ?", (uid,))
            return _doc(row.fetchone())

    def by_path(self, path: str) -> DocRecord | None:
        with self._transaction() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM documents WHERE path = ?", (path,))
            return _doc(row.fetchone())

    def children(self, parent_uid: str) -> list[DocRecord]:
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE parent_uid = ? ORDER BY rowid",
                (parent_uid,),
            )
            return [doc for doc in map(_doc, rows.fetchall()) if doc is not None]

    def all(self) -> list[DocRecord]:
        with self._transaction() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM documents ORDER BY rowid")
            return [doc for doc in map(_doc, rows.fetchall()) if doc is not None]

    def rename(self, doc: DocRecord, name: str) -> None:
        """Rename a document in its folder (its descendants' paths follow)."""
        path = f"{doc.path.rsplit('/', 1)[0]}/{name}"
        with self._transaction() as db:
            db.execute(
                "UPDATE documents SET path = ? || substr(path, ?) WHERE path LIKE ? ESCAPE '\\'",
                (path, len(doc.path) + 1, _like_prefix(doc.path) + "/%"),
            )
            db.execute("UPDATE documents SET name = ?, path = ? WHERE uid = ?", (name, path, doc.uid))

    def save(self, doc: DocRecord) -> None:
        with self._transaction() as db:
            db.execute(
                # An upsert, not INSERT OR REPLACE: a replace deletes the row first, and
                # the cascade would take the children with it.
                f"INSERT INTO documents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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

    def delete(self, uid: str) -> None:
        # Children go too, through ON DELETE CASCADE.
        with self._transaction() as db:
            db.execute("DELETE FROM documents WHERE uid = ?", (uid,))


def _doc(row: tuple[Any, ...] | None) -> DocRecord | None:
    if row is None:
        return None
    uid, parent_uid, name, path, doc_type, props, token, modified = row
    return DocRecord(uid, parent_uid, name, path, doc_type, json.loads(props), token, modified)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
