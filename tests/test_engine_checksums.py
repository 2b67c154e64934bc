"""Checksums and ETags: a multipart upload keeps the checksum algorithm it was started with
whatever a later run asks for, and `--verify` passes on the right bytes and catches a wrong ETag."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    EventLog,
    assert_document_holds,
    paused_after_first_part,
    write,
)
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed
from engine.s3 import ChecksumAlgorithm

MakeManager = Callable[..., tuple[Any, EventLog]]


@pytest.mark.parametrize(("first", "then"), [
    (ChecksumAlgorithm.SHA256, ChecksumAlgorithm.CRC32),
    (ChecksumAlgorithm.NONE, ChecksumAlgorithm.SHA1),
    (ChecksumAlgorithm.CRC32, ChecksumAlgorithm.NONE),
], ids=str)
def test_resumed_upload_keeps_the_algorithm_it_was_started_with(
    make_manager: MakeManager, nuxeo: Nuxeo, target_folder: str, tmp_path: Path,
    first: ChecksumAlgorithm, then: ChecksumAlgorithm,
) -> None:
    path = tmp_path / "switched.bin"
    content = write(path, 12 * MIB + 7)
    state_dir = tmp_path / "state"
    manager, events = make_manager(state_dir=state_dir, checksum=first, workers=1, bandwidth_limit=8 * MIB)
    file_id = paused_after_first_part(manager, events, path, target_folder)
    manager.shutdown(timeout=10)
    manager.store.close()

    resumed, events = make_manager(state_dir=state_dir, checksum=then)
    resumed.load_unfinished()
    assert resumed.wait(timeout=60)
    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=content)
    record = resumed.store.get(file_id)
    assert record.checksum_algorithm == first.value
    parts = resumed.store.parts(file_id)
    assert set(parts) == {1, 2, 3}
    if first is ChecksumAlgorithm.SHA256:
        expected = base64.b64encode(hashlib.sha256(content[:5 * MIB]).digest()).decode()
        assert parts[1].checksum == expected
    elif first is ChecksumAlgorithm.NONE:
        assert all(part.checksum is None for part in parts.values())
    else:
        assert all(part.checksum for part in parts.values())


@pytest.mark.parametrize("size", [3 * MIB, 12 * MIB + 1], ids=["single", "multipart"])
def test_verify_passes_on_the_right_bytes(make_manager: MakeManager, nuxeo: Nuxeo, target_folder: str,
                                          tmp_path: Path, size: int) -> None:
    path = tmp_path / "verified.bin"
    content = write(path, size)
    manager, events = make_manager(verify_etag=True)
    manager.add([path], target_folder)
    assert manager.wait(timeout=60)
    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]
    (done,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, done.document_uid, name=path.name, content=content)


def test_verify_catches_an_etag_that_is_not_the_files(make_manager: MakeManager, nuxeo: Nuxeo,
                                                      target_folder: str, tmp_path: Path) -> None:
    path = tmp_path / "mismatch.bin"
    write(path, 12 * MIB)
    manager, events = make_manager(verify_etag=True)
    manager._s3.complete_multipart = lambda transfer: '"00000000000000000000000000000000-3"'
    (file_id,) = manager.add([path], target_folder).file_ids
    assert manager.wait(timeout=60)
    (failed,) = events.of(FileFailed, file_id)
    assert "does not match the file" in failed.reason and not failed.retryable
    assert not events.of(FileCompleted)
    assert list(nuxeo.documents.get_children(path=target_folder)) == []
