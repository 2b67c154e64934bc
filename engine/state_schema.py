"""The state database's tables, and the steps from each older version to the current one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import StateError

SCHEMA_VERSION = 5

_SCHEMA = (
    # AUTOINCREMENT so that an id is never reused: a worker still holding the id of a deleted
    # upload must not write parts into a newer one.
    """
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL,
        size INTEGER,
        mtime_ns INTEGER,
        server_url TEXT NOT NULL,
        user TEXT,
        target TEXT NOT NULL,
        doc_name TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('queued', 'uploading', 'paused', 'done', 'failed', 'cancelled', 'skipped')),
        batch_id TEXT,
        file_idx INTEGER NOT NULL DEFAULT 0,
        handler TEXT,
        bucket TEXT,
        object_key TEXT,
        upload_id TEXT,
        part_size INTEGER,
        part_count INTEGER,
        checksum_algorithm TEXT,
        etag TEXT,
        stage TEXT NOT NULL DEFAULT 'new',
        document_key TEXT,
        doc_uid TEXT,
        existing TEXT,
        action TEXT,
        version_of TEXT,
        doc_revision TEXT,
        note TEXT,
        owner_pid INTEGER,
        owner_started INTEGER,
        error TEXT,
        created_at REAL,
        updated_at REAL,
        finished_at REAL,
        transfer_settings TEXT
    )
    """,
    """
    CREATE TABLE parts (
        upload INTEGER NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
        number INTEGER NOT NULL CHECK (number >= 1),
        etag TEXT NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0),
        checksum TEXT,
        saved_at REAL,
        PRIMARY KEY (upload, number)
    )
    """,
    "CREATE INDEX uploads_status ON uploads(status)",
    # Adding a file looks for an unfinished upload of the same path: without this index,
    # queueing n files costs n full scans.
    "CREATE INDEX uploads_path ON uploads(path)",
    # A batch is dropped once no unfinished upload uses it: asked as each file of it ends.
    "CREATE INDEX uploads_batch ON uploads(batch_id)",
)


# Version 1 kept a `completed` flag for Nuxeo's /complete (the stage says it, and more), and
# knew neither owners nor when parts were saved.
_FROM_VERSION_1 = (
    "ALTER TABLE uploads ADD COLUMN stage TEXT NOT NULL DEFAULT 'new'",
    "ALTER TABLE uploads ADD COLUMN document_key TEXT",
    "ALTER TABLE uploads ADD COLUMN owner_pid INTEGER",
    "ALTER TABLE uploads ADD COLUMN owner_started INTEGER",
    "ALTER TABLE parts ADD COLUMN saved_at REAL",
    """
    UPDATE uploads SET stage = CASE
        WHEN doc_uid IS NOT NULL THEN 'documented'
        WHEN completed = 1 THEN 'registered'
        WHEN etag IS NOT NULL THEN 'on_s3'
        WHEN upload_id IS NOT NULL THEN 'sending'
        WHEN object_key IS NOT NULL THEN 'batched'
        ELSE 'new' END
    """,
    "ALTER TABLE uploads DROP COLUMN completed",
)

# Version 2 gave every upload a batch of its own (its file was always index 0 of it).
_FROM_VERSION_2 = (
    "ALTER TABLE uploads ADD COLUMN file_idx INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX uploads_batch ON uploads(batch_id)",
)

# Version 3 did not keep the settings an upload was added with: its uploads resume with the
# command's (or the defaults).
_FROM_VERSION_3 = ("ALTER TABLE uploads ADD COLUMN transfer_settings TEXT",)

# Version 4 knew nothing of names taken in the target folder, and had no `skipped` status. The
# status's CHECK only widens, which leaves every row valid: SQLite's documented way for such a
# change is to edit the table's definition in place (a rebuild would cascade-delete the parts).
_FROM_VERSION_4 = (
    "ALTER TABLE uploads ADD COLUMN existing TEXT",
    "ALTER TABLE uploads ADD COLUMN action TEXT",
    "ALTER TABLE uploads ADD COLUMN version_of TEXT",
    "ALTER TABLE uploads ADD COLUMN doc_revision TEXT",
    "ALTER TABLE uploads ADD COLUMN note TEXT",
    "PRAGMA writable_schema = ON",
    "UPDATE sqlite_master SET sql = replace(sql, '''cancelled'')', '''cancelled'', ''skipped'')')"
    " WHERE type = 'table' AND name = 'uploads'",
    "PRAGMA writable_schema = OFF",
)

# The steps from each older version, applied in turn.
_UPGRADES = {1: _FROM_VERSION_1, 2: _FROM_VERSION_2, 3: _FROM_VERSION_3, 4: _FROM_VERSION_4}


def migrate(connection: sqlite3.Connection, path: Path, *, elsewhere: str) -> None:
    """Create the schema, or bring an older one up to date; `elsewhere` says how to use
    another database when this one is newer than this nxup."""
    # BEGIN IMMEDIATE takes the write lock before reading the version, so two processes opening
    # a new database at once cannot both create the schema.
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version < SCHEMA_VERSION:
            schema_version = connection.execute("PRAGMA schema_version").fetchone()[0]
            for step in range(version, SCHEMA_VERSION):
                for statement in _UPGRADES[step]:
                    connection.execute(statement)
            # Every connection reads the edited table definitions again (see `_FROM_VERSION_4`).
            connection.execute(f"PRAGMA schema_version = {schema_version + 100}")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise StateError(
                f"{path} has schema version {version}, newer than this nxup understands "
                f"({SCHEMA_VERSION}); upgrade nxup or {elsewhere}"
            )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


__all__ = ["SCHEMA_VERSION", "migrate"]
