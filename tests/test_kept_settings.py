"""An upload keeps the transfer settings it was added with: `nxup resume` goes on with its
workers, part size, checksum and bandwidth cap unless they are given again; the journal's
schema 3 gains the column that keeps them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from conftest import MIB, assert_document_holds, assert_object_is, multipart_uploads, nxup_env, run_nxup, start_nxup
from nuxeo.client import Nuxeo

from cli.kept_settings import kept_settings
from engine.lifecycle import UploadStatus
from engine.records import UploadRecord
from engine.s3 import ChecksumAlgorithm
from engine.settings import TransferSettings
from engine.state import DB_FILENAME, StateStore
from engine.state_schema import SCHEMA_VERSION
from sandbox import SandboxInfo

CHOSEN = TransferSettings(workers=3, part_size=6 * MIB, single_upload_limit=6 * MIB,
                          checksum=ChecksumAlgorithm.SHA256, verify_etag=True, bandwidth_limit=4 * MIB)


def record(record_id: int, settings: TransferSettings | None) -> UploadRecord:
    return UploadRecord(id=record_id, path=f"/f{record_id}", server_url="http://n", target="/t",
                        transfer_settings=settings.journal_text() if settings else None)


def test_journal_text_round_trips_what_a_person_chose() -> None:
    text = CHOSEN.journal_text()
    assert TransferSettings().with_journal(text) == CHOSEN
    assert TransferSettings(workers=5).with_journal(TransferSettings(bandwidth_limit=None).journal_text()) == \
        TransferSettings()


def test_journal_text_this_version_cannot_read_changes_nothing() -> None:
    base = TransferSettings(workers=5)
    for text in (None, "", "not json", "[1]", '{"workers": "many", "checksum": "MD4", "bandwidth_limit": -1}',
                 '{"workers": true, "checksum": ["CRC32"], "verify_etag": 1}'):
        assert base.with_journal(text) == base, text
    assert base.with_journal('{"part_size": 6291456, "future": 1}').part_size == 6 * MIB


def test_resume_takes_the_newest_uploads_settings_but_the_ones_given_again() -> None:
    command = TransferSettings(workers=2)
    settings, notices = kept_settings(command, [record(1, TransferSettings()), record(2, CHOSEN)], given={"workers"})
    assert settings == TransferSettings(workers=2, part_size=6 * MIB, single_upload_limit=6 * MIB,
                                        checksum=ChecksumAlgorithm.SHA256, verify_etag=True,
                                        bandwidth_limit=4 * MIB)
    assert "--limit 4.0MiB/s" in notices[0] and "--checksum sha256" in notices[0] and "--verify" in notices[0]
    assert "--workers" not in notices[0]
    assert "different settings" in notices[1]


def test_uploads_from_before_kept_settings_resume_with_the_command_s() -> None:
    command = TransferSettings(workers=2)
    assert kept_settings(command, [record(1, None)], given=set()) == (command, [])
    assert kept_settings(command, [record(1, command)], given=set()) == (command, [])


# The journal as version 3 made it (the columns and indexes a v3 nxup created).
VERSION_3 = (
    """CREATE TABLE uploads (
        id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
        server_url TEXT NOT NULL, user TEXT, target TEXT NOT NULL, doc_name TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('queued', 'uploading', 'paused', 'done', 'failed', 'cancelled')),
        batch_id TEXT, file_idx INTEGER NOT NULL DEFAULT 0, handler TEXT, bucket TEXT, object_key TEXT,
        upload_id TEXT, part_size INTEGER, part_count INTEGER, checksum_algorithm TEXT, etag TEXT,
        stage TEXT NOT NULL DEFAULT 'new', document_key TEXT, doc_uid TEXT, owner_pid INTEGER,
        owner_started INTEGER, error TEXT, created_at REAL, updated_at REAL, finished_at REAL)""",
    """CREATE TABLE parts (
        upload INTEGER NOT NULL REFERENCES uploads(id) ON DELETE CASCADE, number INTEGER NOT NULL,
        etag TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT, saved_at REAL, PRIMARY KEY (upload, number))""",
    "CREATE INDEX uploads_status ON uploads(status)",
    "CREATE INDEX uploads_path ON uploads(path)",
    "CREATE INDEX uploads_batch ON uploads(batch_id)",
    "INSERT INTO uploads (path, server_url, target, status, stage) VALUES ('/f', 'http://n', '/t', 'paused', 'new')",
    "PRAGMA user_version = 3",
)


def test_a_version_3_journal_gains_the_settings_column(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    for statement in VERSION_3:
        conn.execute(statement)
    conn.commit()
    conn.close()
    with StateStore.open(tmp_path) as store:
        (unfinished,) = store.unfinished()
        assert unfinished.path == "/f" and unfinished.transfer_settings is None
        store.update(unfinished.id, transfer_settings=CHOSEN.journal_text())
        assert store.get(unfinished.id).transfer_settings == CHOSEN.journal_text()
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_resume_goes_on_with_the_settings_the_upload_was_added_with(
    server_info: SandboxInfo, nuxeo: Nuxeo, s3_admin: Any, target_folder: str, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    env = nxup_env(server_info, state_dir)
    path = tmp_path / "kept.bin"
    content = os.urandom(11 * MIB)
    path.write_bytes(content)
    chosen = ["--workers", "3", "--part-size", "5MiB", "--single-limit", "5MiB", "--checksum", "sha256",
              "--limit", "4MiB/s"]
    output = start_nxup(["upload", str(path), "--to", target_folder, "--no-tui", *chosen], env)
    try:
        output.wait_for(lambda event: event["event"] == "part_completed")
    finally:
        output.process.send_signal(signal.SIGINT)
    assert output.finish(timeout=30) == 1

    with StateStore.open(state_dir) as store:
        (paused,) = store.unfinished()
    kept = json.loads(paused.transfer_settings)
    assert kept == {"workers": 3, "part_size": 5 * MIB, "single_upload_limit": 5 * MIB, "checksum": "SHA256",
                    "verify_etag": False, "bandwidth_limit": 4 * MIB}

    # Nothing given again but --workers: the rest is the upload's own.
    resumed = run_nxup(["resume", "--no-tui", "--json", "--workers", "2"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (notice,) = [line for line in resumed.stderr.splitlines() if "settings the uploads were added with" in line]
    for setting in ("--part-size 5.0MiB", "--single-limit 5.0MiB", "--checksum sha256", "--limit 4.0MiB/s"):
        assert setting in notice
    assert "--workers" not in notice
    events = [json.loads(line) for line in resumed.stdout.splitlines() if line]
    (started,) = [e for e in events if e["event"] == "started"]
    assert started["part_size"] == 5 * MIB and started["part_count"] == 3 and started["parts_already_done"] >= 1
    (completed,) = [e for e in events if e["event"] == "completed"]
    with StateStore.open(state_dir) as store:
        final = store.get(paused.id)
    assert final.status is UploadStatus.DONE and final.checksum_algorithm == "SHA256"
    assert_object_is(s3_admin, bucket=final.bucket, key=final.object_key, content=content)
    assert_document_holds(nuxeo, completed["document_uid"], name=path.name, content=content)
    assert multipart_uploads(s3_admin, bucket=final.bucket, prefix=final.object_key) == []
