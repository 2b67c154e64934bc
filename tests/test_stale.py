"""Stale multipart uploads, against real SeaweedFS: listing (and paging past 1,000), ages with an
injected clock, aborting (checked by listing again), dry runs, lifecycle rules, access denied
with batch credentials, the start-up cleanup of nxup's own obsolete uploads, and `nxup stale`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import (
    NXUP,
    batch_may_abort,
    batch_s3_client,
    info_of,
    kill_upload_after_first_part,
    make_orphans,
    multipart_uploads,
    new_target_folder,
    nxup_env,
    open_ids,
    run_nxup,
    stale_prefix,
)
from nuxeo.client import Nuxeo

from engine.lifecycle import UploadStatus
from engine.nuxeo_batch import NuxeoBatchClient, ServerConnection
from engine.stale import (
    ABORT_RULE_ID,
    AbortOutcome,
    AdminScanner,
    StaleError,
    TrackedScanner,
    abort_obsolete,
    add_abort_rule,
    describe_failure,
    iter_upload_pages,
    lifecycle_status,
    parse_age,
)
from engine.state import StateStore
from sandbox import NuxeoServer, Sandbox, SandboxInfo


@pytest.fixture
def either_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    """A Nuxeo server with stock batch credentials (which may not list parts nor abort) and one
    with permissive ones (which may)."""
    return info_of(sandbox, policy_server)


def admin_env(info: SandboxInfo, state_dir: Path, tmp_path: Path) -> dict[str, str]:
    """`nxup stale` as an admin: the operator keys through boto3's usual chain, never argv; and
    none of the machine's own AWS settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "NXUP_", "NUXEO_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID=info.s3_access_key_id,
        AWS_SECRET_ACCESS_KEY=info.s3_secret_access_key,
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        NXUP_S3_ENDPOINT=info.s3_endpoint,
        NXUP_S3_BUCKET=info.bucket,
        NXUP_STATE_DIR=str(state_dir),
        NXUP_CONFIG_DIR=str(tmp_path / "no-nxup-config"),
        PYTHONUNBUFFERED="1",
    )
    return env


def new_batch_s3_client(info: SandboxInfo, nuxeo: Nuxeo) -> tuple[Any, dict[str, Any]]:
    """An S3 client signed with a fresh batch's STS credentials (limited to its prefix), and the
    batch's extraInfo."""
    extra = nuxeo.client.request("POST", "api/v1/upload/new/s3").json()["extraInfo"]
    return batch_s3_client(extra, endpoint=info.s3_endpoint, max_attempts=3), extra


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state") as opened:
        yield opened


# == engine =======================================================================================


def test_parse_age() -> None:
    assert parse_age("30m") == timedelta(minutes=30)
    assert parse_age("24h") == timedelta(hours=24)
    assert parse_age("7d") == timedelta(days=7)
    assert parse_age("90") == timedelta(seconds=90)
    with pytest.raises(ValueError, match="not an age"):
        parse_age("soon")


def test_lists_orphans_with_parts_and_bytes(
    sandbox: Sandbox, s3_admin: Any, store: StateStore
) -> None:
    bucket, prefix = sandbox.info.bucket, stale_prefix()
    made = make_orphans(s3_admin, bucket, prefix, 3, parts=2)
    make_orphans(s3_admin, bucket, stale_prefix(), 1)  # another prefix: not listed
    uploads = AdminScanner(s3_admin, bucket, store).uploads(prefix)
    assert {(u.key, u.upload_id) for u in uploads} == set(made)
    by_key = {u.key: u for u in uploads}
    for index, (key, _) in enumerate(made):
        assert by_key[key].parts == 2
        assert by_key[key].bytes == 2 * 1024 * (index + 1)
        assert by_key[key].tracked is None
        assert abs((datetime.now(UTC) - by_key[key].initiated).total_seconds()) < 120


