"""Dropped connections in the middle of a part: the upload goes on, the bytes shown are bytes
sent, and S3 ends up with exactly the file. A TCP proxy between nxup and the S3 server cuts the
first connections that carry a body, the way a flaky network does."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nuxeo.client import Nuxeo

from conftest import MIB, assert_document_holds, assert_object_is, multipart_uploads
from engine.events import FileCompleted, FileFailed, FileProgress, PartCompleted
from sandbox import Sandbox


class CuttingProxy:
    """Forwards 127.0.0.1:port to the S3 server; the first `cuts` connections that send more
    than `cut_after` bytes upstream are closed abruptly at that point."""

    def __init__(self, upstream_port: int, *, cuts: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cuts_left = cuts
        self.cut_after = cut_after
        self.cut = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _should_cut(self, sent: int) -> bool:
        with self._lock:
            if self.cuts_left > 0 and sent > self.cut_after:
                self.cuts_left -= 1
                self.cut += 1
                return True
            return False

    def _pump(self, source: socket.socket, target: socket.socket, upstream_bound: bool) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
                sent += len(data)
                if upstream_bound and self._should_cut(sent):
                    # An abrupt close (RST), as when a link drops.
                    for sock in (source, target):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    break
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def proxy(sandbox: Sandbox) -> Iterator[CuttingProxy]:
    upstream = int(sandbox.s3.endpoint.rsplit(":", 1)[1])
    cutting = CuttingProxy(upstream, cuts=2, cut_after=2 * MIB)
    sandbox.nuxeo.advertised_s3_endpoint = f"http://127.0.0.1:{cutting.port}"
    yield cutting
    sandbox.nuxeo.advertised_s3_endpoint = None
    cutting.close()


def test_parts_cut_mid_body_are_sent_again_and_the_file_lands(
    sandbox: Sandbox, proxy: CuttingProxy, make_manager: Any, target_folder: str, nuxeo: Nuxeo,
    tmp_path: Path, s3_admin: Any,
) -> None:
    content = os.urandom(13 * MIB + 321)
    path = tmp_path / "flaky.bin"
    path.write_bytes(content)
    manager, events = make_manager(workers=2)
    manager.add([path], target_folder)
    assert manager.wait(timeout=120)

    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    assert proxy.cut == 2, "the proxy should have cut two uploads mid-body"
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
