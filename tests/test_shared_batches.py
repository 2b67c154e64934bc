"""Small files share upload batches: each file its own index of a batch, every document with
exactly its file's bytes, and every batch dropped once no file of it is left, in one run or
across two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import MIB, EventLog, assert_document_holds, assert_object_is, info_of, write
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed
from engine.nuxeo_batch import BatchInfo
from engine.shared_batches import SharedBatches
from sandbox import NuxeoServer, Sandbox, SandboxInfo


@pytest.fixture
def server_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    """The end-to-end tests here run with stock batch credentials and with permissive ones."""
    return info_of(sandbox, policy_server)


def fake_batch(batch_id: str) -> BatchInfo:
    return BatchInfo(batch_id=batch_id, provider="s3", location=None, base_key="upload/",  # type: ignore[arg-type]
                     credentials=None)  # type: ignore[arg-type]


def make_shared(capacity: int) -> tuple[SharedBatches, list[str]]:
    made: list[str] = []

    def new_batch() -> BatchInfo:
        made.append(f"b{len(made)}")
        return fake_batch(made[-1])

    return SharedBatches(new_batch=new_batch, credentials_for=lambda b: object(), capacity=capacity), made  # type: ignore[arg-type,return-value]


def test_files_take_the_next_index_until_the_batch_is_full() -> None:
    shared, made = make_shared(capacity=2)
    slots = [shared.take(holder) for holder in range(5)]
    assert [(s.batch.batch_id, s.file_idx) for s in slots] == [
        ("b0", 0), ("b0", 1), ("b1", 0), ("b1", 1), ("b2", 0)]
    assert made == ["b0", "b1", "b2"]
    assert slots[0].credentials is slots[1].credentials  # one set of credentials per batch


def test_a_batch_is_dropped_only_when_no_file_of_it_is_left_and_it_takes_no_more() -> None:
    shared, _ = make_shared(capacity=2)
    for holder in range(3):
        shared.take(holder)  # b0: 0, 1 (full, closed); b1: 2 (open)
    assert not shared.release(0, "b0", more_coming=False)  # file 1 still uses it
    assert shared.release(1, "b0", more_coming=False)
    # The open batch stays while files wait for a batch, and goes when none do.
    assert not shared.release(2, "b1", more_coming=True)
    assert shared.close() == ["b1"]
    assert shared.take(3).batch.batch_id == "b2"  # a new run of files gets a new batch
    assert shared.release(3, "b2", more_coming=False)
    # A batch this run did not hand out (a resumed file's, or a large file's own): the caller
    # decides from the journal.
    assert shared.release(9, "elsewhere", more_coming=True)


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        make_shared(capacity=0)


def journal_batches(manager: Any, file_ids: list[int]) -> dict[int, tuple[str, int]]:
    records = {i: manager.store.get(i) for i in file_ids}
    return {i: (r.batch_id, r.file_idx) for i, r in records.items()}


def batch_exists(server: NuxeoServer, batch_id: str) -> bool:
    return server.store.batches.get(batch_id, touched_after=0) is not None


def test_small_files_share_batches_and_each_document_holds_its_own_bytes(
        make_manager: Callable[..., tuple[Any, EventLog]], sandbox: Sandbox, policy_server: NuxeoServer,
        nuxeo: Nuxeo, s3_admin: Any, target_folder: str, tmp_path: Path) -> None:
    manager, events = make_manager(files_per_batch=3)
    contents = {}
    for index in range(7):
        path = tmp_path / f"small-{index}.txt"
        contents[path] = write(path, 1000 + index)
    big = tmp_path / "big.bin"
    contents[big] = write(big, 6 * MIB)  # multipart: a batch of its own
    ids = manager.add(sorted(contents), target_folder).file_ids
    assert manager.wait(timeout=60)
    assert not events.of(FileFailed)
    placed = journal_batches(manager, ids)
    by_path = {manager.store.get(i).path: placed[i] for i in ids}
    big_batch = by_path.pop(str(big))
    small_batches = {batch for batch, _ in by_path.values()}
    assert len(small_batches) == 3 and big_batch[0] not in small_batches and big_batch[1] == 0
    for batch in small_batches:
        indexes = sorted(idx for b, idx in by_path.values() if b == batch)
        assert indexes == list(range(len(indexes)))
    completed = {e.path: e for e in events.of(FileCompleted)}
    assert len(completed) == len(contents)
    for path, content in contents.items():
        record = manager.store.get(completed[str(path)].file_id)
        assert_object_is(s3_admin, bucket=sandbox.info.bucket, key=record.object_key, content=content)
        assert_document_holds(nuxeo, completed[str(path)].document_uid, name=path.name, content=content)
    manager.shutdown(timeout=10)
    assert not any(batch_exists(policy_server, batch) for batch in [*small_batches, big_batch[0]])


def test_a_shared_batch_outlives_a_run_for_the_files_still_using_it(
        make_manager: Callable[..., tuple[Any, EventLog]], policy_server: NuxeoServer, nuxeo: Nuxeo,
        target_folder: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    # One file at a time, slowly: the run stops with the batch's first file done and its second
    # one batched, both in one batch.
    first, events = make_manager(state_dir=state, files_per_batch=10, workers=1, max_active_files=2,
                                 bandwidth_limit=256 * 1024)
    contents = {}
    for index in range(4):
        path = tmp_path / f"doc-{index}.txt"
        contents[path] = write(path, 200 * 1024)
    ids = first.add(sorted(contents), target_folder).file_ids
    events.wait_for(FileCompleted, timeout=30)
    first.shutdown(timeout=10)
    placed = journal_batches(first, ids)
    done = [i for i in ids if events.of(FileCompleted, i)]
    unfinished_in_batch = [i for i in ids if i not in done and placed[i][0] is not None]
    assert done and unfinished_in_batch, placed
    shared_batch = placed[unfinished_in_batch[0]][0]
    assert placed[done[0]][0] == shared_batch
    assert batch_exists(policy_server, shared_batch)  # kept for the file that still needs it

    second, events2 = make_manager(state_dir=state, files_per_batch=10)
    assert sorted(second.load_unfinished()) == sorted(i for i in ids if i not in done)
    assert second.wait(timeout=60)
    assert not events2.of(FileFailed)
    second.shutdown(timeout=10)
    completions = {e.path: e for e in [*events.of(FileCompleted), *events2.of(FileCompleted)]}
    assert len(completions) == len(contents) == len(events.of(FileCompleted)) + len(events2.of(FileCompleted))
    for path, content in contents.items():
        assert_document_holds(nuxeo, completions[str(path)].document_uid, name=path.name, content=content)
    batches = {batch for batch, _ in journal_batches(second, ids).values()}
    assert not any(batch_exists(policy_server, batch) for batch in batches)