def test_paging_beyond_1000_uploads(sandbox: Sandbox, s3_admin: Any) -> None:
    bucket, prefix = sandbox.info.bucket, stale_prefix()
    made = make_orphans(s3_admin, bucket, prefix, 1050)
    pages = list(iter_upload_pages(s3_admin, bucket, prefix, page_size=1000))
    assert [len(page) for page in pages] == [1000, 50]
    # What makes a listing of many uploads fast is how many requests it takes, counted here (a
    # time limit would race the machine's load; the time is the benchmark's figure).
    calls: list[str] = []
    s3_admin.meta.events.register(
        "before-call.s3", lambda model, **_: calls.append(model.name)
    )
    listed = AdminScanner(s3_admin, bucket).uploads(prefix, count_parts=False)
    assert calls == ["ListMultipartUploads"] * 2
    assert {u.upload_id for u in listed} == {upload_id for _, upload_id in made}
    assert len(listed) == 1050
    # Small pages too: every upload once, whatever the server's marker style.
    small = [
        u["UploadId"]
        for page in iter_upload_pages(s3_admin, bucket, prefix, page_size=300)
        for u in page
    ]
    assert len(small) == len(set(small)) == 1050
    AdminScanner(s3_admin, bucket).abort(listed)
    assert open_ids(s3_admin, bucket, prefix) == set()


def test_age_filter_with_an_injected_clock(sandbox: Sandbox, s3_admin: Any) -> None:
    bucket, prefix = sandbox.info.bucket, stale_prefix()
    (old,) = make_orphans(s3_admin, bucket, prefix + "old/", 1)
    time.sleep(1.2)  # S3 keeps whole seconds
    (new,) = make_orphans(s3_admin, bucket, prefix + "new/", 1)
    listed = {
        u.key: u for u in AdminScanner(s3_admin, bucket).uploads(prefix, count_parts=False)
    }
    newest = listed[new[0]].initiated
    scanner = AdminScanner(
        s3_admin, bucket, now=lambda: newest + timedelta(milliseconds=500)
    )
    assert [
        u.key for u in scanner.uploads(prefix, timedelta(seconds=1), count_parts=False)
    ] == [old[0]]
    assert len(scanner.uploads(prefix, None, count_parts=False)) == 2
    in_eight_days = AdminScanner(
        s3_admin, bucket, now=lambda: newest + timedelta(days=8)
    )
    assert len(in_eight_days.uploads(prefix, parse_age("7d"), count_parts=False)) == 2
    assert in_eight_days.uploads(prefix, parse_age("9d"), count_parts=False) == []


def test_dry_run_aborts_nothing_and_abort_removes_exactly_the_chosen(
    sandbox: Sandbox, s3_admin: Any
) -> None:
    bucket, prefix = sandbox.info.bucket, stale_prefix()
    made = make_orphans(s3_admin, bucket, prefix, 4, parts=1)
    scanner = AdminScanner(s3_admin, bucket)
    uploads = scanner.uploads(prefix)

    dry = scanner.abort(uploads, dry_run=True)
    assert [r.outcome for r in dry.results] == [AbortOutcome.WOULD_ABORT] * 4
    assert dry.bytes_freed == sum(1024 * (i + 1) for i in range(4))
    assert open_ids(s3_admin, bucket, prefix) == {u for _, u in made}

    chosen = [u for u in uploads if u.key.endswith(("00000.bin", "00002.bin"))]
    report = scanner.abort(chosen)
    assert [r.outcome for r in report.results] == [AbortOutcome.ABORTED] * 2 and not report.failed
    assert open_ids(s3_admin, bucket, prefix) == {u.upload_id for u in uploads} - {
        u.upload_id for u in chosen
    }

    again = scanner.abort(chosen)  # gone either way: not a failure
    assert len(again.results) == 2 and all(r.ok for r in again.results)
    scanner.abort(scanner.uploads(prefix))
    assert open_ids(s3_admin, bucket, prefix) == set()


