"""Uploads that outlive their batch's temporary S3 credentials (a sandbox whose credentials last
3 seconds): the engine refreshes them through Nuxeo and the upload completes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    EventLog,
    Sandboxes,
    Served,
    assert_landed,
    new_target_folder,
    write,
)
from nuxeo.client import Nuxeo

from engine.events import (
    FilePaused,
    FileStarted,
    PartCompleted,
)
from sandbox import AccessPolicy

TTL_S = 3


@pytest.fixture(params=list(AccessPolicy), ids=str)
def short_lived(request: pytest.FixtureRequest, sandboxes: Sandboxes) -> Served:
    """A server whose batch credentials last 3 s, with stock and with permissive ones."""
    return sandboxes.server(credential_ttl_s=TTL_S, policy=request.param)


@pytest.fixture
def client(short_lived: Served, make_nuxeo: Callable[..., Nuxeo]) -> Nuxeo:
    return make_nuxeo(short_lived.info)


def refreshes(sandbox: Served, batch_id: str | None) -> int:
    """How many times the batch's credentials were refreshed (from the server's request log)."""
    lines = sandbox.nuxeo.log_path.read_text(encoding="utf-8").splitlines()
    return sum(f"/upload/{batch_id}/refreshToken" in line for line in lines)


def test_multipart_upload_outlasting_several_credential_lifetimes(
    make_manager: Callable[..., tuple[Any, EventLog]],
    short_lived: Served,
    client: Nuxeo,
    tmp_path: Path,
) -> None:
    # 12 MiB at 1.5 MiB/s (8 s, less the limiter's first burst), one part at a time: the upload
    # lasts more than two credential lifetimes.
    manager, events = make_manager(
        info=short_lived.info, workers=1, bandwidth_limit=3 * MIB // 2
    )
    path = tmp_path / "long.bin"
    content = write(path, 12 * MIB)
    began = time.monotonic()
    (file_id,) = manager.add([path], new_target_folder(client)).file_ids
    assert manager.wait(timeout=60)
    assert time.monotonic() - began > 2 * TTL_S
    assert Counter(e.number for e in events.of(PartCompleted, file_id)) == {
        1: 1,
        2: 1,
        3: 1,
    }
    assert_landed(
        manager, events, client, short_lived.s3.admin_client(), file_id, content=content
    )
    assert refreshes(short_lived, manager.store.get(file_id).batch_id) >= 1


def test_server_without_refresh_token_gives_credentials_through_the_batch(
    make_manager: Callable[..., tuple[Any, EventLog]],
    short_lived: Served,
    client: Nuxeo,
    tmp_path: Path,
) -> None:
    """A server without `refreshToken` (501): new credentials come from the batch's own
    description, which a Nuxeo server mints afresh on every read."""
    short_lived.nuxeo.refresh_token = False
    try:
        manager, events = make_manager(
            info=short_lived.info, workers=1, bandwidth_limit=3 * MIB // 2
        )
        path = tmp_path / "no-refresh.bin"
        content = write(path, 12 * MIB)
        began = time.monotonic()
        (file_id,) = manager.add([path], new_target_folder(client)).file_ids
        assert manager.wait(timeout=60)
    finally:
        short_lived.nuxeo.refresh_token = True
    assert time.monotonic() - began > 2 * TTL_S
    assert_landed(
        manager, events, client, short_lived.s3.admin_client(), file_id, content=content
    )
    batch_id = manager.store.get(file_id).batch_id
    assert refreshes(short_lived, batch_id) >= 1  # asked, answered 501...
    lines = short_lived.nuxeo.log_path.read_text(encoding="utf-8").splitlines()
    assert (
        sum(f"/upload/{batch_id}/info" in line for line in lines) >= 1
    )  # ...then read the batch


def test_credentials_s3_rejects_before_their_stated_expiry_are_refreshed_and_the_call_sent_again(
    make_manager: Callable[..., tuple[Any, EventLog]],
    short_lived: Served,
    client: Nuxeo,
    tmp_path: Path,
) -> None:
    """The server states an expiry an hour later than S3 enforces: the client sees no reason to
    refresh, S3 refuses a part, and the engine refreshes and sends that part again."""
    short_lived.nuxeo.expiration_overstated_s = 3600
    try:
        manager, events = make_manager(
            info=short_lived.info, workers=1, bandwidth_limit=2 * MIB
        )
        path = tmp_path / "overstated.bin"
        content = write(path, 12 * MIB)
        (file_id,) = manager.add([path], new_target_folder(client)).file_ids
        assert manager.wait(timeout=60)
    finally:
        short_lived.nuxeo.expiration_overstated_s = 0.0
    assert manager.credentials_rejected >= 1
    assert Counter(e.number for e in events.of(PartCompleted, file_id)) == {
        1: 1,
        2: 1,
        3: 1,
    }
    assert_landed(
        manager, events, client, short_lived.s3.admin_client(), file_id, content=content
    )


def test_single_upload_outlasting_its_credentials(
    make_manager: Callable[..., tuple[Any, EventLog]],
    short_lived: Served,
    client: Nuxeo,
    tmp_path: Path,
) -> None:
    manager, events = make_manager(info=short_lived.info, bandwidth_limit=1 * MIB)
    path = tmp_path / "slow-single.bin"
    content = write(path, 4 * MIB)
    began = time.monotonic()
    (file_id,) = manager.add([path], new_target_folder(client)).file_ids
    assert manager.wait(timeout=60)
    assert time.monotonic() - began > TTL_S
    assert not events.of(FileStarted, file_id)[0].multipart
    assert_landed(
        manager, events, client, short_lived.s3.admin_client(), file_id, content=content
    )


def test_single_upload_resumed_after_its_credentials_expired(
    make_manager: Callable[..., tuple[Any, EventLog]],
    short_lived: Served,
    client: Nuxeo,
    tmp_path: Path,
) -> None:
    manager, events = make_manager(info=short_lived.info, bandwidth_limit=1 * MIB)
    path = tmp_path / "paused-single.bin"
    content = write(path, 2 * MIB)
    (file_id,) = manager.add([path], new_target_folder(client)).file_ids
    events.wait_for(FileStarted, file_id=file_id)
    manager.pause(file_id)
    events.wait_for(FilePaused, file_id=file_id, timeout=5)
    batch_id = manager.store.get(file_id).batch_id
    time.sleep(
        TTL_S + 0.5
    )  # past the lifetime of the credentials the batch was created with
    manager.resume(file_id)
    assert manager.wait(timeout=30)
    assert_landed(
        manager, events, client, short_lived.s3.admin_client(), file_id, content=content
    )
    # Same batch: fresh credentials came from the server, the upload was not restarted elsewhere.
    assert manager.store.get(file_id).batch_id == batch_id


def test_a_small_file_refused_for_expired_credentials_goes_again_with_fresh_ones(
    make_manager: Callable[..., tuple[Any, EventLog]],
    short_lived: Served,
    client: Nuxeo,
    tmp_path: Path,
) -> None:
    """A file under the direct-PUT limit, sent once its batch's credentials expired while the
    server still states them valid (it waited for the one worker behind a larger file of the
    same batch): S3 refuses the direct PUT, botocore's path gets the same refusal, refreshes the
    credentials through Nuxeo and sends the file, which lands once."""
    short_lived.nuxeo.expiration_overstated_s = 3600
    try:
        manager, events = make_manager(info=short_lived.info, workers=1, bandwidth_limit=1 * MIB)
        big, small = tmp_path / "a-big.bin", tmp_path / "b-small.bin"
        contents = {big: write(big, 4 * MIB), small: write(small, 600 * 1024)}
        file_ids = manager.add([big, small], new_target_folder(client)).file_ids
        assert manager.wait(timeout=60)
    finally:
        short_lived.nuxeo.expiration_overstated_s = 0.0
    assert manager.direct_puts_declined >= 1 and manager.credentials_rejected >= 1
    for file_id, path in zip(file_ids, (big, small), strict=True):
        assert_landed(manager, events, client, short_lived.s3.admin_client(), file_id, content=contents[path])
