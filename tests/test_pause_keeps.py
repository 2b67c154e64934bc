"""What a pause and a crash keep under a bandwidth cap: bytes S3 acknowledged never go back, fewer
parts are in flight than there are workers, a pause says what it dropped, and after a SIGKILL
`nxup resume` sends again at most the parts that were in flight (the proxy counts what S3 got)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    EventLog,
    Proxies,
    assert_document_holds,
    assert_landed,
    info_of,
    kill_after_first_part,
    nxup_env,
    run_nxup,
    start_nxup,
    write,
)
from nuxeo.client import Nuxeo

from engine.events import FilePaused, FileProgress, FileStarted, PartCompleted
from sandbox import NuxeoServer, Sandbox, SandboxInfo

WORKERS = 4
PART = 5 * MIB
CAP = 8 * MIB  # parts start while those in flight hold less than a second of it: 2 parts of 5 MiB
MOST_IN_FLIGHT = -(-CAP // PART)


@pytest.fixture
def server_info(policy_server: NuxeoServer, sandbox: Sandbox) -> SandboxInfo:
    """Pause and crash run with stock batch credentials (PutObject only) and permissive ones."""
    return info_of(sandbox, policy_server)


@pytest.fixture
def proxied_server(policy_server: NuxeoServer) -> NuxeoServer:
    return policy_server


def acknowledged_in_order(events: EventLog, file_id: int) -> list[int]:
    """The acknowledged bytes each event told, in the order they came."""
    told = []
    for _, event in events.entries:
        if event.file_id != file_id:
            continue
        if isinstance(event, (FileProgress, FilePaused)):
            told.append(event.acknowledged)
        elif isinstance(event, FileStarted):
            told.append(event.bytes_already_done)
    return told


def test_pause_and_resume_under_a_cap_never_take_acknowledged_bytes_back(
    make_manager: Any, nuxeo: Nuxeo, s3_admin: Any, target_folder: str, tmp_path: Path
) -> None:
    manager, events = make_manager(workers=WORKERS, part_size=PART, single_upload_limit=PART, bandwidth_limit=CAP,
                                   progress_interval_s=0.05)
    path = tmp_path / "capped.bin"
    content = write(path, 6 * PART)
    (file_id,) = manager.add([path], target_folder).file_ids
    events.wait_for(PartCompleted, file_id=file_id)
    manager.pause(file_id)
    _, paused = events.wait_for(FilePaused, file_id=file_id, timeout=10)
    acknowledged_parts = {e.number for _, e in events.entries if isinstance(e, PartCompleted)}
    assert paused.acknowledged == PART * len(acknowledged_parts)
    manager.resume(file_id)
    assert manager.wait(timeout=60)
    assert_landed(manager, events, nuxeo, s3_admin, path, content=content)

    told = acknowledged_in_order(events, file_id)
    assert told == sorted(told), told
    in_flight = [len(e.parts_in_flight) for e in events.of(FileProgress, file_id)]
    assert max(in_flight) <= MOST_IN_FLIGHT < WORKERS, in_flight
    assert all(e.in_flight == sum(p.sent for p in e.parts_in_flight) for e in events.of(FileProgress, file_id))


def test_a_crash_under_a_cap_sends_again_at_most_the_parts_in_flight(
    proxies: Proxies, target_folder: str, nuxeo: Nuxeo, tmp_path: Path
) -> None:
    path = tmp_path / "crash.bin"
    content = write(path, 6 * PART)
    env = nxup_env(proxies.info, tmp_path / "state")
    cap = ["--workers", str(WORKERS), "--part-size", "5MiB", "--single-limit", "5MiB", "--limit", "8MiB/s"]
    output = start_nxup(["upload", str(path), "--to", target_folder, "--no-tui", *cap], env)
    kill_after_first_part(output)
    in_flight = [len(e["parts_in_flight"]) for e in output.events if e["event"] == "progress"]
    assert in_flight and max(in_flight) <= MOST_IN_FLIGHT, in_flight

    resumed = run_nxup(["resume", "--no-tui", "--json"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (done,) = [e for e in map(json.loads, resumed.stdout.splitlines()) if e["event"] == "completed"]
    assert_document_holds(nuxeo, done["document_uid"], name=path.name, content=content)
    # Every body byte S3 got, both runs: the file once, plus what the crash cut short (the
    # joining request's few hundred bytes of XML aside).
    sent_again = proxies.s3.wire.total - len(content)
    assert 0 <= sent_again <= MOST_IN_FLIGHT * PART + 64 * 1024, sent_again / MIB
