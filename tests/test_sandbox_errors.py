"""Error answers, authentication, credential scoping and expiry, and clean shutdown."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from botocore.exceptions import ClientError
from conftest import WORKSPACES, Sandboxes, object_key, put_small, write_file
from nuxeo.auth import TokenAuth
from nuxeo.client import Nuxeo
from nuxeo.exceptions import HTTPError, InvalidUploadHandler, Unauthorized
from nuxeo.models import Batch, Document, FileBlob

from sandbox import Sandbox

UNKNOWN_BATCH = "batchId-00000000-0000-0000-0000-000000000000"
EXPIRED_CODES = {"InvalidAccessKeyId", "ExpiredToken", "AccessDenied"}


@pytest.fixture
def short_ttl_sandbox(sandboxes: Sandboxes) -> Sandbox:
    """A sandbox whose batch credentials last 3 s."""
    return sandboxes.sandbox(credential_ttl_s=3)


def status_of(call: Callable[[], Any]) -> int:
    with pytest.raises(HTTPError) as caught:
        call()
    return caught.value.status


# -- authentication ----------------------------------------------------------------------------


def test_bad_password_is_unauthorized(
    make_nuxeo: Callable[..., Nuxeo], sandbox: Sandbox
) -> None:
    nuxeo = make_nuxeo(auth=(sandbox.info.user, "wrong"))
    with pytest.raises(Unauthorized) as caught:
        nuxeo.users.current_user()
    assert caught.value.status == 401
    with pytest.raises(Unauthorized):
        nuxeo.uploads.post(handler="")


def test_errors_are_json_entities(sandbox: Sandbox) -> None:
    answer = requests.get(
        f"{sandbox.info.nuxeo_url}/api/v1/upload/handlers", timeout=10
    )
    assert answer.status_code == 401
    assert (
        answer.json()["entity-type"] == "exception" and answer.json()["status"] == 401
    )
    assert "Retry-After" not in answer.headers
    # runningstatus is public.
    assert (
        requests.get(f"{sandbox.info.nuxeo_url}/runningstatus", timeout=10).text == "Ok"
    )


def test_unknown_route_is_404(nuxeo: Nuxeo) -> None:
    assert status_of(lambda: nuxeo.client.request("GET", "api/v1/nothing/here")) == 404


def test_token_authentication(make_nuxeo: Callable[..., Nuxeo], nuxeo: Nuxeo) -> None:
    token = nuxeo.client.request_auth_token(
        "device-1", "ReadWrite", app_name="nxup tests"
    )
    assert token and "\n" not in token
    assert nuxeo.users.current_user().id == "Administrator"  # now sent as a token
    assert nuxeo.uploads.batch(handler="s3").batchId
    # The same device gets the same token back.
    again = make_nuxeo().client.request_auth_token(
        "device-1", "ReadWrite", app_name="nxup tests"
    )
    assert again == token

    assert make_nuxeo(auth=TokenAuth(token)).users.current_user().id == "Administrator"
    with pytest.raises(Unauthorized):
        make_nuxeo(auth=TokenAuth("not-a-token")).users.current_user()
    make_nuxeo().client.request_auth_token(
        "device-1", "ReadWrite", app_name="nxup tests", revoke=True
    )
    with pytest.raises(Unauthorized):
        make_nuxeo(auth=TokenAuth(token)).users.current_user()


def test_server_info_and_reachability(nuxeo: Nuxeo) -> None:
    assert nuxeo.client.is_reachable()
    assert nuxeo.client.server_info()["productVersion"] == "2023.0"


# -- batches -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "{b}/info"),
        ("GET", "{b}"),
        ("GET", "{b}/0"),
        ("POST", "{b}/0/complete"),
        ("POST", "{b}/refreshToken"),
        ("DELETE", "{b}"),
        ("DELETE", "{b}/0"),
        ("POST", "{b}/execute/Blob.Attach"),
        ("POST", "{b}/0/execute/FileManager.Import"),
    ],
)
def test_unknown_batch_is_an_empty_404(
    sandbox: Sandbox, method: str, path: str
) -> None:
    info = sandbox.info
    answer = requests.request(
        method,
        f"{info.nuxeo_url}/api/v1/upload/" + path.format(b=UNKNOWN_BATCH),
        json={"key": "k", "name": "n"},
        auth=(info.user, info.password),
        timeout=10,
    )
    assert (answer.status_code, answer.content) == (404, b"")


def test_empty_batch_answers_204_and_unknown_index_404(nuxeo: Nuxeo) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    answer = nuxeo.client.request("GET", f"api/v1/upload/{batch.uid}")
    assert answer.status_code == 204 and answer.content == b""
    assert status_of(lambda: batch.get(0)) == 404
    batch.cancel()
    assert batch.batchId is None


def test_complete_with_another_bucket_is_400(nuxeo: Nuxeo) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    put_small(batch)
    body = {
        "name": "x.txt",
        "fileSize": 7,
        "key": object_key(batch),
        "bucket": "elsewhere",
    }
    url = f"api/v1/upload/{batch.uid}/0/complete"
    assert status_of(lambda: nuxeo.client.request("POST", url, data=body)) == 400


def test_legacy_batch_and_default_handler(nuxeo: Nuxeo) -> None:
    answer = nuxeo.client.request("POST", "api/v1/upload/")
    assert answer.status_code == 201 and set(answer.json()) == {"batchId"}
    # The real client cannot ask for it (it only sees the first handler), so call it directly.
    batch = nuxeo.client.request("POST", "api/v1/upload/new/default").json()
    assert batch["provider"] == "default" and batch["extraInfo"] == {}
    url = f"api/v1/upload/{batch['batchId']}/0/complete"
    assert (
        status_of(lambda: nuxeo.client.request("POST", url, data={"key": "k"})) == 409
    )


def test_unknown_operation_is_404_and_drops_the_batch(nuxeo: Nuxeo) -> None:
    batch = nuxeo.uploads.batch(handler="s3")
    assert status_of(lambda: batch.execute("No.Such.Operation")) == 404
    assert status_of(lambda: batch.get(0)) == 404  # the batch is gone with it


def test_operator_keys_never_reach_a_batch(nuxeo: Nuxeo, sandbox: Sandbox) -> None:
    secrets_ = (sandbox.info.s3_access_key_id, sandbox.info.s3_secret_access_key)
    batch = nuxeo.uploads.batch(handler="s3")
    answers = [
        nuxeo.client.request("POST", "api/v1/upload/new/s3").text,
        nuxeo.client.request("GET", f"api/v1/upload/{batch.uid}/info").text,
        nuxeo.client.request("POST", f"api/v1/upload/{batch.uid}/refreshToken").text,
        json.dumps(batch.extraInfo),
    ]
    for answer in answers:
        for secret in secrets_:
            assert secret not in answer


# -- documents ---------------------------------------------------------------------------------


def test_missing_parent_is_404(nuxeo: Nuxeo) -> None:
    doc = Document(name="x", type="File", properties={"dc:title": "x"})
    assert (
        status_of(lambda: nuxeo.documents.create(doc, parent_path=f"{WORKSPACES}/nope"))
        == 404
    )
    assert status_of(lambda: nuxeo.documents.get(uid="no-such-uid")) == 404
    assert not nuxeo.documents.exists(path="/no/such/path")


def test_paths_are_percent_decoded(nuxeo: Nuxeo) -> None:
    folder = nuxeo.documents.create(
        Document(name="with space é", type="Folder", properties={"dc:title": "S"}),
        parent_path=WORKSPACES,
    )
    assert folder.path == f"{WORKSPACES}/with space é"
    assert nuxeo.documents.get(path=folder.path).uid == folder.uid
    assert nuxeo.documents.get(path="/").type == "Root"
    nuxeo.documents.delete(folder.uid)
    assert not nuxeo.documents.exists(uid=folder.uid)


# -- credential expiry (short-lived credentials) -----------------------------------------------


def wait_until_expired(batch: Batch) -> None:
    delay = batch.extraInfo["expiration"] / 1000 - time.time() + 0.5
    time.sleep(max(delay, 0))


def test_expired_credentials_are_rejected_and_refresh_works(
    make_nuxeo: Callable[..., Nuxeo], short_ttl_sandbox: Sandbox
) -> None:
    nuxeo = make_nuxeo(short_ttl_sandbox.info)
    batch = nuxeo.uploads.batch(handler="s3")
    put_small(batch)
    wait_until_expired(batch)
    with pytest.raises(ClientError) as caught:
        put_small(batch)
    assert caught.value.response["Error"]["Code"] in EXPIRED_CODES

    seen: list[dict[str, Any]] = []
    creds = nuxeo.uploads.refresh_token(
        batch, token_callback=lambda b, c: seen.append(c)
    )
    assert seen == [creds]
    assert batch.extraInfo["awsSecretKeyId"] == creds["awsSecretKeyId"]
    assert "ETag" in put_small(batch)


def test_chunked_client_upload_survives_expiry(
    make_nuxeo: Callable[..., Nuxeo], short_ttl_sandbox: Sandbox, tmp_path: Path
) -> None:
    nuxeo = make_nuxeo(short_ttl_sandbox.info)
    path = write_file(tmp_path, "big.bin", 5 * 1024 * 1024 + 1000)
    batch = nuxeo.uploads.batch(handler="s3")
    # Sleep past the credentials' lifetime after the first part: botocore must refresh.
    uploader = batch.get_uploader(
        FileBlob(str(path)),
        chunked=True,
        chunk_size=5 * 1024 * 1024,
        callback=lambda up: (
            time.sleep(3.5) if len(up.blob.uploadedChunkIds) == 1 else None
        ),
    )
    uploader.upload()
    batch.complete()
    assert batch.get(0).size == path.stat().st_size


# -- handler order and shutdown ----------------------------------------------------------------


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_default_handler_first_and_clean_stop(make_nuxeo: Callable[..., Nuxeo]) -> None:
    sandbox = Sandbox(default_handler_first=True).start()
    try:
        nuxeo = make_nuxeo(sandbox.info)
        with pytest.raises(InvalidUploadHandler):
            nuxeo.uploads.batch(handler="s3")
        # nxup can still create an s3 batch by calling the endpoint itself.
        answer = nuxeo.client.request("POST", "api/v1/upload/new/s3").json()
        assert answer["provider"] == "s3" and answer["extraInfo"]["awsSessionToken"]

        assert sandbox.s3.process is not None
        weed = psutil.Process(sandbox.s3.process.pid)
        processes = [weed, *weed.children(recursive=True)]
        ports = [sandbox.nuxeo.port, *sandbox.s3.ports.values()]
        data_dir = Path(sandbox.info.data_dir)
        assert (data_dir / "nuxeo.db").stat().st_mode & 0o777 == 0o600
    finally:
        sandbox.stop()

    for process in processes:
        assert not process.is_running()
    assert not any(port_is_open(port) for port in ports)
    assert not data_dir.exists()


def test_seaweed_starts_on_new_ports_when_one_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process binding a port between its choice and SeaweedFS's bind costs a retry."""
    import sandbox.weed as weed_module
    from sandbox.s3 import SeaweedS3

    choose_ports = weed_module.free_ports
    chosen: list[list[int]] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        def first_choice_collides(count: int) -> list[int]:
            ports = choose_ports(count)
            if not chosen:
                ports[weed_module._PORT_FLAGS.index("filer.port")] = taken
            chosen.append(ports)
            return ports

        monkeypatch.setattr(weed_module, "free_ports", first_choice_collides)
        with SeaweedS3() as s3:
            s3.admin_client().put_object(Bucket=s3.bucket, Key="k", Body=b"x")
            assert (
                s3.admin_client().get_object(Bucket=s3.bucket, Key="k")["Body"].read()
                == b"x"
            )
            assert taken not in s3.ports.values()
    assert len(chosen) == 2
