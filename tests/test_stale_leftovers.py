"""`nxup stale` names only real leftovers: an upload nxup joined is not one, a running nxup's
upload is never aborted, a login that fails is an error, and `--abort` leaves young uploads
alone unless told otherwise."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import (
    MIB,
    NXUP,
    assert_document_holds,
    make_orphans,
    nxup_env,
    open_ids,
    run_nxup,
    stale_prefix,
    write,
)
from nuxeo.client import Nuxeo

from engine.state import DB_FILENAME, StateStore
from sandbox import Sandbox
from sandbox.core import SandboxInfo

MULTIPART = ["--part-size", "5MiB", "--single-limit", "5MiB"]


def stale_through_nuxeo(info: SandboxInfo, state_dir: Path, *args: str, password: str | None = None) -> Any:
    return run_nxup(["stale", "--json", *args], nxup_env(info, state_dir, password=password))


def test_a_multipart_upload_nxup_joined_is_not_listed(sandbox: Sandbox, target_folder: str, tmp_path: Path) -> None:
    info, state_dir = sandbox.info, tmp_path / "state"
    path = tmp_path / "joined.bin"
    write(path, 6 * MIB)
    done = run_nxup(["upload", str(path), "--to", target_folder, "--no-tui", *MULTIPART], nxup_env(info, state_dir))
    assert done.returncode == 0, done.stderr
    with StateStore.open(state_dir) as store:
        (record,) = store.recent()
        assert record.upload_id  # the journal keeps the id of the joined upload...
    listed = stale_through_nuxeo(info, state_dir)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "", listed.stdout  # ...but it is no leftover
    aborted = stale_through_nuxeo(info, state_dir, "--abort", "--yes", "--older-than", "0")
    assert aborted.returncode == 0 and "no multipart uploads to abort" in aborted.stderr


def test_a_wrong_password_is_an_error_not_an_empty_list(sandbox: Sandbox, tmp_path: Path) -> None:
    listed = stale_through_nuxeo(sandbox.info, tmp_path / "state", password="wrong")
    assert listed.returncode == 1
    (line,) = listed.stderr.strip().splitlines()
    assert line.startswith("nxup:") and "wrong" not in line


def test_a_running_nxups_upload_is_never_aborted(sandbox: Sandbox, nuxeo: Nuxeo, s3_admin: Any,
                                                 target_folder: str, tmp_path: Path) -> None:
    info, state_dir = sandbox.info, tmp_path / "state"
    path = tmp_path / "running.bin"
    content = write(path, 12 * MIB)
    sender = subprocess.Popen(
        [NXUP, "upload", str(path), "--to", target_folder, "--no-tui", "--workers", "1", "--limit", "4MiB/s",
         *MULTIPART, "--json"],
        env=nxup_env(info, state_dir), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 30
        record = None
        while record is None or not record.upload_id:
            assert time.monotonic() < deadline and sender.poll() is None, "the upload never started"
            time.sleep(0.05)
            if (state_dir / DB_FILENAME).exists():
                with StateStore.open(state_dir) as store:
                    record = next(iter(store.recent()), None)
        upload_id = record.upload_id
        attempt = stale_through_nuxeo(info, state_dir, "--abort", "--yes", "--older-than", "0")
        assert attempt.returncode == 0, attempt.stderr
        (row,) = [json.loads(line) for line in attempt.stdout.splitlines()]
        assert row["ok"] is False and row["result"] == f"in use by nxup pid {sender.pid}; left to it"
        assert row["tracked"]["in_use_by"] == sender.pid and not row["tracked"]["resumable"]
        assert "in use by a running nxup, left to it" in attempt.stderr
        assert upload_id in open_ids(s3_admin, info.bucket, record.object_key or "")
        out, err = sender.communicate(timeout=60)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.communicate()
    assert sender.returncode == 0, err
    (completed,) = [e for e in map(json.loads, out.splitlines()) if e["event"] == "completed"]
    assert_document_holds(nuxeo, completed["document_uid"], name=path.name, content=content)


def test_abort_leaves_uploads_younger_than_a_day_unless_told(sandbox: Sandbox, s3_admin: Any, tmp_path: Path) -> None:
    info = sandbox.info
    prefix = stale_prefix()
    made = make_orphans(s3_admin, info.bucket, prefix, 2)
    # The operator keys through boto3's usual chain (never argv), none of the machine's own.
    env = {k: v for k, v in nxup_env(info, tmp_path / "state").items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=info.s3_access_key_id, AWS_SECRET_ACCESS_KEY=info.s3_secret_access_key,
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               NXUP_S3_ENDPOINT=info.s3_endpoint, NXUP_S3_REGION=info.region)
    admin = ["stale", "--bucket", info.bucket, "--prefix", prefix]
    young = run_nxup([*admin, "--abort", "--yes"], env)
    assert young.returncode == 0, young.stderr
    assert "only uploads at least 1d old (--older-than 0 for all)" in young.stderr
    assert open_ids(s3_admin, info.bucket, prefix) == {upload_id for _, upload_id in made}
    told = run_nxup([*admin, "--abort", "--yes", "--older-than", "0"], env)
    assert told.returncode == 0, told.stderr
    assert open_ids(s3_admin, info.bucket, prefix) == set()