def test_lifecycle_rule_read_and_added_next_to_existing_rules(
    sandbox: Sandbox, s3_admin: Any, restore_lifecycle: None
) -> None:
    bucket = sandbox.info.bucket
    s3_admin.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-tmp",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "tmp/"},
                    "Expiration": {"Days": 3},
                },
            ]
        },
    )
    status = lifecycle_status(s3_admin, bucket)
    assert (
        not status.has_abort_rule
        and "no AbortIncompleteMultipartUpload rule" in status.describe()
    )

    status = add_abort_rule(s3_admin, bucket, 5)
    assert status.abort_days == 5
    assert {r["ID"] for r in status.rules} == {"expire-tmp", ABORT_RULE_ID}
    assert "aborted 5 day(s) after" in status.describe()
    # Changing the days replaces nxup's own rule only.
    status = add_abort_rule(s3_admin, bucket, 2)
    assert status.abort_days == 2 and len(status.rules) == 2

    s3_admin.delete_bucket_lifecycle(Bucket=bucket)
    assert lifecycle_status(s3_admin, bucket).rules == []


def test_batch_credentials_get_a_clear_access_denied(
    sandbox: Sandbox, nuxeo: Nuxeo
) -> None:
    info = sandbox.info
    client, extra = new_batch_s3_client(info, nuxeo)
    with pytest.raises(StaleError) as listing:
        AdminScanner(client, info.bucket).uploads(extra["baseKey"])
    assert str(listing.value) == (
        f"S3 denied listing multipart uploads: the credentials need s3:ListBucketMultipartUploads"
        f" on arn:aws:s3:::{info.bucket}"
    )
    with pytest.raises(
        StaleError,
        match=f"needs? s3:GetLifecycleConfiguration on arn:aws:s3:::{info.bucket}",
    ):
        lifecycle_status(client, info.bucket)
    with pytest.raises(StaleError, match="s3:GetLifecycleConfiguration"):  # it reads the rules it keeps first
        add_abort_rule(client, info.bucket, 7)


def test_access_denied_names_the_permission_and_resource() -> None:
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied."}}, "x")
    assert str(describe_failure(denied, operation="put_bucket_lifecycle_configuration", bucket="b")) == (
        "S3 denied writing the bucket's lifecycle rules: the credentials need s3:PutLifecycleConfiguration"
        " on arn:aws:s3:::b"
    )
    assert str(describe_failure(denied, operation="abort_multipart_upload", bucket="b", key="k/1")) == (
        "S3 denied aborting a multipart upload: the credentials need s3:AbortMultipartUpload on arn:aws:s3:::b/k/1"
    )


def test_tracked_uploads_are_explained_and_aborted_through_nuxeo(
    either_info: SandboxInfo, s3_admin: Any, tmp_path: Path, make_nuxeo: Any
) -> None:
    info = either_info
    state_dir = tmp_path / "state"
    target_folder = new_target_folder(make_nuxeo(info))
    record = kill_upload_after_first_part(info, state_dir, tmp_path / "footage.mov", target_folder)
    prefix = record.object_key  # its own key: every batch shares the `upload/` prefix
    with StateStore.open(state_dir) as store:
        (seen,) = AdminScanner(s3_admin, info.bucket, store).uploads(prefix)
        assert seen.upload_id == record.upload_id and seen.parts == 1 and seen.bytes == 5 * 1024 * 1024
        assert seen.tracked is not None and seen.tracked.resumable and seen.tracked.parts_done == 1
        assert seen.tracked.path == str(tmp_path / "footage.mov")

        (tmp_path / "footage.mov").unlink()
        batches = NuxeoBatchClient(ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password))
        tracked = TrackedScanner(store, batches)
        (through_nuxeo,) = tracked.uploads()
        assert through_nuxeo.parts == 1 and through_nuxeo.tracked is not None
        assert not through_nuxeo.tracked.resumable and through_nuxeo.tracked.reason == "the local file is gone"

        report = tracked.abort([through_nuxeo])
        if not batch_may_abort(info):
            # Stock credentials: the parts came from the journal, and the abort is refused
            # with who removes the upload instead.
            assert "journal" in (through_nuxeo.note or "")
            (result,) = report.results
            assert result.outcome is AbortOutcome.DENIED and not result.ok and result.left_to_server
            assert "clean-up" in result.message
            assert record.upload_id in open_ids(s3_admin, info.bucket, prefix)
            (seen,) = AdminScanner(s3_admin, info.bucket, store).uploads(record.object_key)
            report = AdminScanner(s3_admin, info.bucket, store).abort([seen])
        assert [r.outcome for r in report.results] == [AbortOutcome.ABORTED]
        assert open_ids(s3_admin, info.bucket, prefix) == set()
        final = store.get(record.id)
        assert final is not None and final.status is UploadStatus.CANCELLED and final.upload_id is None
        assert "nxup stale" in (final.error or "")
        assert tracked.uploads() == []


