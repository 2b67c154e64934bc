"""Small objects sent by a direct PUT (`engine.s3_direct_put`): addressed as botocore addresses
them, accepted by SeaweedFS with a batch's own credentials, and handed to botocore whenever the
direct PUT is not answered 200."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from conftest import EventLog, assert_landed, info_of, write
from nuxeo.client import Nuxeo

from engine.bandwidth import BandwidthLimiter
from engine.credentials import BatchCredentials, CredentialSet, signing_with
from engine.s3 import ChecksumAlgorithm, S3Clients, S3Location, S3Tuning
from engine.s3_direct_put import DIRECT_PUT_BELOW, DirectPut
from engine.slices import FileSlice, PartCounter, TransferControl
from sandbox import NuxeoServer, SandboxInfo
from sandbox.core import Sandbox

KEYS = CredentialSet("AKIDEXAMPLE", "secret", "session-token", datetime.now(UTC) + timedelta(hours=1))


class _EmptyBody:
    def stream(self) -> Iterator[bytes]:
        yield b""


class _Sent:
    """What botocore would have sent, caught before it leaves."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.headers: dict[str, str] = {}

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.url = request.url
        self.headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        return AWSResponse(request.url, 200, {"ETag": '"x"'}, _EmptyBody())


@pytest.fixture
def server_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    """The end-to-end tests here run with stock batch credentials and with permissive ones."""
    return info_of(sandbox, policy_server)


@pytest.fixture
def clients() -> Iterator[S3Clients]:
    clients = S3Clients(S3Tuning())
    yield clients
    clients.close()


@pytest.mark.parametrize(
    "location",
    [
        S3Location(bucket="docs", region="eu-west-3", endpoint=None, path_style=False, accelerate=False),
        S3Location(bucket="docs.example", region="us-east-1", endpoint=None, path_style=True, accelerate=False),
        S3Location(bucket="docs", region="us-east-1", endpoint="http://127.0.0.1:8333", path_style=True,
                   accelerate=False),
        S3Location(bucket="docs", region="us-west-2", endpoint=None, path_style=False, accelerate=True),
    ],
    ids=["virtual-host", "path-style", "custom-endpoint", "accelerate"],
)
@pytest.mark.parametrize("key", ["prefix/batch-1/0", "tricky/a b+c%d=é~ü!'()*.txt"])
def test_the_object_url_is_the_one_botocore_sends_to(clients: S3Clients, location: S3Location, key: str) -> None:
    client = clients.client(location)
    sent = _Sent()
    client.meta.events.register_first("before-send.s3.PutObject", sent)
    with signing_with(BatchCredentials.create(KEYS, lambda: KEYS)):
        client.put_object(Bucket=location.bucket, Key=key, Body=b"data")
        client.meta.events.unregister("before-send.s3.PutObject", sent)
        direct = DirectPut.for_client(client)
        assert direct is not None
        assert direct.object_url(location.bucket, key) == sent.url


def test_the_request_is_signed_as_botocore_signs_a_put(clients: S3Clients, tmp_path: Path) -> None:
    """Same URL, credential scope, session token and unsigned payload as botocore's own PUT."""
    location = S3Location(bucket="docs", region="eu-west-3", endpoint=None, path_style=False, accelerate=False)
    client = clients.client(location)
    botocore_sent = _Sent()
    client.meta.events.register_first("before-send.s3.PutObject", botocore_sent)
    path = tmp_path / "a.txt"
    content = write(path, 1000)
    credentials = BatchCredentials.create(KEYS, lambda: KEYS)
    with signing_with(credentials):
        client.put_object(Bucket="docs", Key="k/a.txt", Body=content, ChecksumAlgorithm="CRC32")
        client.meta.events.unregister("before-send.s3.PutObject", botocore_sent)
        direct = DirectPut.for_client(client)
        assert direct is not None
        url = direct.object_url("docs", "k/a.txt")
    direct_sent = _Sent()
    direct._http_session = type("Session", (), {"send": staticmethod(direct_sent)})()
    fd = os.open(path, os.O_RDONLY)
    try:
        body = FileSlice(fd, offset=0, size=len(content), counter=PartCounter(1, len(content)),
                         control=TransferControl(), limiter=BandwidthLimiter(None))
        etag = direct.put(url=url, body=body, content_type="text/plain", algorithm=ChecksumAlgorithm.CRC32,
                          credentials=credentials.get_frozen_credentials())
    finally:
        os.close(fd)
    assert etag == '"x"'
    assert direct_sent.url == botocore_sent.url
    theirs, ours = botocore_sent.headers, direct_sent.headers
    # botocore sends the checksum in a trailer, the direct PUT in a header: both leave the
    # payload unsigned (`payload_signing_enabled=False`).
    assert "UNSIGNED-PAYLOAD" in theirs["X-Amz-Content-SHA256"]
    assert ours["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert ours["X-Amz-Security-Token"] == theirs["X-Amz-Security-Token"] == "session-token"
    scope = theirs["Authorization"].split("Credential=")[1].split(",")[0]
    assert scope.endswith("/eu-west-3/s3/aws4_request") and f"Credential={scope}," in ours["Authorization"]
    assert "x-amz-checksum-crc32" in ours["Authorization"].split("SignedHeaders=")[1]


def test_small_files_go_by_direct_put_with_the_batch_credentials(
    make_manager: Callable[..., tuple[Any, EventLog]], sandbox: Sandbox, nuxeo: Nuxeo, s3_admin: Any,
    target_folder: str, tmp_path: Path,
) -> None:
    manager, events = make_manager()
    sizes = [0, 1, 1000, 64 * 1024, DIRECT_PUT_BELOW - 1, DIRECT_PUT_BELOW]
    contents = {tmp_path / f"f{i}.bin": write(tmp_path / f"f{i}.bin", size) for i, size in enumerate(sizes)}
    ids = manager.add(sorted(contents), target_folder).file_ids
    assert manager.wait(timeout=60)
    for file_id, path in zip(ids, sorted(contents), strict=True):
        assert_landed(manager, events, nuxeo, s3_admin, file_id, content=contents[path])
    # Every file under the limit went by a direct PUT, and S3 took each at once; the one at the
    # limit went through botocore.
    assert (manager.direct_puts, manager.direct_puts_declined) == (len(sizes) - 1, 0)


def test_a_direct_put_s3_refuses_is_sent_through_botocore(
    make_manager: Callable[..., tuple[Any, EventLog]], sandbox: Sandbox, nuxeo: Nuxeo, s3_admin: Any,
    target_folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A direct PUT whose checksum does not match the bytes (as if corrupted on the way) is
    refused by S3 (BadDigest); botocore then sends the file, and the object holds its bytes."""
    import engine.s3_direct_put as direct_put

    real = direct_put._checksum_headers

    def corrupted(algorithm: ChecksumAlgorithm, data: bytes) -> dict[str, str] | None:
        return real(algorithm, hashlib.sha256(data).digest())

    monkeypatch.setattr(direct_put, "_checksum_headers", corrupted)
    manager, events = make_manager()
    path = tmp_path / "refused.txt"
    content = write(path, 5000)
    (file_id,) = manager.add([path], target_folder).file_ids
    assert manager.wait(timeout=60)
    assert_landed(manager, events, nuxeo, s3_admin, file_id, content=content)
    assert (manager.direct_puts, manager.direct_puts_declined) == (0, 1)
