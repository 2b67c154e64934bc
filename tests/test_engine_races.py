"""Commands that race with the engine's own work, and crashes at the worst moments: each file
must still land once, as one document, with S3 holding exactly its bytes."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from conftest import (
    MIB,
    assert_aborted_or_left_for_cleanup,
    assert_document_holds,
    assert_object_is,
    poll,
)
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed, FileStarted, Notice, PartCompleted
from engine.lifecycle import Stage, UploadStatus
from engine.nuxeo_batch import NuxeoBatchClient, ServerConnection
from engine.state import UploadRecord
from sandbox import Sandbox, SandboxInfo


def children(nuxeo: Nuxeo, folder: str) -> list[str]:
    answer = nuxeo.client.request("GET", f"api/v1/path{folder}/@children").json()
    return [entry["title"] for entry in answer["entries"]]


def test_pause_all_and_resume_all_before_files_start_prepare_each_file_once(
    make_manager: Any, target_folder: str, nuxeo: Nuxeo, tmp_path: Path,
) -> None:
    # One worker busy with a capped big file: the other files are admitted but wait to prepare.
    (tmp_path / "in").mkdir()
    contents = {"0-big.bin": os.urandom(11 * MIB)}
    contents.update({f"small-{i}.txt": os.urandom(2000 + i) for i in range(5)})
    for name, content in contents.items():
        (tmp_path / "in" / name).write_bytes(content)
    manager, events = make_manager(workers=1, bandwidth_limit=4 * MIB)
    manager.add([tmp_path / "in"], target_folder)
    poll(lambda: events.of(FileStarted), what="the big file to start")
    for _ in range(3):
        manager.pause_all()
        manager.resume_all()
    manager.set_bandwidth_limit(None)
    assert manager.wait(timeout=90)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    completed = Counter(os.path.basename(e.path) for e in events.of(FileCompleted))
    assert completed == Counter(contents.keys()), completed
    folder = f"{target_folder}/in"
    assert sorted(children(nuxeo, folder)) == sorted(contents)


def test_two_adds_of_the_same_folder_at_once_queue_each_file_once(
    make_manager: Any, target_folder: str, nuxeo: Nuxeo, tmp_path: Path,
) -> None:
    (tmp_path / "same").mkdir()
    for i in range(40):
        (tmp_path / "same" / f"f{i:02d}.txt").write_bytes(os.urandom(500))
    manager, events = make_manager(workers=4)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(manager.add([tmp_path / "same"], target_folder)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert manager.wait(timeout=90)
    assert len(set(results[0].file_ids) | set(results[1].file_ids)) == 40
    assert len(events.of(FileCompleted)) == 40
    assert len(children(nuxeo, f"{target_folder}/same")) == 40


def test_cancel_is_recorded_before_its_cleanup_runs(
    make_manager: Any, target_folder: str, nuxeo: Nuxeo, tmp_path: Path, s3_admin: Any, server_info: SandboxInfo,
) -> None:
    path = tmp_path / "doomed.bin"
    path.write_bytes(os.urandom(12 * MIB))
    manager, events = make_manager(bandwidth_limit=2 * MIB)
    (file_id,) = manager.add([path], target_folder).file_ids
    poll(lambda: manager.snapshot(file_id).sent > 0, what="upload start")
    manager.cancel(file_id)
    # Had the process died right now, `nxup resume` must not upload the file again.
    record = manager.store.get(file_id)
    assert record is not None and record.status is UploadStatus.CANCELLED
    assert manager.wait(timeout=30)
    # And once the cleanup ran: the upload aborted (or, with stock credentials, left to the
    # server's clean-up and said so), nothing in Nuxeo, nothing to resume.
    assert_aborted_or_left_for_cleanup(s3_admin, server_info, manager.store.get(file_id),
                                       [n.message for n in events.of(Notice, file_id)])
    assert not events.of(FileCompleted)
    assert children(nuxeo, target_folder) == []
    assert not [r for r in manager.store.unfinished() if r.id == file_id]


def test_resume_after_a_crash_between_complete_and_saving_it_sends_no_part_again(
    sandbox: Sandbox, make_manager: Any, target_folder: str, nuxeo: Nuxeo, tmp_path: Path, s3_admin: Any,
) -> None:
    """S3 completed the multipart upload, but the process died before recording the ETag: the
    journal says the join was under way, the upload id is gone, the object is whole, and
    resuming must take it as it is (Nuxeo, not S3, is asked: batch credentials may not read)."""
    info = sandbox.info
    content = os.urandom(7 * MIB + 99)
    path = tmp_path / "finished-on-s3.bin"
    path.write_bytes(content)
    batch = NuxeoBatchClient(ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password)).new_batch()
    key = batch.base_key + "crash-after-complete"
    s3 = boto3.session.Session().client(
        "s3", endpoint_url=batch.location.endpoint, region_name=batch.location.region,
        aws_access_key_id=batch.credentials.access_key_id,
        aws_secret_access_key=batch.credentials.secret_access_key,
        aws_session_token=batch.credentials.session_token,
        config=Config(s3={"addressing_style": "path"}),
    )
    upload_id = s3.create_multipart_upload(
        Bucket=batch.location.bucket, Key=key, ContentType="application/octet-stream"
    )["UploadId"]
    parts = []
    for number, offset in ((1, 0), (2, 5 * MIB)):
        chunk = content[offset : offset + 5 * MIB]
        etag = s3.upload_part(Bucket=batch.location.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk)[
            "ETag"
        ]
        parts.append({"ETag": etag, "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=batch.location.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    manager, events = make_manager()
    stat = path.stat()
    manager.store.add_upload(
        UploadRecord(
            path=str(path),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            server_url=info.nuxeo_url,
            user=info.user,
            target=target_folder,
            doc_name=path.name,
            status=UploadStatus.UPLOADING,
            batch_id=batch.batch_id,
            handler="s3",
            bucket=batch.location.bucket,
            object_key=key,
            upload_id=upload_id,
            part_size=5 * MIB,
            part_count=2,
            stage=Stage.JOINING,
        )
    )
    manager.load_unfinished()
    assert manager.wait(timeout=60)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    assert not events.of(PartCompleted), "a part S3 already held was sent again"
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=content)
    assert_object_is(s3_admin, bucket=info.bucket, key=key, content=content)
