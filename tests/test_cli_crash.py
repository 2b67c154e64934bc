"""`nxup upload` killed with SIGKILL at several moments, then `nxup resume` finishes the file:
same bytes on S3, the document holds the blob, no multipart upload left, and the parts S3
already held are not sent again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    JsonLines,
    assert_document_holds,
    assert_object_is,
    info_of,
    multipart_uploads,
    nxup_env,
    run_nxup,
    start_nxup,
)
from nuxeo.client import Nuxeo

from engine.lifecycle import UploadStatus
from engine.state import StateStore
from sandbox import AccessPolicy, NuxeoServer, Sandbox, SandboxInfo

PARTS = ["--part-size", "5MiB", "--single-limit", "5MiB"]
SLOW = ["--workers", "1", *PARTS, "--limit", "8MiB/s"]


def after_first_part(event: dict[str, Any]) -> bool:
    return event["event"] == "part_completed"


def mid_first_part(event: dict[str, Any]) -> bool:
    return (
        event["event"] == "progress"
        and event["parts_done"] == 0
        and event["sent"] > MIB
    )


def before_any_part(event: dict[str, Any]) -> bool:
    return event["event"] == "queued"


def start_slow_upload(
    path: Path, target: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], JsonLines]:
    """A real `nxup upload` child, slow enough to be stopped mid-upload, with its JSON events."""
    output = start_nxup(["upload", str(path), "--to", target, "--no-tui", *SLOW], env)
    return output.process, output


@pytest.fixture
def server_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    """Every crash runs with stock batch credentials and with permissive ones."""
    return info_of(sandbox, policy_server)


KILL_POINTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "after-first-part": after_first_part,
    "mid-first-part": mid_first_part,
    "before-any-part": before_any_part,
}


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_killed_upload_is_finished_by_resume(
    server_info: SandboxInfo,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
    kill_point: str,
) -> None:
    info = server_info
    state_dir = tmp_path / "state"
    env = nxup_env(info, state_dir)
    path = tmp_path / "footage.mov"
    content = os.urandom(15 * MIB + 1234)
    path.write_bytes(content)

    child, output = start_slow_upload(path, target_folder, env)
    try:
        output.wait_for(KILL_POINTS[kill_point])
    finally:
        child.send_signal(signal.SIGKILL)
    assert output.finish() == -signal.SIGKILL

    with StateStore.open(state_dir) as store:
        (record,) = store.unfinished()
        journaled = set(store.parts(record.id))
    status = run_nxup(["status", "--json"], env)
    (row,) = [json.loads(line) for line in status.stdout.splitlines() if line]
    assert row["id"] == record.id and row["status"] in {"queued", "uploading", "paused"}

    listed: set[int] = set()
    if kill_point != "before-any-part":
        assert record.upload_id and record.object_key, (
            "the multipart upload must be recorded before its parts"
        )
    if record.upload_id:
        answer = s3_admin.list_parts(
            Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id
        )
        listed = {part["PartNumber"] for part in answer.get("Parts", [])}
    assert journaled <= listed, "the journal holds only parts S3 acknowledged"
    if kill_point == "after-first-part":
        assert 1 in journaled
    # What must not be sent again: the journal's parts, and where the credentials may list
    # them, every part S3 holds (a part acknowledged as the process died is then kept too).
    held = listed if info.policy == AccessPolicy.PERMISSIVE.value else journaled

    resumed = run_nxup(["resume", "--no-tui", "--json", *PARTS], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    output_events = [line for line in resumed.stdout.splitlines() if line]
    events = [json.loads(line) for line in output_events]
    (started,) = [e for e in events if e["event"] == "started"]
    assert started["parts_already_done"] == len(held)
    assert started["parts_already_done"] >= len(journaled)
    sent_again = {e["number"] for e in events if e["event"] == "part_completed"}
    assert sent_again.isdisjoint(held), f"parts {sent_again & held} were sent again"
    assert sent_again | held == {1, 2, 3, 4}
    (completed,) = [e for e in events if e["event"] == "completed"]

    with StateStore.open(state_dir) as store:
        final = store.get(record.id)
    assert final.status is UploadStatus.DONE
    assert_object_is(
        s3_admin, bucket=final.bucket, key=final.object_key, content=content
    )
    assert_document_holds(
        nuxeo, completed["document_uid"], name=path.name, content=content
    )
    assert (
        multipart_uploads(s3_admin, bucket=info.bucket, prefix=final.object_key) == []
    )
    if record.object_key:
        assert (
            multipart_uploads(s3_admin, bucket=info.bucket, prefix=record.object_key)
            == []
        )
    assert [
        child.title for child in nuxeo.documents.get_children(path=target_folder)
    ] == [path.name]


def test_sigterm_pauses_cleanly_and_resume_finishes(
    server_info: SandboxInfo,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    env = nxup_env(server_info, state_dir)
    path = tmp_path / "interrupted.bin"
    content = os.urandom(12 * MIB)
    path.write_bytes(content)
    child, output = start_slow_upload(path, target_folder, env)
    try:
        output.wait_for(after_first_part)
        child.send_signal(signal.SIGTERM)
        assert output.finish(timeout=15) == 1
    finally:
        if child.poll() is None:
            child.kill()
    stderr = output.stderr
    assert "Traceback" not in stderr and "nxup resume" in stderr
    events = output.events
    assert events[-1]["event"] == "summary" and events[-1]["paused"] == 1
    with StateStore.open(state_dir) as store:
        (record,) = store.unfinished()
        assert record.status is UploadStatus.PAUSED
        recorded = set(store.parts(record.id))
    listed = s3_admin.list_parts(
        Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id
    )
    assert {
        p["PartNumber"] for p in listed.get("Parts", [])
    } == recorded and 1 in recorded

    resumed = run_nxup(["resume", "--no-tui", "--json"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resumed_events = [json.loads(line) for line in resumed.stdout.splitlines()]
    (started,) = [e for e in resumed_events if e["event"] == "started"]
    assert started["parts_already_done"] == len(recorded)
    (completed,) = [e for e in resumed_events if e["event"] == "completed"]
    assert_object_is(
        s3_admin, bucket=record.bucket, key=record.object_key, content=content
    )
    assert_document_holds(
        nuxeo, completed["document_uid"], name=path.name, content=content
    )
    assert (
        multipart_uploads(s3_admin, bucket=record.bucket, prefix=record.object_key)
        == []
    )
