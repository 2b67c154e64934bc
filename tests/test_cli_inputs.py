"""The headless `nxup` command as a user meets it: usage errors with exit code 2, the `--json`
stream, and a state directory that keeps no secret. Bad inputs, one row each, are in
test_bad_inputs.py."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MIB, assert_document_holds, nxup_env, run_nxup
from nuxeo.client import Nuxeo

from sandbox import Sandbox


@pytest.mark.parametrize(
    ("args", "drop_password", "message"),
    [
        (["upload", "x.txt", "--no-tui"], False, "--to"),
        (["upload", "x.txt", "--to", "/default-domain", "--password", "hunter2"], False, "--password"),
        (["upload", "x.txt", "--to", "/default-domain", "--no-tui"], True, "NUXEO_PASSWORD"),
        (["upload", "x.txt", "--to", "/default-domain", "--part-size", "1MiB"], False, "--part-size"),
    ],
)
def test_usage_errors_exit_2(sandbox: Sandbox, tmp_path: Path, args: list[str], drop_password: bool,
                             message: str) -> None:
    env = nxup_env(sandbox.info, tmp_path / "state")
    if drop_password:
        del env["NUXEO_PASSWORD"]
    result = run_nxup(args, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


@pytest.fixture
def json_run(sandbox: Sandbox, target_folder: str, tmp_path: Path,
             minted: list[Any]) -> Iterator[tuple[Any, dict[str, Path], Path]]:
    files = {name: tmp_path / name for name in ("one.txt", "two.bin", "three.iso")}
    files["one.txt"].write_bytes(b"1" * 100)
    files["two.bin"].write_bytes(os.urandom(MIB))
    files["three.iso"].write_bytes(os.urandom(11 * MIB))
    state_dir = tmp_path / "state"
    result = run_nxup(
        ["upload", *map(str, files.values()), "--to", target_folder, "--json",
         "--part-size", "5MiB", "--single-limit", "5MiB"],
        nxup_env(sandbox.info, state_dir),
    )
    yield result, files, state_dir


def test_json_lines_in_order_and_summary_last(json_run: tuple[Any, dict[str, Path], Path], nuxeo: Nuxeo) -> None:
    result, files, _ = json_run
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    assert events[-1]["event"] == "summary"
    assert events[-1]["done"] == 3 and events[-1]["failed"] == 0
    assert all(e["event"] != "summary" for e in events[:-1])
    for path in files.values():
        ids = {e["file_id"] for e in events if e.get("path") == str(path)}
        (file_id,) = ids
        lifecycle = [e["event"] for e in events if e.get("file_id") == file_id
                     and e["event"] in ("queued", "started", "completed")]
        assert lifecycle == ["queued", "started", "completed"], lifecycle
        (completed,) = [e for e in events if e["event"] == "completed" and e["file_id"] == file_id]
        assert_document_holds(nuxeo, completed["document_uid"], name=path.name, content=path.read_bytes())
    started = {e["path"]: e for e in events if e["event"] == "started"}
    assert started[str(files["three.iso"])]["multipart"] and started[str(files["three.iso"])]["part_count"] == 3
    assert not started[str(files["one.txt"])]["multipart"]


def test_state_dir_keeps_no_secret(json_run: tuple[Any, dict[str, Path], Path], sandbox: Sandbox,
                                   minted: list[Any]) -> None:
    result, _, state_dir = json_run
    assert result.returncode == 0
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    database = state_dir / "state.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for side in state_dir.iterdir():
        assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side
    with sqlite3.connect(database) as connection:
        columns = {row[1] for table in ("uploads", "parts")
                   for row in connection.execute(f"PRAGMA table_info({table})")}
    assert not [c for c in columns if re.search(r"secret|token|password|credential|access", c)], columns
    stored = b"".join(p.read_bytes() for p in state_dir.iterdir())
    assert sandbox.info.password.encode() not in stored
    assert sandbox.info.s3_secret_access_key.encode() not in stored
    # The very credentials the batches of this run were given.
    assert minted, "the run minted no batch credentials"
    for credentials in minted:
        for secret in (credentials.secret_access_key, credentials.session_token, credentials.access_key_id):
            assert secret.encode() not in stored
    # And anything shaped like them:
    # The batches' STS credentials: session tokens are JWTs ("eyJ..."), access key ids start
    # with "ASIA" (not secret, but stored credentials would sit next to them), secret keys are
    # 40-odd characters of base64 (split at "/" so that file paths do not match).
    assert b"eyJ" not in stored
    assert b"ASIA" not in stored
    assert not re.search(rb"(?<![\w/+-])[A-Za-z0-9+]{38,}={0,2}", stored)