def test_start_up_cleanup_aborts_uploads_left_unresumed_too_long(
    either_info: SandboxInfo, s3_admin: Any, tmp_path: Path, make_nuxeo: Any
) -> None:
    info = either_info
    state_dir = tmp_path / "state"
    target_folder = new_target_folder(make_nuxeo(info))
    record = kill_upload_after_first_part(info, state_dir, tmp_path / "clip.mov", target_folder)
    batches = NuxeoBatchClient(ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password))
    with StateStore.open(state_dir) as store:
        now = datetime.now(UTC)
        assert (
            abort_obsolete(
                store,
                max_age=timedelta(days=7),
                now=lambda: now + timedelta(days=1),
                batches=batches,
            )
            == []
        )
        assert (
            abort_obsolete(
                store,
                max_age=None,
                now=lambda: now + timedelta(days=30),
                batches=batches,
            )
            == []
        )
        assert record.upload_id in open_ids(s3_admin, info.bucket, record.object_key)

        (entry,) = abort_obsolete(
            store,
            max_age=timedelta(days=7),
            now=lambda: now + timedelta(days=8),
            batches=batches,
        )
        assert entry.why == "not resumed for 8 days"
        if batch_may_abort(info):
            assert entry.ok
            assert (
                entry.notice()
                == f"aborted the obsolete multipart upload of {tmp_path / 'clip.mov'} (not resumed for 8 days)"
            )
            assert open_ids(s3_admin, info.bucket, record.object_key) == set()
        else:
            # Left to the server's clean-up, said so, and no longer offered for resume.
            assert not entry.ok and "clean-up" in entry.notice() and "nxup stale --bucket" in entry.notice()
            assert open_ids(s3_admin, info.bucket, record.object_key) == {record.upload_id}
            s3_admin.abort_multipart_upload(Bucket=info.bucket, Key=record.object_key, UploadId=record.upload_id)
        final = store.get(record.id)
        assert final is not None and final.status is UploadStatus.CANCELLED
        assert "not resumed for 8 days" in (final.error or "")
        assert store.unfinished() == []


def test_start_up_cleanup_without_the_batch_leaves_the_upload_to_an_admin(
    sandbox: Sandbox, s3_admin: Any, nuxeo: Nuxeo, tmp_path: Path, target_folder: str
) -> None:
    info = sandbox.info
    state_dir = tmp_path / "state"
    record = kill_upload_after_first_part(info, state_dir, tmp_path / "gone.mov", target_folder)
    (tmp_path / "gone.mov").unlink()
    nuxeo.client.request("DELETE", f"api/v1/upload/{record.batch_id}")
    batches = NuxeoBatchClient(ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password))
    with StateStore.open(state_dir) as store:
        (entry,) = abort_obsolete(store, batches=batches)
        assert entry.outcome is AbortOutcome.BATCH_GONE and not entry.ok
        assert "batch expired" in entry.message and "admin" in entry.message
        assert record.upload_id in open_ids(s3_admin, info.bucket, record.object_key)  # nothing else touched
        assert store.unfinished() == []  # no longer offered for resume
        # An admin sees it as nxup's leftover, and removes it.
        (seen,) = AdminScanner(s3_admin, info.bucket, store).uploads(record.object_key)
        assert seen.tracked is not None and not seen.tracked.resumable and "cancelled" in seen.tracked.reason
        assert AdminScanner(s3_admin, info.bucket, store).abort([seen]).results[0].ok
        assert open_ids(s3_admin, info.bucket, record.object_key) == set()


