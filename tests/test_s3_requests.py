"""How the engine's S3 client sends bodies, through SeaweedFS: large blocks, and no wait for
`100 Continue` before a small body (a round trip per small file)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.bandwidth import BandwidthLimiter
from engine.credentials import BatchCredentials, CredentialSet, signing_with
from engine.s3 import EXPECT_CONTINUE_FROM, SEND_BLOCK_SIZE, S3Clients, S3Location, S3Tuning
from engine.slices import FileSlice, PartCounter, TransferControl
from sandbox.core import Sandbox

KIB = 1024


class SentBodies:
    """The reads each body had while it was sent, and the Expect header of each request."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: list[int] = []
        self.expects: list[Any] = []
        read = FileSlice.read

        def counted(body: FileSlice, amount: int | None = -1) -> bytes:
            data = read(body, amount)
            if body._transferring and data:
                self.reads.append(len(data))
            return data

        monkeypatch.setattr(FileSlice, "read", counted)

    def on_send(self, request: Any, **_: Any) -> None:
        self.expects.append(request.headers.get("Expect"))


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[Any]:
    s3 = sandbox.s3
    keys = CredentialSet(s3.access_key_id, s3.secret_access_key, "", datetime.now(UTC) + timedelta(hours=1))
    clients = S3Clients(S3Tuning())
    location = S3Location(bucket=s3.bucket, region="us-east-1", endpoint=s3.endpoint, path_style=True,
                          accelerate=False)
    with signing_with(BatchCredentials.create(keys, lambda: keys)):
        yield clients.client(location)
    clients.close()


def _put(client: Any, bucket: str, path: Path, key: str) -> None:
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        body = FileSlice(fd, offset=0, size=size, counter=PartCounter(1, size), control=TransferControl(),
                         limiter=BandwidthLimiter(None))
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=size,
                          ChecksumAlgorithm="CRC32")
    finally:
        os.close(fd)


def test_bodies_go_in_large_blocks_and_only_large_ones_wait_for_continue(
    client: Any, sandbox: Sandbox, s3_admin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = SentBodies(monkeypatch)
    client.meta.events.register("before-send.s3", sent.on_send)
    bucket = sandbox.s3.bucket
    small, large = tmp_path / "small", tmp_path / "large"
    small.write_bytes(os.urandom(64 * KIB))
    large.write_bytes(os.urandom(EXPECT_CONTINUE_FROM + 3 * SEND_BLOCK_SIZE + 5))

    _put(client, bucket, small, "requests/small")
    assert sent.reads == [64 * KIB] and sent.expects == [None]
    sent.reads.clear()
    _put(client, bucket, large, "requests/large")
    assert sent.reads == [SEND_BLOCK_SIZE] * 7 + [5] and sent.expects[-1] == b"100-continue"

    for path, key in ((small, "requests/small"), (large, "requests/large")):
        assert s3_admin.get_object(Bucket=bucket, Key=key)["Body"].read() == path.read_bytes()
