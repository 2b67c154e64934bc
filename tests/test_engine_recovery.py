"""Recovery paths a real Nuxeo server forces on the engine, run against the sandbox with stock
batch credentials (PutObject only: no part listing, no abort, no HeadObject) and with the
broader ones: batches that expire during an upload, documents created without their blob,
parts S3 holds that the journal missed, multipart uploads gone from S3, a document creation
whose answer was lost, a handler named otherwise, workspaces under a WorkspaceRoot."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from conftest import (
    MIB,
    WORKSPACES,
    EventLog,
    assert_document_holds,
    info_of,
    multipart_uploads,
    paused_after_first_part,
    poll,
    write,
)
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed, Notice, PartCompleted
from engine.lifecycle import Stage, UploadStatus
from engine.nuxeo_batch import BatchInfo, NuxeoBatchClient, ServerConnection
from engine.state import PartRecord, UploadRecord
from sandbox import AccessPolicy, NuxeoServer, Sandbox, SandboxInfo

MakeManager = Callable[..., tuple[Any, EventLog]]


@pytest.fixture
def server_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    return info_of(sandbox, policy_server)


@pytest.fixture
def server(policy_server: NuxeoServer) -> Iterator[NuxeoServer]:
    """The server in each mode, its run-time switches put back after the test."""
    ttl, delay = policy_server.batch_ttl_s, policy_server.complete_delay_s_per_gib
    yield policy_server
    policy_server.batch_ttl_s, policy_server.complete_delay_s_per_gib = ttl, delay


def landed(events: EventLog, nuxeo: Nuxeo, s3_admin: Any, manager: Any, file_id: int, *, name: str,
           content: bytes) -> UploadRecord:
    """The file is done, its document holds exactly its bytes, and no multipart upload is left."""
    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    (done,) = events.of(FileCompleted, file_id)
    assert_document_holds(nuxeo, done.document_uid, name=name, content=content)
    record = manager.store.get(file_id)
    assert record.status is UploadStatus.DONE and record.stage is Stage.DOCUMENTED
    assert multipart_uploads(s3_admin, bucket=record.bucket, prefix=record.object_key) == []
    return record


def documents_in(nuxeo: Nuxeo, folder: str) -> list[Any]:
    return list(nuxeo.documents.get_children(path=folder))


def sent_parts(events: EventLog, file_id: int) -> Counter[int]:
    return Counter(e.number for e in events.of(PartCompleted, file_id))


def batch_client(info: SandboxInfo) -> NuxeoBatchClient:
    return NuxeoBatchClient(ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password))


def batch_s3(batch: BatchInfo) -> Any:
    """boto3 with a batch's own credentials, as a client of the server would have."""
    return boto3.session.Session().client(
        "s3", endpoint_url=batch.location.endpoint, region_name=batch.location.region,
        aws_access_key_id=batch.credentials.access_key_id,
        aws_secret_access_key=batch.credentials.secret_access_key,
        aws_session_token=batch.credentials.session_token,
        config=Config(s3={"addressing_style": "path"}),
    )


def two_parts_on_s3(info: SandboxInfo, content: bytes, *, name: str) -> tuple[BatchInfo, str, str, dict[int, Any]]:
    """A multipart upload (CRC32) of `content` under a new batch, its first two 5 MiB parts sent
    with the batch's own credentials: (batch, key, upload id, S3's answer for each part)."""
    batch = batch_client(info).new_batch()
    key = batch.base_key + name
    s3 = batch_s3(batch)
    upload_id = s3.create_multipart_upload(Bucket=batch.location.bucket, Key=key, ChecksumAlgorithm="CRC32",
                                           ContentType="application/octet-stream")["UploadId"]
    answers = {
        number: s3.upload_part(Bucket=batch.location.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                               Body=content[(number - 1) * 5 * MIB:number * 5 * MIB], ChecksumAlgorithm="CRC32")
        for number in (1, 2)
    }
    return batch, key, upload_id, answers


def journaled(manager: Any, info: SandboxInfo, path: Path, target: str, **fields: Any) -> UploadRecord:
    """A journal row as an earlier run of nxup would have left it."""
    stat = path.stat()
    return manager.store.add_upload(UploadRecord(
        path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns, server_url=info.nuxeo_url,
        user=info.user, target=target, doc_name=path.name, status=UploadStatus.UPLOADING,
        handler="s3", checksum_algorithm="CRC32", **fields,
    ))


