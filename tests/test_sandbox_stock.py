"""What a stock Nuxeo server does, as the sandbox plays it by default, and its permissive mode.

Every test goes through the real `nuxeo` client (or plain HTTP where the client hides the
answer) and boto3, against the running sandbox.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from click.testing import CliRunner
from conftest import (
    WORKSPACES,
    batch_exists,
    batch_s3_client,
    new_file_doc,
    new_folder,
    object_key,
    put_small,
    uploaded_batch,
    write_file,
)
from nuxeo.client import Nuxeo
from nuxeo.models import Batch, Document

from sandbox import AccessPolicy, NuxeoServer, Sandbox, SandboxProcess
from sandbox.nuxeo_store import BatchRecord, Store

UNKNOWN_BATCH = "batchId-00000000-0000-0000-0000-000000000000"
GIB = 1024**3
ACCESS_DENIED_XML = b"<Error><Code>AccessDenied</Code><Message>Access Denied"


# -- helpers -----------------------------------------------------------------------------------


def http(
    server: NuxeoServer, sandbox: Sandbox, method: str, path: str, **kwargs: Any
) -> requests.Response:
    """A plain HTTP call to `server` (no client retries, the answer as sent)."""
    kwargs.setdefault("timeout", 30)
    return requests.request(
        method,
        f"{server.base_url}/{path}",
        auth=(server.user, sandbox.password),
        **kwargs,
    )


def reference(batch_id: str) -> dict[str, str]:
    return {"upload-batch": batch_id, "upload-fileId": "0"}


def file_document(title: str, **properties: Any) -> dict[str, Any]:
    doc = Document(
        name=title, type="File", properties={"dc:title": title, **properties}
    )
    return doc.as_dict()


def complete_body(batch: Batch, name: str = "payload.txt") -> dict[str, Any]:
    return {
        "name": name,
        "fileSize": 7,
        "key": object_key(batch),
        "bucket": batch.extraInfo["bucket"],
    }


def session_policy(batch: Batch) -> dict[str, Any]:
    """The session policy SeaweedFS 4.48 wrote into the batch's session token (a JWT)."""
    claims = batch.extraInfo["awsSessionToken"].split(".")[1]
    return json.loads(
        json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["spol"]
    )


class LastAnswer:
    """The last raw HTTP answer a boto3 client received (its error bodies included)."""

    def __init__(self, client: Any) -> None:
        self.response: Any = None
        client.meta.events.register("after-call.s3", self._keep)

    def _keep(self, http_response: Any, **_: Any) -> None:
        self.response = http_response


def outcome(call: Callable[[], Any], last: LastAnswer) -> str:
    """ "ok", or "denied" after checking the answer is S3's 403 AccessDenied."""
    try:
        call()
    except ClientError:
        assert last.response.status_code == 403
        # A HEAD answer has no body to carry the XML.
        assert (
            last.response.content == b"" or ACCESS_DENIED_XML in last.response.content
        )
        return "denied"
    return "ok"


def key_running(server: NuxeoServer, key: str) -> bool:
    """Whether a request with this idempotency key is running on `server`."""
    with server.store.transaction() as db:
        row = db.execute(
            "SELECT status FROM idempotent_requests WHERE key = ?", (key,)
        ).fetchone()
    return row is not None and row[0] is None


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(sandbox.nuxeo, "clock", fake)
    return fake


@pytest.fixture
def make_server(
    sandbox: Sandbox, tmp_path: Path
) -> Iterator[Callable[..., NuxeoServer]]:
    """Start another Nuxeo-compatible server on the session's S3 server (stopped after the test)."""
    started: list[NuxeoServer] = []

    def make(data_dir: Path | None = None, **settings: Any) -> NuxeoServer:
        server = NuxeoServer(
            s3=sandbox.s3,
            data_dir=data_dir or tmp_path / f"nuxeo-{len(started)}",
            password=sandbox.password,
            **settings,
        ).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# -- credentials -------------------------------------------------------------------------------


