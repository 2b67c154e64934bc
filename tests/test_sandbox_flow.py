"""The S3 direct-upload flow through the sandbox, driven by the real `nuxeo` client and boto3."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from conftest import (
    MIB,
    batch_exists,
    batch_s3_client,
    new_file_doc,
    new_folder,
    object_key,
    uploaded_batch,
    write_file,
)
from nuxeo.client import Nuxeo
from nuxeo.models import Batch, Document, FileBlob

from sandbox import Sandbox

PART = 5 * MIB


# -- helpers ---------------------------------------------------------------------------------


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def record_upload(batch: Batch, path: Path, etag: str) -> None:
    """The batch state the client's uploader leaves behind, for uploads done with boto3."""
    batch.blobs[0] = FileBlob(str(path))
    batch.upload_idx = 1
    batch.etag = etag


def assert_blob(doc: Document, path: Path, mime_type: str) -> None:
    content = doc.properties["file:content"]
    assert content["name"] == path.name
    assert content["length"] == str(path.stat().st_size)
    assert content["mime-type"] == mime_type
    assert content["digestAlgorithm"] == "MD5"
    assert content["digest"] == md5_of(path)
    assert f"/nxfile/default/{doc.uid}/file:content/" in content["data"]


def assert_stored(s3_admin: Any, sandbox: Sandbox, key: str, path: Path) -> None:
    stored = s3_admin.get_object(Bucket=sandbox.info.bucket, Key=key)["Body"].read()
    assert stored == path.read_bytes()


# -- single PUT ------------------------------------------------------------------------------


def test_batch_answer_has_every_extra_info_key(nuxeo: Nuxeo, sandbox: Sandbox) -> None:
    answer = nuxeo.client.request("POST", "api/v1/upload/new/s3")
    assert answer.status_code == 200
    body = answer.json()
    assert body["batchId"].startswith("batchId-")
    assert body["provider"] == "s3"
    assert body["fileEntries"] == []
    info = body["extraInfo"]
    assert set(info) == {
        "awsSecretKeyId",
        "awsSecretAccessKey",
        "awsSessionToken",
        "bucket",
        "baseKey",
        "expiration",
        "endpoint",
        "usePathStyleAccess",
        "region",
        "useS3Accelerate",
    }
    # One prefix for every batch, as the server's `bucket_prefix`.
    assert info["baseKey"] == "upload/"
    assert nuxeo.uploads.batch(handler="s3").extraInfo["baseKey"] == "upload/"
    assert info["bucket"] == sandbox.info.bucket
    assert info["endpoint"] == sandbox.info.s3_endpoint
    assert info["usePathStyleAccess"] is True and info["useS3Accelerate"] is False
    assert (
        isinstance(info["expiration"], int) and info["expiration"] > 10**12
    )  # epoch ms


def test_single_put_with_the_client_uploader(
    nuxeo: Nuxeo, sandbox: Sandbox, s3_admin: Any, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "report.pdf", 300 * 1024)
    folder = new_folder(nuxeo)
    doc = new_file_doc(nuxeo, folder)

    batch = nuxeo.uploads.batch(handler="s3")
    batch.upload(FileBlob(str(path)))
    assert batch.etag.strip('"') == md5_of(path)
    assert nuxeo.uploads.get(batch.uid) == []  # nothing recorded before /complete
    batch.complete()
    assert batch.attach(doc.path).status_code == 204

    assert_blob(nuxeo.documents.get(path=doc.path), path, "application/pdf")
    assert_stored(s3_admin, sandbox, object_key(batch), path)
    assert not batch_exists(nuxeo, batch.uid)  # dropped after /execute


