"""What makes many small files fast, checked end to end: a slow Nuxeo request never holds an S3
worker, and a small file's journal takes few writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import MIB, EventLog, assert_document_holds, info_of, write
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed
from engine.lifecycle import Stage
from sandbox import NuxeoServer, Sandbox, SandboxInfo


@pytest.fixture
def server_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    """The end-to-end tests here run with stock batch credentials and with permissive ones."""
    return info_of(sandbox, policy_server)


@pytest.fixture
def slow_complete(policy_server: NuxeoServer) -> Iterator[threading.Event]:
    """`/complete` of a multipart upload lasts until the test sets the event, as a real server
    copying a large object takes its time."""
    gate = threading.Event()
    policy_server.multipart_complete_gate = gate
    try:
        yield gate
    finally:
        gate.set()
        policy_server.multipart_complete_gate = None


def test_a_slow_nuxeo_request_does_not_hold_the_s3_worker(
        make_manager: Callable[..., tuple[Any, EventLog]], sandbox: Sandbox, nuxeo: Nuxeo, s3_admin: Any,
        target_folder: str, tmp_path: Path, slow_complete: threading.Event) -> None:
    manager, events = make_manager(workers=1, nuxeo_workers=2)
    big = tmp_path / "big.bin"
    big_content = write(big, 6 * MIB)
    smalls = {tmp_path / f"small-{i}.txt": write(tmp_path / f"small-{i}.txt", 2000 + i) for i in range(3)}
    (big_id,) = manager.add([big], target_folder).file_ids
    small_ids = manager.add(sorted(smalls), target_folder).file_ids

    def on_s3(file_id: int) -> bool:
        record = manager.store.get(file_id)
        return record.stage not in (Stage.NEW, Stage.BATCHED, Stage.SENDING)

    # The one S3 worker joins the big file's parts, hands its `/complete` (held until the gate
    # opens) to a Nuxeo worker and sends the small files meanwhile.
    deadline = time.monotonic() + 60
    while not all(on_s3(i) for i in small_ids):
        assert time.monotonic() < deadline, "the small files waited for the big file's /complete"
        time.sleep(0.02)
    assert not events.of(FileCompleted, big_id)
    slow_complete.set()
    assert manager.wait(timeout=60)
    assert not events.of(FileFailed)
    completed = {e.path: e for e in events.of(FileCompleted)}
    for path, content in [*smalls.items(), (big, big_content)]:
        assert_document_holds(nuxeo, completed[str(path)].document_uid, name=path.name, content=content)


def test_a_small_file_is_journaled_in_four_writes(
        make_manager: Callable[..., tuple[Any, EventLog]], nuxeo: Nuxeo, target_folder: str,
        tmp_path: Path) -> None:
    """Before the batch and the first byte; the object on S3 with the intent to register it;
    registered with the intent to create the document (and its key); the document made."""
    manager, events = make_manager()
    writes: list[tuple[int, dict[str, Any]]] = []
    update = manager.store.update

    def counted(record_id: int, **fields: Any) -> None:
        writes.append((record_id, fields))
        update(record_id, **fields)

    manager.store.update = counted
    path = tmp_path / "note.txt"
    content = write(path, 4321)
    (file_id,) = manager.add([path], target_folder).file_ids
    assert manager.wait(timeout=30)
    assert not events.of(FileFailed)
    stages = [fields.get("stage") for record_id, fields in writes if record_id == file_id]
    assert stages == [Stage.SENDING, Stage.REGISTERING, Stage.CREATING_DOCUMENT, Stage.DOCUMENTED], writes
    (completed,) = events.of(FileCompleted)
    assert_document_holds(nuxeo, completed.document_uid, name=path.name, content=content)
    record = manager.store.get(file_id)
    assert record.stage is Stage.DOCUMENTED and record.etag and record.document_key and record.doc_uid


@pytest.mark.parametrize("bundle", [None, "/etc/ssl/certs/site-bundle.pem"])
@pytest.mark.parametrize("url", ["https://nuxeo.example.com/nuxeo", "https://intranet.local/nuxeo"])
def test_the_environment_is_read_once_with_the_same_outcome_as_requests(
        monkeypatch: pytest.MonkeyPatch, url: str, bundle: str | None) -> None:
    """Proxies and CA bundle are read from the environment when the client is made, not on
    every request, and give each request what requests itself would have given it."""
    import requests

    from engine.nuxeo_batch import NuxeoBatchClient, ServerConnection

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", ".local")
    if bundle:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    session = NuxeoBatchClient(ServerConnection(url=url, user="u", password="p")).nuxeo.client._session
    expected = requests.Session().merge_environment_settings(url, {}, True, True, None)
    monkeypatch.setenv("HTTPS_PROXY", "http://changed.example:1")  # read once: later changes are not seen
    assert session.merge_environment_settings(url, {}, True, True, None) == expected
    assert not session.trust_env


def test_a_queued_files_control_holds_no_event_until_waited_on_and_wakes_its_waiter() -> None:
    """Queued files cost little memory: a file's stop flag makes its wake-up event only when
    something waits on it, and an interrupt before or during the wait still wakes the waiter."""
    import threading

    from engine.slices import TransferControl

    control = TransferControl()
    assert control._event is None
    control.interrupt("pause")
    assert control.wait(5.0)  # interrupted before the wait: returns at once
    control.clear()
    assert not control.wait(0.01)
    waiting = TransferControl()
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(waiting.wait(30.0)))
    waiter.start()
    while waiting._event is None:
        threading.Event().wait(0.001)
    waiting.interrupt("cancel")
    waiter.join(timeout=5)
    assert woken == [True]


def test_a_request_still_running_on_the_server_is_a_clear_error() -> None:
    """409 for an Idempotency-Key whose first request still runs: a one-line reason, not an
    AttributeError from the client's exception (it carries no message)."""
    from nuxeo.exceptions import OngoingRequestError

    from engine.errors import ServerError, translate_nuxeo_error

    error = translate_nuxeo_error(OngoingRequestError("key-1"), action="creating the document")
    assert isinstance(error, ServerError) and error.retryable
    assert str(error).startswith("Nuxeo is still running the same request sent earlier while creating the document")


def test_a_queued_file_makes_its_part_containers_only_when_used() -> None:
    """With 100,000 files queued, empty containers per file would weigh some 25 MB: they are made
    on first use, once even when threads reach for one at the same moment."""
    from engine.records import UploadRecord
    from engine.transfer import FileTransfer

    def queued(n: int) -> FileTransfer:
        return FileTransfer(record=UploadRecord(id=n, path=f"/f{n}", server_url="http://x", target="/t"), sequence=n)

    transfer = queued(1)
    assert (transfer._done, transfer._in_flight, transfer._pending, transfer._unsaved) == (None, None, None, None)
    transfer.pending.append(3)
    assert transfer.pending == [3] and transfer._done is None

    transfers = [queued(n) for n in range(2, 302)]
    start = threading.Barrier(8)

    def reach(worker: int) -> None:
        start.wait()
        for each in transfers:
            each.in_flight[worker] = worker  # type: ignore[assignment]

    threads = [threading.Thread(target=reach, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(sorted(each.in_flight) == list(range(8)) for each in transfers)