def test_stock_credentials_carry_the_stock_session_policy(
    nuxeo: Nuxeo, sandbox: Sandbox
) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    assert batch.extraInfo["awsSecretKeyId"].startswith("ASIA")
    assert session_policy(batch) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{sandbox.info.bucket}/*"],
            }
        ],
    }


def test_batch_credentials_may_do_what_the_policy_says(
    policy_server: NuxeoServer, policy_nuxeo: Nuxeo, s3_admin: Any
) -> None:
    batch = policy_nuxeo.uploads.batch(handler="s3")
    s3 = batch_s3_client(batch.extraInfo)
    last = LastAnswer(s3)
    bucket, key = batch.extraInfo["bucket"], object_key(batch)

    # What s3:PutObject covers works in every mode.
    put_small(batch)
    completed = s3.create_multipart_upload(Bucket=bucket, Key=f"{key}.mp")["UploadId"]
    part = s3.upload_part(
        Bucket=bucket, Key=f"{key}.mp", UploadId=completed, PartNumber=1, Body=b"x"
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=f"{key}.mp",
        UploadId=completed,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    pending = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=pending, PartNumber=1, Body=b"y")

    calls = {
        "ListParts": lambda: s3.list_parts(Bucket=bucket, Key=key, UploadId=pending),
        "HeadObject": lambda: s3.head_object(Bucket=bucket, Key=f"{key}.mp"),
        "GetObject": lambda: s3.get_object(Bucket=bucket, Key=f"{key}.mp"),
        "ListMultipartUploads": lambda: s3.list_multipart_uploads(Bucket=bucket),
        "AbortMultipartUpload": lambda: s3.abort_multipart_upload(
            Bucket=bucket, Key=key, UploadId=pending
        ),
    }
    outcomes = {name: outcome(call, last) for name, call in calls.items()}
    if policy_server.policy is AccessPolicy.STOCK:
        assert set(outcomes.values()) == {"denied"}, outcomes
    else:
        assert outcomes == {
            **dict.fromkeys(calls, "ok"),
            "ListMultipartUploads": "denied",
        }

    # The operator's keys may do everything.
    listed = s3_admin.list_multipart_uploads(Bucket=bucket, Prefix=key).get(
        "Uploads", []
    )
    assert [u["UploadId"] for u in listed if u["Key"] == key] == (
        [pending] if policy_server.policy is AccessPolicy.STOCK else []
    )
    assert s3_admin.head_object(Bucket=bucket, Key=f"{key}.mp")["ContentLength"] == 1
    assert s3_admin.get_object(Bucket=bucket, Key=key)["Body"].read() == b"payload"
    if policy_server.policy is AccessPolicy.STOCK:
        assert (
            s3_admin.list_parts(Bucket=bucket, Key=key, UploadId=pending)["Parts"][0][
                "Size"
            ]
            == 1
        )
        s3_admin.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=pending)


def test_credentials_cover_the_bucket_or_the_shared_prefix(
    policy_server: NuxeoServer, policy_nuxeo: Nuxeo, s3_admin: Any
) -> None:
    batch = policy_nuxeo.uploads.batch(handler="s3")
    other = policy_nuxeo.uploads.batch(handler="s3")
    put_small(batch, object_key(other))  # the prefix is every batch's
    stray = f"elsewhere/{uuid.uuid4()}"
    if policy_server.policy is AccessPolicy.STOCK:
        put_small(batch, stray)
        s3_admin.delete_object(Bucket=batch.extraInfo["bucket"], Key=stray)
    else:
        with pytest.raises(ClientError) as caught:
            put_small(batch, stray)
        assert caught.value.response["Error"]["Code"] == "AccessDenied"


# -- batch lifetime ----------------------------------------------------------------------------

BATCH_ENDPOINTS = [
    ("GET", "{b}/info"),
    ("POST", "{b}/refreshToken"),
    ("GET", "{b}"),
    ("GET", "{b}/0"),
    ("POST", "{b}/0/complete"),
    ("POST", "{b}/execute/Blob.Attach"),
    ("POST", "{b}/0/execute/FileManager.Import"),
    ("DELETE", "{b}/0"),
    ("DELETE", "{b}"),
]


def test_an_expired_batch_answers_an_empty_404_everywhere(
    nuxeo: Nuxeo, sandbox: Sandbox, tmp_path: Path
) -> None:
    batch = uploaded_batch(nuxeo, write_file(tmp_path, "kept.txt", 100))
    assert sandbox.nuxeo.expire_batch(batch.uid)
    for method, path in BATCH_ENDPOINTS:
        answer = http(
            sandbox.nuxeo,
            sandbox,
            method,
            "api/v1/upload/" + path.format(b=batch.uid),
            json=complete_body(batch),
        )
        assert (answer.status_code, answer.content) == (404, b""), (method, path)


def test_a_batch_lives_from_its_creation_or_last_complete_not_its_last_read(
    nuxeo: Nuxeo, sandbox: Sandbox, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.nuxeo, "batch_ttl_s", 100.0)
    read = nuxeo.uploads.batch(handler="s3")
    completed = nuxeo.uploads.batch(handler="s3")
    put_small(completed)

    clock.now += 60
    assert batch_exists(nuxeo, read.uid)  # a read...
    assert (
        nuxeo.client.request(
            "POST",
            f"api/v1/upload/{completed.uid}/0/complete",
            data=complete_body(completed),
        ).json()["uploaded"]
        == "true"
    )

    clock.now += 60  # 120 s after creation, 60 s after the /complete
    assert not batch_exists(nuxeo, read.uid)  # ...did not extend the life
    assert batch_exists(nuxeo, completed.uid)
    clock.now += 50
    assert not batch_exists(nuxeo, completed.uid)


def test_batches_of_an_older_data_dir_count_as_expired(tmp_path: Path) -> None:
    path = tmp_path / "nuxeo.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE batches (batch_id TEXT PRIMARY KEY, provider TEXT NOT NULL,"
            " base_key TEXT NOT NULL, created TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO batches VALUES ('batchId-old', 's3', 'upload/batchId-old/', '')"
        )
    store = Store(path)
    try:
        now = time.time()
        assert store.batches.get("batchId-old", touched_after=now - 3600) is None
        store.batches.add(BatchRecord("batchId-new", "s3", "upload/"), now=now)
        assert store.batches.get("batchId-new", touched_after=now - 3600) is not None
    finally:
        store.close()


# -- documents ---------------------------------------------------------------------------------


def test_a_missing_batch_or_file_gives_a_document_without_content(nuxeo: Nuxeo) -> None:
    folder = new_folder(nuxeo)
    empty = nuxeo.uploads.batch(handler="s3")
    for batch_id in (UNKNOWN_BATCH, empty.uid):
        answer = nuxeo.client.request(
            "POST",
            f"api/v1/path{folder.path}",
            data=file_document("x", **{"file:content": reference(batch_id)}),
        )
        assert answer.status_code == HTTPStatus.CREATED
        assert answer.json()["properties"]["file:content"] is None
    assert not batch_exists(nuxeo, empty.uid)  # used by the request, so dropped

    doc = new_file_doc(nuxeo, folder, "updated")
    answer = nuxeo.client.request(
        "PUT",
        f"api/v1/id/{doc.uid}",
        data={
            "entity-type": "document",
            "properties": {"file:content": reference(UNKNOWN_BATCH)},
        },
    )
    assert answer.status_code == HTTPStatus.OK
    assert answer.json()["properties"]["file:content"] is None


def test_a_missing_batch_leaves_the_content_in_place(
    nuxeo: Nuxeo, tmp_path: Path
) -> None:
    folder = new_folder(nuxeo)
    batch = uploaded_batch(nuxeo, write_file(tmp_path, "first.txt", 10))
    doc = nuxeo.documents.create(
        Document(
            name="d", type="File", properties={"file:content": reference(batch.uid)}
        ),
        parent_path=folder.path,
    )
    answer = nuxeo.client.request(
        "PUT",
        f"api/v1/id/{doc.uid}",
        data={
            "entity-type": "document",
            "properties": {"file:content": reference(batch.uid)},
        },
    )
    assert answer.json()["properties"]["file:content"]["name"] == "first.txt"


def test_x_batch_no_drop_keeps_a_batch_used_by_a_document(
    nuxeo: Nuxeo, tmp_path: Path
) -> None:
    folder = new_folder(nuxeo)
    batch = uploaded_batch(nuxeo, write_file(tmp_path, "kept.txt", 10))
    for title in ("one", "two"):
        created = nuxeo.client.request(
            "POST",
            f"api/v1/path{folder.path}",
            headers={"X-Batch-No-Drop": "true"},
            data=file_document(title, **{"file:content": reference(batch.uid)}),
        ).json()
        assert created["properties"]["file:content"]["name"] == "kept.txt"
    assert batch_exists(nuxeo, batch.uid)


# -- /complete and refreshToken ----------------------------------------------------------------


def test_complete_without_the_object_is_a_500(nuxeo: Nuxeo, sandbox: Sandbox) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    answer = http(
        sandbox.nuxeo,
        sandbox,
        "POST",
        f"api/v1/upload/{batch.uid}/0/complete",
        json=complete_body(batch),
    )
    assert answer.status_code == 500
    assert answer.json() == {
        "entity-type": "exception",
        "status": 500,
        "message": "Internal Server Error",
    }


def test_complete_takes_the_copy_time(
    nuxeo: Nuxeo, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    put_small(batch)  # 7 bytes
    monkeypatch.setattr(sandbox.nuxeo, "complete_delay_s_per_gib", 0.3 * GIB / 7)
    started = time.monotonic()
    nuxeo.client.request(
        "POST", f"api/v1/upload/{batch.uid}/0/complete", data=complete_body(batch)
    )
    assert time.monotonic() - started >= 0.3


def test_refresh_token_answers_the_batch_and_can_be_missing(
    nuxeo: Nuxeo, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    answer = nuxeo.client.request(
        "POST", f"api/v1/upload/{batch.uid}/refreshToken"
    ).json()
    assert set(answer) == {
        "batchId",
        "awsSecretKeyId",
        "awsSecretAccessKey",
        "awsSessionToken",
        "expiration",
    }
    assert answer["batchId"] == batch.uid
    assert "ETag" in put_small(batch)

    monkeypatch.setattr(sandbox.nuxeo, "refresh_token", False)
    answer_501 = http(
        sandbox.nuxeo, sandbox, "POST", f"api/v1/upload/{batch.uid}/refreshToken"
    )
    assert answer_501.status_code == 501


# -- idempotency -------------------------------------------------------------------------------


def test_a_repeated_idempotency_key_creates_one_document(nuxeo: Nuxeo) -> None:
    folder = new_folder(nuxeo)
    key = str(uuid.uuid4())

    def create(title: str) -> Any:
        return nuxeo.client.request(
            "POST",
            f"api/v1/path{folder.path}",
            data=file_document(title),
            headers={"Idempotency-Key": key},
        )

    first, again = create("once"), create("twice")
    assert first.status_code == again.status_code == HTTPStatus.CREATED
    assert (
        again.json()["uid"] == first.json()["uid"] and again.json()["title"] == "once"
    )
    assert again.headers["Idempotency-Key"] == key
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert [doc.uid for doc in nuxeo.documents.get_children(path=folder.path)] == [
        first.json()["uid"]
    ]


def test_an_idempotency_key_is_busy_while_its_request_runs(
    nuxeo: Nuxeo, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    put_small(batch)
    monkeypatch.setattr(sandbox.nuxeo, "complete_delay_s_per_gib", 0.5 * GIB / 7)
    key = str(uuid.uuid4())

    def complete() -> requests.Response:
        return http(
            sandbox.nuxeo,
            sandbox,
            "POST",
            f"api/v1/upload/{batch.uid}/0/complete",
            json=complete_body(batch),
            headers={"Idempotency-Key": key},
        )

    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(complete()))
    first.start()
    deadline = time.monotonic() + 10
    while not key_running(sandbox.nuxeo, key):
        assert time.monotonic() < deadline and first.is_alive()
        time.sleep(0.005)
    busy = complete()
    first.join()
    assert (busy.status_code, busy.content, busy.headers["Idempotency-Key"]) == (
        409,
        b"",
        key,
    )
    replay = complete()
    assert replay.status_code == answers[0].status_code == 200
    assert replay.content == answers[0].content


def test_an_error_is_not_kept_for_its_idempotency_key(
    nuxeo: Nuxeo, sandbox: Sandbox
) -> None:
    folder = new_folder(nuxeo)
    key = str(uuid.uuid4())

    def create(parent: str) -> int:
        return http(
            sandbox.nuxeo,
            sandbox,
            "POST",
            f"api/v1/path{parent}",
            json=file_document("x"),
            headers={"Idempotency-Key": key},
        ).status_code

    assert create(f"{folder.path}/missing") == 404
    assert create(folder.path) == 201


def test_idempotent_answers_survive_a_restart(
    make_server: Callable[..., NuxeoServer], sandbox: Sandbox, tmp_path: Path
) -> None:
    key = str(uuid.uuid4())

    def create(server: NuxeoServer) -> requests.Response:
        return http(
            server,
            sandbox,
            "POST",
            f"api/v1/path{WORKSPACES}",
            json=file_document("kept"),
            headers={"Idempotency-Key": key},
        )

    before = make_server(tmp_path / "nuxeo")
    first = create(before)
    before.stop()
    after = make_server(tmp_path / "nuxeo")
    again = create(after)
    assert again.status_code == 201 and again.json()["uid"] == first.json()["uid"]
    children = http(after, sandbox, "GET", f"api/v1/path{WORKSPACES}/@children").json()
    assert [doc["title"] for doc in children["entries"]].count("kept") == 1


# -- types and handler name --------------------------------------------------------------------


def test_workspaces_are_a_workspace_root_that_takes_any_type(nuxeo: Nuxeo) -> None:
    assert nuxeo.documents.get(path=WORKSPACES).type == "WorkspaceRoot"
    name = f"ws-{uuid.uuid4().hex[:8]}"
    workspace = nuxeo.documents.create(
        Document(name=name, type="Workspace", properties={"dc:title": name}),
        parent_path=WORKSPACES,
    )
    assert (workspace.type, workspace.path) == ("Workspace", f"{WORKSPACES}/{name}")
    # The REST API does not enforce the declared child types.
    stray = nuxeo.documents.create(
        Document(name=f"{name}-file", type="File", properties={"dc:title": "f"}),
        parent_path=WORKSPACES,
    )
    assert stray.type == "File"


def test_the_s3_handler_can_have_another_name(
    make_server: Callable[..., NuxeoServer], sandbox: Sandbox
) -> None:
    server = make_server(handler_name="s3direct")
    nuxeo = Nuxeo(host=server.base_url, auth=(server.user, sandbox.password))
    handlers = nuxeo.client.request("GET", "api/v1/upload/handlers").json()
    assert handlers == {"handlers": [{"name": "s3direct"}, {"name": "default"}]}
    assert http(server, sandbox, "POST", "api/v1/upload/new/s3").status_code == 404

    batch = nuxeo.uploads.batch(handler="s3direct")
    assert batch.provider == "s3direct" and batch.extraInfo["baseKey"] == "upload/"
    # As on a real server, nothing tells the client this handler is an S3 one.
    assert "provider_type" not in batch.extraInfo and not batch.is_s3()
    put_small(batch)
    done = nuxeo.client.request(
        "POST", f"api/v1/upload/{batch.uid}/0/complete", data=complete_body(batch)
    )
    assert done.json()["uploaded"] == "true"


# -- starting the sandbox ----------------------------------------------------------------------


def test_sandbox_process_takes_the_settings(make_nuxeo: Callable[..., Nuxeo]) -> None:
    with SandboxProcess(
        policy="permissive", handler_name="s3direct", batch_ttl_s=120
    ) as running:
        info = running.info
        assert info.policy == "permissive"
        nuxeo = make_nuxeo(info)
        batch = nuxeo.uploads.batch(handler="s3direct")
        s3 = batch_s3_client(batch.extraInfo)
        bucket, key = batch.extraInfo["bucket"], object_key(batch)
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        assert (
            s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
            == []
        )
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_nxup_sandbox_passes_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandbox.__main__
    from cli.main import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        sandbox.__main__, "serve", lambda **kwargs: seen.update(kwargs) or 0
    )
    result = CliRunner().invoke(
        main,
        [
            "sandbox",
            "--policy",
            "permissive",
            "--batch-ttl",
            "60",
            "--handler-name",
            "s3direct",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (seen["policy"], seen["batch_ttl_s"], seen["handler_name"]) == (
        "permissive",
        60.0,
        "s3direct",
    )
    assert CliRunner().invoke(main, ["sandbox", "--policy", "lenient"]).exit_code == 2