# == the command ==================================================================================


def run_stale(args: list[str], env: dict[str, str], *, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    if answer is None:
        return run_nxup(["stale", *args], env)
    result = subprocess.run(
        [NXUP, "stale", *args],
        check=False,
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_cli_lists_as_a_table_and_as_json(sandbox: Sandbox, s3_admin: Any, tmp_path: Path) -> None:
    info = sandbox.info
    prefix = stale_prefix()
    made = make_orphans(s3_admin, info.bucket, prefix, 2, parts=1)
    env = admin_env(info, tmp_path / "state", tmp_path)

    table = run_stale(["--prefix", prefix], env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["AGE", "PARTS", "SIZE", "KEY"]
    # Piped: 80 columns, no colour codes, no padding left at the ends of lines.
    rows = [line for line in lines if not line.startswith(("2 multipart", "lifecycle:"))]
    assert all(len(line) <= 80 and line == line.rstrip() for line in rows) and "\x1b" not in table.stdout
    assert all(any(key in line for line in lines) for key, _ in made)
    assert "2 multipart upload(s) holding 3.0 KiB; 0 tracked by nxup (0 resumable)" in table.stdout
    assert "lifecycle:" in table.stdout

    as_json = run_stale(["--prefix", prefix, "--json"], env)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {(r["key"], r["upload_id"]) for r in rows} == set(made)
    assert sorted(r["bytes"] for r in rows) == [1024, 2048] and {r["parts"] for r in rows} == {1}
    assert all(r["tracked"] is None and r["age_s"] >= 0 for r in rows)

    none_old_enough = run_stale(["--prefix", prefix, "--older-than", "1h", "--json"], env)
    assert none_old_enough.returncode == 0 and none_old_enough.stdout == ""


def test_cli_abort_with_dry_run_confirmation_and_yes(sandbox: Sandbox, s3_admin: Any, tmp_path: Path) -> None:
    info = sandbox.info
    prefix = stale_prefix()
    made = make_orphans(s3_admin, info.bucket, prefix, 2, parts=1)
    env = admin_env(info, tmp_path / "state", tmp_path)

    dry = run_stale(["--prefix", prefix, "--older-than", "0", "--abort", "--dry-run"], env)
    assert dry.returncode == 0 and dry.stdout.count("would abort") == 3  # two lines and the summary
    assert "nothing was aborted" in dry.stdout
    assert open_ids(s3_admin, info.bucket, prefix) == {u for _, u in made}

    declined = run_stale(["--prefix", prefix, "--older-than", "0", "--abort"], env, answer="n\n")
    assert "Abort 2 multipart upload(s) holding 3.0 KiB?" in declined.stderr
    assert declined.returncode == 0 and "nothing aborted" in declined.stdout
    assert len(open_ids(s3_admin, info.bucket, prefix)) == 2

    unanswered = run_stale(["--prefix", prefix, "--older-than", "0", "--abort"], env)  # stdin is /dev/null
    assert unanswered.returncode == 2 and "--yes" in unanswered.stderr

    confirmed = run_stale(["--prefix", prefix, "--older-than", "0", "--abort"], env, answer="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "aborted 2 upload(s), 3.0 KiB freed" in confirmed.stdout
    assert open_ids(s3_admin, info.bucket, prefix) == set()

    make_orphans(s3_admin, info.bucket, prefix, 1)
    assert run_stale(["--prefix", prefix, "--older-than", "0", "--abort", "--yes", "--json"], env).returncode == 0
    assert open_ids(s3_admin, info.bucket, prefix) == set()


def test_cli_lifecycle_status_and_rule(
    sandbox: Sandbox, tmp_path: Path, restore_lifecycle: None, s3_admin: Any
) -> None:
    env = admin_env(sandbox.info, tmp_path / "state", tmp_path)
    s3_admin.delete_bucket_lifecycle(Bucket=sandbox.info.bucket)
    shown = run_stale(["--lifecycle"], env)
    assert shown.returncode == 0 and "no AbortIncompleteMultipartUpload rule" in shown.stdout
    unanswered = run_stale(["--add-lifecycle-rule", "3"], env)
    assert unanswered.returncode == 2 and lifecycle_status(s3_admin, sandbox.info.bucket).rules == []
    added = run_stale(["--add-lifecycle-rule", "3", "--yes"], env)
    assert added.returncode == 0 and "aborted 3 day(s) after they start" in added.stdout
    assert lifecycle_status(s3_admin, sandbox.info.bucket).abort_days == 3


def test_cli_errors_are_one_line_with_the_right_exit_code(sandbox: Sandbox, nuxeo: Nuxeo, tmp_path: Path) -> None:
    info = sandbox.info
    env = admin_env(info, tmp_path / "state", tmp_path)
    bare = {k: v for k, v in env.items() if k not in ("NXUP_S3_BUCKET", "NXUP_S3_ENDPOINT")}
    assert run_stale([], bare).returncode == 2
    assert run_stale(["--older-than", "soon"], env).returncode == 2

    _, extra = new_batch_s3_client(info, nuxeo)
    denied_env = env | {
        "AWS_ACCESS_KEY_ID": extra["awsSecretKeyId"],
        "AWS_SECRET_ACCESS_KEY": extra["awsSecretAccessKey"],
        "AWS_SESSION_TOKEN": extra["awsSessionToken"],
    }
    denied = run_stale(["--prefix", extra["baseKey"]], denied_env)
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        f"nxup: S3 denied listing multipart uploads: the credentials need s3:ListBucketMultipartUploads"
        f" on arn:aws:s3:::{info.bucket}"
    )
    no_keys = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    missing = run_stale([], no_keys)
    assert missing.returncode == 1 and "no S3 credentials" in missing.stderr


def test_resume_aborts_obsolete_uploads_at_start_up_and_names_them(
    either_info: SandboxInfo, s3_admin: Any, tmp_path: Path, make_nuxeo: Any
) -> None:
    info = either_info
    target_folder = new_target_folder(make_nuxeo(info))
    state_dir = tmp_path / "state"
    record = kill_upload_after_first_part(info, state_dir, tmp_path / "draft.mov", target_folder)
    env = nxup_env(info, state_dir)

    kept = run_nxup(["resume", "--no-tui", "--stale-after", "0"], env | {"NXUP_STALE_AFTER": "1s"})
    assert "obsolete" not in kept.stderr  # 0 = never by age, and the file is there
    assert kept.returncode == 0, kept.stderr
    with StateStore.open(state_dir) as store:
        assert store.get(record.id).status is UploadStatus.DONE  # type: ignore[union-attr]

    second = kill_upload_after_first_part(info, state_dir, tmp_path / "draft2.mov", target_folder)
    (tmp_path / "draft2.mov").unlink()
    cleaned = run_nxup(["resume", "--no-tui"], env)
    assert cleaned.returncode == 0, cleaned.stderr
    if batch_may_abort(info):
        assert (
            f"nxup: aborted the obsolete multipart upload of {tmp_path / 'draft2.mov'} (the local file is gone)"
            in cleaned.stderr
        )
        assert multipart_uploads(s3_admin, bucket=info.bucket, prefix=second.object_key) == []
    else:
        assert (
            f"nxup: could not abort the obsolete multipart upload of {tmp_path / 'draft2.mov'} "
            "(the local file is gone): the batch credentials may not abort it"
        ) in cleaned.stderr
        s3_admin.abort_multipart_upload(Bucket=info.bucket, Key=second.object_key, UploadId=second.upload_id)
    with StateStore.open(state_dir) as store:
        final = store.get(second.id)
    assert (
        final is not None and final.status is UploadStatus.CANCELLED and "the local file is gone" in (final.error or "")
    )
