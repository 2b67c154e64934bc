"""Dropped connections in the middle of a part: the upload goes on, the bytes shown are bytes
sent, and S3 ends up with exactly the file. A fault proxy between nxup and the S3 server cuts the
first two requests that carry more than 2 MiB, after 2 MiB, the way a flaky network does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MIB, assert_document_holds, assert_object_is, multipart_uploads
from faultproxy import Fault, FaultKind, FaultProxy, Flavor, RequestHead, ScriptedFaults
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed, FileProgress, PartCompleted
from sandbox import Sandbox


def carries_more_than_2_mib(head: RequestHead) -> bool:
    return head.content_length > 2 * MIB


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[FaultProxy]:
    cut = Fault(FaultKind.RESET_REQUEST, after_bytes=2 * MIB)
    cutting = FaultProxy(sandbox.s3.endpoint.removeprefix("http://"), flavor=Flavor.S3,
                         policy=ScriptedFaults([(carries_more_than_2_mib, cut)] * 2))
    sandbox.nuxeo.advertised_s3_endpoint = cutting.url
    yield cutting
    sandbox.nuxeo.advertised_s3_endpoint = None
    cutting.close()


def test_parts_cut_mid_body_are_sent_again_and_the_file_lands(
    sandbox: Sandbox, proxy: FaultProxy, make_manager: Any, target_folder: str, nuxeo: Nuxeo,
    tmp_path: Path, s3_admin: Any,
) -> None:
    content = os.urandom(13 * MIB + 321)
    path = tmp_path / "flaky.bin"
    path.write_bytes(content)
    manager, events = make_manager(workers=2)
    manager.add([path], target_folder)
    assert manager.wait(timeout=120)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    assert proxy.counts[FaultKind.RESET_REQUEST] == 2, "the proxy should have cut two uploads mid-body"
    completed = events.of(FileCompleted)[0]
    record = manager.store.get(completed.file_id)
    assert_object_is(s3_admin, bucket=sandbox.info.bucket, key=record.object_key, content=content)
    assert_document_holds(nuxeo, completed.document_uid, name="flaky.bin", content=content)
    # Each part is acknowledged once; progress never counts more bytes than the file has.
    numbers = [e.number for e in events.of(PartCompleted)]
    assert sorted(numbers) == [1, 2, 3]
    progress = events.of(FileProgress)
    assert progress and all(e.sent <= e.size for e in progress)
    assert not [u for u in multipart_uploads(s3_admin, bucket=sandbox.info.bucket) if u["Key"] == record.object_key]


def test_the_bandwidth_cap_holds_on_the_wire(
    sandbox: Sandbox, make_manager: Any, target_folder: str, nuxeo: Nuxeo, tmp_path: Path,
) -> None:
    """The cap measured from bytes S3 really received over time, not from the limiter's clock."""
    content = os.urandom(12 * MIB)
    path = tmp_path / "capped.bin"
    path.write_bytes(content)
    manager, events = make_manager(bandwidth_limit=4 * MIB)
    manager.add([path], target_folder)
    assert manager.wait(timeout=60)
    samples = [(arrived, e.sent) for arrived, e in events.entries if isinstance(e, FileProgress)]
    assert len(samples) > 10
    (t0, sent0), (t1, sent1) = samples[0], samples[-1]
    rate = (sent1 - sent0) / (t1 - t0)
    assert 2.5 * MIB < rate < 4.6 * MIB, f"{rate / MIB:.2f} MiB/s under a 4 MiB/s cap"
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name="capped.bin", content=content)
