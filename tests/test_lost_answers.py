"""Answers lost on the way back, through the fault proxy: S3's answer to starting a multipart
upload (S3 may have started one), a Nuxeo answer cut in the middle of its body, a folder
creation that reaches the server after the nxup that sent it died, and a join that never
reached S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import MIB, NXUP, Proxies, multipart_uploads, nxup_env, poll, run_nxup
from faultproxy import Fault, FaultKind, ScriptedFaults, no_faults
from nuxeo.client import Nuxeo

from engine.state import StateStore


@pytest.mark.parametrize("kind", [FaultKind.LOSE_REPLY, FaultKind.RESET_RESPONSE])
def test_lost_answer_to_starting_a_multipart_upload_is_accounted_for(
    proxies: Proxies,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
    kind: FaultKind,
) -> None:
    """S3 started an upload but its answer was lost: nxup starts another (never blindly through
    botocore's retries), and the first is aborted where the batch credentials may list and abort
    uploads; a stock server's may not, so it is left to the server's clean-up and the user told."""
    proxies.s3.policy = ScriptedFaults(
        [(lambda h: h.method == "POST" and h.query.startswith("uploads"), Fault(kind))]
    )
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(12 * MIB))
    env = nxup_env(proxies.info, tmp_path / "state")
    result = run_nxup(
        [
            "upload",
            str(path),
            "--to",
            target_folder,
            "--no-tui",
            "--json",
            "--part-size",
            "5MiB",
            "--single-limit",
            "5MiB",
        ],
        env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert proxies.s3.counts[kind] == 1
    with StateStore.open(tmp_path / "state") as store:
        (record,) = store.recent()
    left = multipart_uploads(
        s3_admin, bucket=record.bucket or "", prefix=record.object_key or ""
    )
    for upload in left:  # removed with the admin keys, so other tests start clean
        s3_admin.abort_multipart_upload(
            Bucket=record.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    events = [json.loads(line) for line in result.stdout.splitlines()]
    notices = [e["message"] for e in events if e["event"] == "notice"]
    # The sandbox plays a stock server: the first upload cannot be listed nor aborted.
    assert len(left) == 1 and left[0]["UploadId"] != record.upload_id
    assert any(
        "answer to starting its multipart upload was lost" in n and "clean-up" in n
        for n in notices
    ), notices


@pytest.mark.parametrize(
    "request_name,matches",
    [
        (
            "creating an upload batch",
            lambda h: h.method == "POST" and "/upload/new/" in h.path,
        ),
        (
            "looking up the target folder",
            lambda h: h.method == "GET" and "/path/" in h.path,
        ),
    ],
)
def test_nuxeo_answer_cut_mid_body_is_retried(
    proxies: Proxies,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    request_name: str,
    matches: Any,
) -> None:
    proxies.nuxeo.policy = ScriptedFaults([(matches, Fault(FaultKind.RESET_RESPONSE))])
    path = tmp_path / "small.bin"
    path.write_bytes(os.urandom(1000))
    env = nxup_env(proxies.info, tmp_path / "state")
    result = run_nxup(
        ["upload", str(path), "--to", target_folder, "--no-tui", "--json"], env
    )
    assert proxies.nuxeo.counts[FaultKind.RESET_RESPONSE] == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    failed = [e["reason"] for e in events if e["event"] == "failed"]
    assert result.returncode == 0, failed or result.stderr


def test_folder_creation_reaching_the_server_after_a_kill_makes_no_second_folder(
    proxies: Proxies,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
) -> None:
    """A folder creation sent just before nxup died reaches the server late (it was on its way,
    or the server was slow): `nxup resume` looks the folder up, finds none, creates it, and the
    late creation makes a second one, `photos.<timestamp>`; whichever comes second, the tree has
    two folders for one local folder, and the documents may be in the renamed one."""
    delay = 2.0
    def creates_folder(h):
        return h.method == "POST" and "/api/v1/path/" in h.path
    proxies.nuxeo.policy = ScriptedFaults(
        [(creates_folder, Fault(FaultKind.LATENCY, seconds=delay))]
    )
    root = tmp_path / "photos"
    root.mkdir()
    (root / "a.bin").write_bytes(os.urandom(1000))
    env = nxup_env(proxies.info, tmp_path / "state")
    child = subprocess.Popen(
        [NXUP, "upload", str(root), "--to", target_folder, "--no-tui", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    poll(
        lambda: proxies.nuxeo.counts[FaultKind.LATENCY] == 1,
        what="the folder creation on its way",
    )
    child.send_signal(signal.SIGKILL)
    child.wait()
    resumed = run_nxup(["resume", "--no-tui", "--json"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    poll(
        lambda: any(a.fault is FaultKind.LATENCY for a in proxies.nuxeo.answered),
        timeout=delay + 30,
        what="the late folder creation answered by the server",
    )
    folders = [
        str(c.path)
        for c in nuxeo.documents.get_children(path=target_folder)
        if c.title == "photos"
    ]
    assert folders == [f"{target_folder}/photos"], folders


def test_resume_at_joining_joins_the_journaled_parts(
    proxies: Proxies, s3_admin: Any, nuxeo: Nuxeo, target_folder: str, tmp_path: Path
) -> None:
    """A file journaled at the join whose CompleteMultipartUpload never reached S3 (every try
    answered 503 here; a kill between journaling the intent and S3's answer does the same):
    `nxup resume` joins the journal's parts, sends none again and leaves no upload behind."""
    def joins(h):
        return h.method == "POST" and "uploadId=" in h.query
    proxies.s3.policy = ScriptedFaults([(joins, Fault(FaultKind.ERROR_503))] * 10)
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(12 * MIB))
    env = nxup_env(proxies.info, tmp_path / "state")
    args = ["--no-tui", "--json", "--part-size", "5MiB", "--single-limit", "5MiB"]
    first = run_nxup(["upload", str(path), "--to", target_folder, *args], env)
    assert first.returncode == 1
    with StateStore.open(tmp_path / "state") as store:
        (record,) = store.recent()
        assert record.stage.value == "joining" and set(store.parts(record.id or 0)) == {
            1,
            2,
            3,
        }

    proxies.s3.policy = no_faults
    resumed = run_nxup(["resume", *args], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    left = multipart_uploads(
        s3_admin, bucket=record.bucket or "", prefix=record.object_key or ""
    )
    for upload in left:
        s3_admin.abort_multipart_upload(
            Bucket=record.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    sent_again = sorted(e["number"] for e in events if e["event"] == "part_completed")
    assert (sent_again, [u["UploadId"] for u in left]) == ([], []), (
        "(journaled parts sent again, uploads left)"
    )