def test_single_put_with_boto3(
    nuxeo: Nuxeo, sandbox: Sandbox, s3_admin: Any, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "data.bin", 64 * 1024)
    doc = new_file_doc(nuxeo, new_folder(nuxeo))

    batch = nuxeo.uploads.batch(handler="s3")
    with path.open("rb") as body:
        answer = batch_s3_client(batch.extraInfo).put_object(
            Bucket=batch.extraInfo["bucket"],
            Key=object_key(batch),
            Body=body,
            ContentType="text/csv; charset=UTF-8",
        )
    record_upload(batch, path, answer["ETag"])
    assert batch.complete().json() == {
        "uploaded": "true",
        "batchId": batch.uid,
        "fileIdx": "0",
    }

    info = batch.get(0)
    assert (info.name, info.size, info.uploadType) == (
        path.name,
        path.stat().st_size,
        "normal",
    )
    batch.attach(doc.uid)

    fetched = nuxeo.documents.get(uid=doc.uid)
    assert_blob(fetched, path, "text/csv")
    assert fetched.properties["file:content"]["encoding"] == "UTF-8"
    assert_stored(s3_admin, sandbox, object_key(batch), path)
    download = nuxeo.client.request(
        "GET", fetched.properties["file:content"]["data"].split("/nuxeo/", 1)[1]
    )
    assert download.content == path.read_bytes()


# -- multipart -------------------------------------------------------------------------------


def multipart_file(tmp_path: Path) -> Path:
    # Three full 5 MiB parts and a smaller last one.
    return write_file(tmp_path, "video.mp4", 3 * PART + 700 * 1024)


def assert_no_pending_upload(s3_admin: Any, sandbox: Sandbox, key: str) -> None:
    pending = s3_admin.list_multipart_uploads(Bucket=sandbox.info.bucket, Prefix=key)
    assert [upload["Key"] for upload in pending.get("Uploads", [])] == []


def test_multipart_with_the_client_chunk_uploader(
    policy_nuxeo: Nuxeo, sandbox: Sandbox, s3_admin: Any, tmp_path: Path
) -> None:
    nuxeo = policy_nuxeo
    path = multipart_file(tmp_path)
    doc = new_file_doc(nuxeo, new_folder(nuxeo))
    refreshed: list[dict[str, Any]] = []

    batch = nuxeo.uploads.batch(handler="s3")
    first_key = batch.extraInfo["awsSecretKeyId"]
    uploader = batch.get_uploader(
        FileBlob(str(path)),
        chunked=True,
        chunk_size=PART,
        token_callback=lambda _batch, creds: refreshed.append(creds),
    )
    uploader.upload()

    # botocore fetched the multipart credentials through POST refreshToken.
    assert refreshed and refreshed[0]["awsSecretKeyId"] != first_key
    assert set(refreshed[0]) == {
        "batchId",
        "awsSecretKeyId",
        "awsSecretAccessKey",
        "awsSessionToken",
        "expiration",
    }
    assert uploader.chunk_count == 4
    assert batch.etag.strip('"').endswith("-4")
    batch.complete()
    batch.attach(doc.path)

    assert_blob(nuxeo.documents.get(path=doc.path), path, "video/mp4")
    assert_stored(s3_admin, sandbox, object_key(batch), path)
    assert_no_pending_upload(s3_admin, sandbox, object_key(batch))


def test_multipart_with_boto3(
    nuxeo: Nuxeo, sandbox: Sandbox, s3_admin: Any, tmp_path: Path
) -> None:
    path = multipart_file(tmp_path)
    doc = new_file_doc(nuxeo, new_folder(nuxeo))
    batch = nuxeo.uploads.batch(handler="s3")
    s3 = batch_s3_client(batch.extraInfo)
    bucket, key = batch.extraInfo["bucket"], object_key(batch)

    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="video/mp4"
    )["UploadId"]
    parts = []
    with path.open("rb") as handle:
        for number, chunk in enumerate(iter(lambda: handle.read(PART), b""), start=1):
            answer = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
            )
            parts.append({"ETag": answer["ETag"], "PartNumber": number})
    assert len(parts) == 4
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    record_upload(batch, path, done["ETag"])
    batch.complete()
    batch.attach(doc.path)

    assert_blob(nuxeo.documents.get(path=doc.path), path, "video/mp4")
    assert_stored(s3_admin, sandbox, key, path)
    assert_no_pending_upload(s3_admin, sandbox, key)