def test_batch_expiring_during_the_upload_goes_on_with_a_new_batch(
    make_manager: MakeManager, server: NuxeoServer, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    """The batch lives less long than the upload takes: its parts go on, then `/complete` finds
    the batch gone, and a new batch registers the same object: no byte is sent twice."""
    server.batch_ttl_s = 1.5
    manager, events = make_manager(workers=2, bandwidth_limit=6 * MIB)
    path = tmp_path / "long.bin"
    content = write(path, 17 * MIB)
    (file_id,) = manager.add([path], target_folder).file_ids
    first_batch = poll(lambda: manager.store.get(file_id).batch_id, what="a batch")
    assert manager.wait(timeout=60)

    record = landed(events, nuxeo, s3_admin, manager, file_id, name=path.name, content=content)
    assert record.batch_id != first_batch
    assert sent_parts(events, file_id) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert any("new batch" in n.message for n in events.of(Notice, file_id))
    assert len(documents_in(nuxeo, target_folder)) == 1


def test_batch_dropped_while_paused_goes_on_with_a_new_batch(
    make_manager: MakeManager, server: NuxeoServer, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager(workers=1, bandwidth_limit=10 * MIB)
    path = tmp_path / "lost-batch.bin"
    content = write(path, 12 * MIB)
    file_id = paused_after_first_part(manager, events, path, target_folder)
    old = manager.store.get(file_id)
    server.expire_batch(old.batch_id)

    manager.resume(file_id)
    assert manager.wait(timeout=30)
    record = landed(events, nuxeo, s3_admin, manager, file_id, name=path.name, content=content)
    # Same object key and multipart upload: part 1 was not sent again.
    assert (record.object_key, record.upload_id) == (old.object_key, old.upload_id)
    assert record.batch_id != old.batch_id
    assert sent_parts(events, file_id)[1] == 1


def test_document_made_without_its_blob_is_removed_and_made_again(
    make_manager: MakeManager, server: NuxeoServer, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    """The batch expires between `/complete` and the document creation: a stock server then
    creates the document with no content and answers 201. That document must not stay."""
    manager, events = make_manager()
    path = tmp_path / "late.bin"
    content = write(path, 7 * MIB + 5)
    complete = manager.nuxeo.complete
    expired: list[str] = []

    def complete_then_expire(batch_id: str, **kwargs: Any) -> None:
        complete(batch_id, **kwargs)
        if not expired:
            expired.append(batch_id)
            server.expire_batch(batch_id)

    manager.nuxeo.complete = complete_then_expire
    (file_id,) = manager.add([path], target_folder).file_ids
    assert manager.wait(timeout=60)

    assert expired
    record = landed(events, nuxeo, s3_admin, manager, file_id, name=path.name, content=content)
    assert record.batch_id != expired[0]
    (document,) = documents_in(nuxeo, target_folder)
    assert document.uid == record.doc_uid
    assert sent_parts(events, file_id) == {1: 1, 2: 1}


def test_lost_answer_to_the_document_creation_makes_no_second_document(
    make_manager: MakeManager, server_info: SandboxInfo, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    """The process died after sending the creation (its key journaled) and the server ran it
    (and dropped the batch): resuming sends it again under the same key and gets that document."""
    path = tmp_path / "created-once.bin"
    content = write(path, 300_000)
    client = batch_client(server_info)
    batch = client.new_batch()
    key = batch.base_key + "created-once"
    etag = batch_s3(batch).put_object(Bucket=batch.location.bucket, Key=key, Body=content)["ETag"]
    client.complete(batch.batch_id, name=path.name, size=len(content), key=key, bucket=batch.location.bucket, etag=etag)
    first = client.create_file_document(target_folder, name=path.name, batch_id=batch.batch_id, key="creation-key-1")

    manager, events = make_manager()
    journaled(manager, server_info, path, target_folder, batch_id=batch.batch_id, bucket=batch.location.bucket,
              object_key=key, part_size=len(content), part_count=1, etag=etag,
              stage=Stage.CREATING_DOCUMENT, document_key="creation-key-1")
    manager.load_unfinished()
    assert manager.wait(timeout=30)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    (done,) = events.of(FileCompleted)
    assert done.document_uid == first.uid
    assert [d.uid for d in documents_in(nuxeo, target_folder)] == [first.uid]
    assert_document_holds(nuxeo, first.uid, name=path.name, content=content)
    assert not events.of(PartCompleted)


def test_part_s3_holds_but_the_journal_missed(
    make_manager: MakeManager, server_info: SandboxInfo, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    """S3 acknowledged part 2 as the process died. Where the credentials may list parts, it is
    kept (checksummed here: S3-compatible servers list none, and completion needs it); where
    they may not, it is sent again. Either way completion works (no InvalidRequest)."""
    path = tmp_path / "half-journaled.bin"
    content = write(path, 12 * MIB + 3)
    batch, key, upload_id, answers = two_parts_on_s3(server_info, content, name="half-journaled")
    manager, events = make_manager()
    record = journaled(manager, server_info, path, target_folder, batch_id=batch.batch_id,
                       bucket=batch.location.bucket, object_key=key, upload_id=upload_id, part_size=5 * MIB,
                       part_count=3, stage=Stage.SENDING)
    manager.store.record_part(record.id, PartRecord(number=1, etag=answers[1]["ETag"], size=5 * MIB,
                                                    checksum=answers[1]["ChecksumCRC32"]))
    manager.load_unfinished()
    assert manager.wait(timeout=60)

    landed(events, nuxeo, s3_admin, manager, record.id, name=path.name, content=content)
    resent = {2, 3} if server_info.policy == AccessPolicy.STOCK.value else {3}
    assert set(sent_parts(events, record.id)) == resent


def test_journaled_part_s3_does_not_hold_is_sent_again(
    make_manager: MakeManager, server_info: SandboxInfo, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    """The journal names a part S3 does not hold as such (another ETag). Where the credentials
    may list parts, the listing corrects the journal before the join; where they may not, the
    join answers InvalidPart and the parts are sent again, once."""
    path = tmp_path / "misjournaled.bin"
    content = write(path, 12 * MIB + 3)
    batch, key, upload_id, answers = two_parts_on_s3(server_info, content, name="misjournaled")
    manager, events = make_manager()
    record = journaled(manager, server_info, path, target_folder, batch_id=batch.batch_id,
                       bucket=batch.location.bucket, object_key=key, upload_id=upload_id, part_size=5 * MIB,
                       part_count=3, stage=Stage.SENDING)
    for number, answer in answers.items():
        etag = answer["ETag"] if number == 1 else '"0123456789abcdef0123456789abcdef"'
        manager.store.record_part(record.id, PartRecord(number=number, etag=etag, size=5 * MIB,
                                                        checksum=answer["ChecksumCRC32"]))
    manager.load_unfinished()
    assert manager.wait(timeout=60)

    landed(events, nuxeo, s3_admin, manager, record.id, name=path.name, content=content)
    if server_info.policy == AccessPolicy.STOCK.value:
        assert sent_parts(events, record.id) == {1: 1, 2: 1, 3: 2}
        assert any("sending them again" in n.message for n in events.of(Notice, record.id))
    else:
        assert sent_parts(events, record.id) == {3: 1}


def test_multipart_upload_aborted_on_s3_is_sent_again(
    make_manager: MakeManager, nuxeo: Nuxeo, s3_admin: Any, target_folder: str, tmp_path: Path,
) -> None:
    """A clean-up aborted the upload while nxup was paused: S3 says so (at the part listing,
    or at the first part where listing is denied) and the parts go again under a new upload."""
    manager, events = make_manager(workers=1, bandwidth_limit=10 * MIB)
    path = tmp_path / "swept.bin"
    content = write(path, 12 * MIB)
    file_id = paused_after_first_part(manager, events, path, target_folder)
    old = manager.store.get(file_id)
    s3_admin.abort_multipart_upload(Bucket=old.bucket, Key=old.object_key, UploadId=old.upload_id)

    manager.resume(file_id)
    assert manager.wait(timeout=30)
    record = landed(events, nuxeo, s3_admin, manager, file_id, name=path.name, content=content)
    assert record.upload_id is None or record.upload_id != old.upload_id
    assert sent_parts(events, file_id)[1] == 2
    assert any("gone from S3" in n.message for n in events.of(Notice, file_id))


def test_slow_complete_is_waited_for_and_sent_once(
    make_manager: MakeManager, server: NuxeoServer, nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
    tmp_path: Path,
) -> None:
    """`/complete` copies the object inside the request: nxup waits for it and does not send
    it again while it runs."""
    path = tmp_path / "copied.bin"
    content = write(path, 6 * MIB)
    server.complete_delay_s_per_gib = 2.0 * 1024 / 6  # two seconds for this file
    manager, events = make_manager()
    (file_id,) = manager.add([path], target_folder).file_ids
    assert manager.wait(timeout=60)
    record = landed(events, nuxeo, s3_admin, manager, file_id, name=path.name, content=content)
    lines = server.log_path.read_text(encoding="utf-8").splitlines()
    assert sum(f"/upload/{record.batch_id}/0/complete" in line for line in lines) == 1


def test_handler_named_otherwise(sandbox: Sandbox, make_manager: MakeManager, s3_admin: Any,
                                 tmp_path: Path) -> None:
    with NuxeoServer(s3=sandbox.s3, data_dir=tmp_path / "nuxeo", password=sandbox.password,
                     handler_name="s3direct") as server:
        info = info_of(sandbox, server)
        client = Nuxeo(host=info.nuxeo_url, auth=(info.user, info.password))
        manager, events = make_manager(info=info)
        path = tmp_path / "direct.bin"
        content = write(path, 6 * MIB)
        (file_id,) = manager.add([path], WORKSPACES).file_ids
        assert manager.wait(timeout=30)
        record = landed(events, client, s3_admin, manager, file_id, name=path.name, content=content)
        assert record.handler == "s3direct"


def test_folders_under_a_workspace_root_are_workspaces(make_manager: MakeManager, nuxeo: Nuxeo,
                                                       tmp_path: Path) -> None:
    folder = tmp_path / f"project-{os.getpid()}-{tmp_path.name[-6:]}"
    content = write(folder / "inner" / "note.txt", 1000)
    manager, events = make_manager()
    assert manager.add([folder], WORKSPACES).file_ids
    assert manager.wait(timeout=30)
    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    top = nuxeo.documents.get(path=f"{WORKSPACES}/{folder.name}")
    assert nuxeo.documents.get(path=WORKSPACES).type == "WorkspaceRoot"
    assert top.type == "Workspace"
    assert nuxeo.documents.get(path=f"{top.path}/inner").type == "Folder"
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name="note.txt", content=content)
