"""Paths of the engine and the CLI no other test takes: cancelling a single upload and a file
being finished, token login, plain `nxup status`, bare `nxup` without a terminal, and one resume
of uploads to two servers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from conftest import (
    MIB,
    EventLog,
    assert_document_holds,
    info_of,
    kill_after_first_part,
    new_target_folder,
    nxup_env,
    poll,
    run_nxup,
    start_slow_upload,
    write,
)
from nuxeo.client import Nuxeo

from engine.events import FileCancelled, FileCompleted, FileFailed, Notice
from engine.lifecycle import UploadStatus
from engine.state import StateStore
from sandbox import NuxeoServer, Sandbox

MakeManager = Callable[..., tuple[Any, EventLog]]


def test_cancel_of_a_single_upload_leaves_nothing(make_manager: MakeManager, nuxeo: Nuxeo, s3_admin: Any,
                                                  target_folder: str, tmp_path: Path) -> None:
    manager, events = make_manager(bandwidth_limit=1 * MIB)
    path = tmp_path / "small-but-slow.bin"
    write(path, 4 * MIB)
    (file_id,) = manager.add([path], target_folder).file_ids
    poll(lambda: manager.snapshot(file_id).sent > 0, what="the upload under way")
    manager.cancel(file_id)
    events.wait_for(FileCancelled, file_id=file_id, timeout=10)
    assert manager.wait(timeout=10)
    record = manager.store.get(file_id)
    assert record.status is UploadStatus.CANCELLED and record.upload_id is None
    assert "Contents" not in s3_admin.list_objects_v2(Bucket=record.bucket, Prefix=record.object_key)
    assert list(nuxeo.documents.get_children(path=target_folder)) == []
    assert not events.of(FileFailed)


def test_cancel_once_every_byte_is_on_s3_finishes_the_file(make_manager: MakeManager, nuxeo: Nuxeo,
                                                           target_folder: str, tmp_path: Path) -> None:
    """Cancelled while Nuxeo registers the object: the file is finished (and the user told),
    rather than leaving an object on S3 that no document holds."""
    manager, events = make_manager()
    path = tmp_path / "late-cancel.bin"
    content = write(path, 6 * MIB)
    registering, cancelled = threading.Event(), threading.Event()
    complete = manager.nuxeo.complete

    def slow_complete(batch_id: str, **kwargs: Any) -> None:
        registering.set()
        cancelled.wait(10)
        complete(batch_id, **kwargs)

    manager.nuxeo.complete = slow_complete
    (file_id,) = manager.add([path], target_folder).file_ids
    assert registering.wait(30)
    manager.cancel(file_id)
    cancelled.set()
    assert manager.wait(timeout=30)
    (done,) = events.of(FileCompleted, file_id)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=content)
    assert manager.store.get(file_id).status is UploadStatus.DONE
    assert any("cancelled too late" in n.message for n in events.of(Notice, file_id))


def test_token_login_and_plain_status(sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tmp_path: Path) -> None:
    info = sandbox.info
    token = requests.get(
        f"{info.nuxeo_url}/authentication/token",
        params={"applicationName": "nxup-test", "deviceId": "ci", "permission": "rw"},
        auth=(info.user, info.password), timeout=10,
    ).text
    assert token
    env = nxup_env(info, tmp_path / "state")
    del env["NUXEO_PASSWORD"]
    env["NUXEO_TOKEN"] = token
    path = tmp_path / "by-token.txt"
    content = write(path, 777)
    result = run_nxup(["upload", str(path), "--to", target_folder, "--no-tui"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    (document,) = nuxeo.documents.get_children(path=target_folder)
    assert_document_holds(nuxeo, document.uid, name=path.name, content=content)

    status = run_nxup(["status"], env)
    assert status.returncode == 0
    assert str(path) in status.stdout and "done" in status.stdout
    for output in (result.stdout + result.stderr, status.stdout + status.stderr):
        assert token not in output and info.password not in output


def test_bare_nxup_without_a_terminal_prints_its_help(sandbox: Sandbox, tmp_path: Path) -> None:
    result = run_nxup([], nxup_env(sandbox.info, tmp_path / "state"))
    assert result.returncode == 0
    assert "Usage: nxup" in result.stdout and "upload" in result.stdout and "resume" in result.stdout


def test_one_resume_finishes_uploads_to_two_servers(sandbox: Sandbox, permissive_server: NuxeoServer,
                                                    make_nuxeo: Callable[..., Nuxeo], tmp_path: Path) -> None:
    """Killed uploads to two Nuxeo servers in one state database: `nxup resume` takes each to
    its own server."""
    state_dir = tmp_path / "state"
    servers = {"stock": sandbox.info, "permissive": info_of(sandbox, permissive_server)}
    expected: dict[str, tuple[str, bytes]] = {}
    for label, info in servers.items():
        folder = new_target_folder(make_nuxeo(info))
        path = tmp_path / f"{label}.bin"
        expected[label] = (folder, write(path, 12 * MIB))
        kill_after_first_part(start_slow_upload(info, state_dir, path, folder))
    with StateStore.open(state_dir) as store:
        assert len(store.unfinished()) == 2

    env = nxup_env(sandbox.info, state_dir)
    del env["NUXEO_URL"]  # every server the journal names (both share the sandbox's password)
    resumed = run_nxup(["resume", "--no-tui"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for label, info in servers.items():
        folder, content = expected[label]
        client = make_nuxeo(info)
        (document,) = client.documents.get_children(path=folder)
        assert_document_holds(client, document.uid, name=f"{label}.bin", content=content)
    with StateStore.open(state_dir) as store:
        assert store.unfinished() == []