# -- linking ---------------------------------------------------------------------------------


def test_file_manager_import_creates_the_document_and_drops_the_batch(
    nuxeo: Nuxeo, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "notes.txt", 1000)
    folder = new_folder(nuxeo)
    batch = uploaded_batch(nuxeo, path)

    created = nuxeo.operations.execute(
        command="FileManager.Import",
        input_obj=batch.get(0),
        context={"currentDocument": folder.path},
    )
    assert created["entity-type"] == "document"
    assert created["type"] == "File"
    assert created["path"] == f"{folder.path}/notes.txt"
    assert created["title"] == "notes.txt"
    assert created["properties"]["file:content"]["digest"] == md5_of(path)
    assert [doc.uid for doc in nuxeo.documents.get_children(path=folder.path)] == [
        created["uid"]
    ]
    assert not batch_exists(nuxeo, batch.uid)


def test_file_manager_import_keeps_the_batch_when_asked(
    nuxeo: Nuxeo, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "notes.txt", 1000)
    folder = new_folder(nuxeo)
    batch = uploaded_batch(nuxeo, path)
    blob = batch.get(0)

    def import_it(**params: Any) -> dict[str, Any]:
        return nuxeo.operations.execute(
            command="FileManager.Import",
            input_obj=blob,
            params=params,
            context={"currentDocument": folder.uid},
            headers={"X-Batch-No-Drop": "true"},
        )

    first = import_it()
    assert batch_exists(nuxeo, batch.uid)
    # Same name again: a second document with a Nuxeo-style unique name.
    second = import_it()
    assert second["uid"] != first["uid"]
    assert second["path"].startswith(f"{folder.path}/notes.txt.")
    # The historical misspelled parameter overwrites the document with that title.
    third = import_it(overwite=True)
    assert third["uid"] in (first["uid"], second["uid"])
    assert len(nuxeo.documents.get_children(uid=folder.uid)) == 2


def test_create_document_with_a_batch_reference(nuxeo: Nuxeo, tmp_path: Path) -> None:
    path = write_file(tmp_path, "photo.png", 5000)
    folder = new_folder(nuxeo)
    batch = uploaded_batch(nuxeo, path)

    doc = nuxeo.documents.create(
        Document(
            name="photo",
            type="File",
            properties={
                "dc:title": "Photo",
                "file:content": {"upload-batch": batch.uid, "upload-fileId": "0"},
            },
        ),
        parent_path=folder.path,
    )
    assert_blob(doc, path, "image/png")
    assert not batch_exists(nuxeo, batch.uid)  # dropped at the end of the request
    # Saving the document as fetched keeps its blob.
    doc.properties["dc:title"] = "Renamed"
    saved = nuxeo.documents.put(doc)
    assert saved.title == "Renamed"
    assert saved.properties["file:content"]["digest"] == md5_of(path)


def test_attach_several_files_to_files_files(nuxeo: Nuxeo, tmp_path: Path) -> None:
    folder = new_folder(nuxeo)
    doc = new_file_doc(nuxeo, folder)
    paths = [write_file(tmp_path, f"part{i}.txt", 100 + i) for i in range(2)]
    for path in paths:
        batch = uploaded_batch(nuxeo, path)
        batch.execute(
            "Blob.Attach", params={"document": doc.uid, "xpath": "files:files"}
        )
    files = nuxeo.documents.get(uid=doc.uid).properties["files:files"]
    assert [item["file"]["name"] for item in files] == ["part0.txt", "part1.txt"]
    assert [item["file"]["digest"] for item in files] == [md5_of(p) for p in paths]
