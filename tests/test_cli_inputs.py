"""The headless `nxup` command as a user meets it: bad inputs named one per line while the
others land, connection and usage errors as one line with the right exit code, the `--json`
stream, and a state directory that keeps no secret."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MIB, assert_document_holds, nxup_env, run_nxup
from nuxeo.client import Nuxeo

from sandbox import Sandbox
from sandbox.s3 import free_port


def make_inputs(root: Path) -> dict[str, Path]:
    """A folder with good files and every kind of path nxup must refuse without stopping."""
    folder = root / "inbox"
    folder.mkdir()
    (folder / "good.txt").write_bytes(b"good content\n")
    (folder / "empty.txt").write_bytes(b"")
    os.mkfifo(folder / "pipe")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "sock"))
    listener.close()  # the socket file stays
    (folder / "loop").symlink_to(folder / "loop")
    (root / "elsewhere").mkdir()
    (folder / "linked-dir").symlink_to(root / "elsewhere")
    paths = {
        "folder": folder,
        "fifo": folder / "pipe",
        "socket": folder / "sock",
        "loop": folder / "loop",
        "linked-dir": folder / "linked-dir",
    }
    if os.geteuid() != 0:  # root reads every file
        unreadable = folder / "secret.txt"
        unreadable.write_bytes(b"x")
        unreadable.chmod(0)
        paths["unreadable"] = unreadable
    return paths


def failed_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("failed")]


def test_bad_inputs_are_named_and_the_others_land(sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str,
                                                  tmp_path: Path) -> None:
    paths = make_inputs(tmp_path)
    missing = tmp_path / "missing.txt"
    top_loop = tmp_path / "top-loop"
    top_loop.symlink_to(top_loop)
    lone = tmp_path / "lone.txt"
    lone.write_bytes(b"alone")
    began = time.monotonic()
    result = run_nxup(
        ["upload", str(paths["folder"]), str(missing), "/dev/null", str(top_loop), str(lone),
         "--to", target_folder, "--no-tui"],
        nxup_env(sandbox.info, tmp_path / "state"), timeout=60,
    )
    assert time.monotonic() - began < 30, "a FIFO or a device made nxup hang"
    assert result.returncode == 1, result.stdout + result.stderr
    failures = failed_lines(result.stdout)
    expected = {
        str(missing): "no such file",
        "/dev/null": "device",
        str(top_loop): "symlink loop",
        str(paths["fifo"]): "FIFO",
        str(paths["socket"]): "socket",
        str(paths["loop"]): "symlink loop",
        str(paths["linked-dir"]): "symbolic link to a folder",
    }
    if "unreadable" in paths:
        expected[str(paths["unreadable"])] = "permission denied"
    assert len(failures) == len(expected), failures
    for path, reason in expected.items():
        (line,) = [f for f in failures if f"{path}: " in f]
        assert reason in line, line
    assert "3 uploaded" in result.stdout and f"{len(expected)} failed" in result.stdout

    landed = {doc.title: doc for doc in nuxeo.documents.get_children(path=f"{target_folder}/inbox")}
    assert set(landed) == {"good.txt", "empty.txt"}
    assert_document_holds(nuxeo, landed["good.txt"].uid, name="good.txt", content=b"good content\n")
    assert_document_holds(nuxeo, landed["empty.txt"].uid, name="empty.txt", content=b"")
    (alone,) = [d for d in nuxeo.documents.get_children(path=target_folder) if d.title == "lone.txt"]
    assert_document_holds(nuxeo, alone.uid, name="lone.txt", content=b"alone")


def error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_missing_target_folder_is_one_error(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    result = run_nxup(["upload", str(path), "--to", "/default-domain/workspaces/nope", "--no-tui"],
                      nxup_env(sandbox.info, tmp_path / "state"))
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "/default-domain/workspaces/nope" in line and "does not exist" in line


def test_wrong_password_is_one_line_with_401(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    result = run_nxup(["upload", str(path), "--to", "/default-domain/workspaces", "--no-tui"],
                      nxup_env(sandbox.info, tmp_path / "state", password="wrong"))
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "401" in line


def test_unreachable_server_is_one_line_quickly(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    env = nxup_env(sandbox.info, tmp_path / "state")
    env["NUXEO_URL"] = f"http://127.0.0.1:{free_port()}/nuxeo"
    began = time.monotonic()
    result = run_nxup(["upload", str(path), "--to", "/default-domain/workspaces", "--no-tui"], env, timeout=30)
    assert time.monotonic() - began < 10
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "cannot reach" in line


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
def minted(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every set of temporary credentials the sandbox hands to a batch while the test runs."""
    issued: list[Any] = []
    mint = sandbox.s3.mint_credentials

    def recording(**kwargs: Any) -> Any:
        credentials = mint(**kwargs)
        issued.append(credentials)
        return credentials

    monkeypatch.setattr(sandbox.s3, "mint_credentials", recording)
    return issued


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
