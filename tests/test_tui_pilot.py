"""The transfer manager's keys, driven with Textual's Pilot, with the real engine uploading to
the sandbox: every binding changes what S3 and Nuxeo hold, not just the screen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    AppEngines,
    assert_document_holds,
    multipart_uploads,
    new_target_folder,
    until,
    write,
)
from nuxeo.client import Nuxeo

from engine.lifecycle import UploadStatus
from engine.manager import TransferManager
from engine.nuxeo_batch import ServerConnection
from engine.state import StateStore
from sandbox import Sandbox
from tui.app import NxupApp
from tui.bridge import EventBridge
from tui.screens.add_files import AddFilesScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.parts import PartsScreen
from tui.screens.stale import StaleScreen

SIZE = (80, 24)


def row_status(app: NxupApp, file_id: int) -> UploadStatus:
    return app.model.rows[file_id].status


def select(app: NxupApp, file_id: int) -> None:
    app.transfers.files.select_file(file_id)  # type: ignore[union-attr]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def accept_completion(
    pilot: Any, field: Any, completed: str, *, timeout: float = 10.0
) -> None:
    """Press → until the path completion (computed in a worker) is there and accepted."""
    deadline = time.monotonic() + timeout
    while field.value != completed:
        assert time.monotonic() < deadline, (
            f"no completion to {completed!r}: {field.value!r}"
        )
        await pilot.press("right")
        await pilot.pause(0.02)


@pytest.fixture
def folder(nuxeo: Nuxeo) -> str:
    return new_target_folder(nuxeo)


def test_pause_and_resume_one_file_then_all(
    sandbox: Sandbox, make_app: Any, tmp_path: Path, folder: str, nuxeo: Nuxeo
) -> None:
    files = {
        name: write(tmp_path / "in" / name, 12 * MIB + 77)
        for name in ("a.bin", "b.bin")
    }
    app = make_app(
        sandbox,
        tmp_path / "state",
        bandwidth_limit=6 * MIB,
        start=lambda m: m.add(sorted((tmp_path / "in").iterdir()), folder),
    )

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: any(
                    r.status is UploadStatus.UPLOADING and r.sent > 0
                    for r in app.model.rows.values()
                ),
                what="an upload",
            )
            file_id = next(
                r.file_id
                for r in app.model.rows.values()
                if r.status is UploadStatus.UPLOADING
            )
            select(app, file_id)
            await pilot.press("space")
            await until(
                pilot,
                lambda: row_status(app, file_id) is UploadStatus.PAUSED,
                what="pause",
            )
            sent = app.manager.snapshot(file_id).sent  # type: ignore[union-attr]
            await pilot.pause(
                0.8
            )  # a window in which nothing may be sent, not a condition
            assert app.manager.snapshot(file_id).sent == sent  # type: ignore[union-attr]
            await pilot.press("space")
            await until(
                pilot,
                lambda: (
                    app.manager.snapshot(file_id).sent > sent  # type: ignore[union-attr]
                    or row_status(app, file_id) is UploadStatus.DONE
                ),
                what="sending again after resume",
            )
            await pilot.press("P")
            await until(
                pilot,
                lambda: all(
                    r.status in (UploadStatus.PAUSED, UploadStatus.DONE)
                    for r in app.model.rows.values()
                ),
                what="pause all",
            )
            assert app.manager.is_idle()
            await pilot.press("R")
            app.manager.set_bandwidth_limit(None)
            await until(
                pilot,
                lambda: all(
                    r.status is UploadStatus.DONE for r in app.model.rows.values()
                ),
                timeout=60,
                what="all done",
            )
            await pilot.press("q")
        assert app.return_code == 0

    run(scenario())
    records = {
        Path(r.path).name: app.manager.store.get(r.file_id)
        for r in app.model.rows.values()
    }
    for name, content in files.items():
        assert_document_holds(
            nuxeo, records[name].doc_uid or "", name=name, content=content
        )  # type: ignore[union-attr]
    keys = {record.object_key for record in records.values() if record is not None}
    assert not [
        u
        for u in multipart_uploads(
            sandbox.s3.admin_client(), bucket=sandbox.info.bucket
        )
        if u["Key"] in keys
    ]


def test_cancel_leaves_the_multipart_upload_to_the_server_and_says_so(
    sandbox: Sandbox, make_app: Any, tmp_path: Path, folder: str
) -> None:
    write(tmp_path / "big.bin", 16 * MIB)
    app = make_app(
        sandbox,
        tmp_path / "state",
        bandwidth_limit=4 * MIB,
        start=lambda m: m.add([tmp_path / "big.bin"], folder),
    )
    s3 = sandbox.s3.admin_client()

    async def scenario() -> tuple[str, str]:
        async with app.run_test(size=SIZE) as pilot:
            file_id = await until(
                pilot,
                lambda: next(
                    (r.file_id for r in app.model.rows.values() if r.sent > 0), None
                ),
                what="upload start",
            )
            record = app.manager.store.get(file_id)
            assert record is not None and record.upload_id
            assert any(
                u["UploadId"] == record.upload_id
                for u in multipart_uploads(s3, bucket=sandbox.info.bucket)
            )
            select(app, file_id)
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(
                pilot,
                lambda: row_status(app, file_id) is UploadStatus.CANCELLED,
                what="cancel",
            )
            await pilot.press("q")
            return record.upload_id, record.object_key or ""

    upload_id, key = run(scenario())
    # The sandbox plays a stock server, whose batch credentials may not abort: the upload is
    # left to the server's clean-up, and the log says so.
    assert [
        u["UploadId"]
        for u in multipart_uploads(s3, bucket=sandbox.info.bucket, prefix=key)
    ] == [upload_id]
    assert any("clean-up" in line and "nxup stale" in line for line in app.model.log), (
        app.model.log
    )
    s3.abort_multipart_upload(Bucket=sandbox.info.bucket, Key=key, UploadId=upload_id)
    assert "Contents" not in s3.list_objects_v2(Bucket=sandbox.info.bucket, Prefix=key)


def test_add_a_file_with_the_path_dialog(
    sandbox: Sandbox, make_app: Any, tmp_path: Path, folder: str, nuxeo: Nuxeo
) -> None:
    content = write(tmp_path / "notes report.txt", 4321)
    app = make_app(sandbox, tmp_path / "state", start=None)

    async def scenario() -> int:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("a")
            assert isinstance(app.screen, AddFilesScreen)
            await pilot.click("#path")
            # Type the folder, let completion finish the file name, then accept it with →.
            for char in str(tmp_path) + "/notes":
                await pilot.press(char if char != " " else "space")
            path = app.screen.query_one("#path")
            await accept_completion(pilot, path, str(tmp_path / "notes report.txt"))
            target = app.screen.query_one("#target")
            target.value = folder  # type: ignore[attr-defined]
            await pilot.press("enter")
            await pilot.press("enter")
            file_id = await until(
                pilot,
                lambda: next(
                    (
                        r.file_id
                        for r in app.model.rows.values()
                        if r.status is UploadStatus.DONE
                    ),
                    None,
                ),
                what="upload",
            )
            await pilot.press("q")
            return file_id

    file_id = run(scenario())
    record = app.manager.store.get(file_id)
    assert record is not None and record.path == str(tmp_path / "notes report.txt")
    assert_document_holds(
        nuxeo, record.doc_uid or "", name="notes report.txt", content=content
    )


def test_quit_with_uploads_in_flight_then_resume_from_the_state_database(
    sandbox: Sandbox, make_app: Any, tmp_path: Path, folder: str, nuxeo: Nuxeo
) -> None:
    content = write(tmp_path / "movie.bin", 14 * MIB + 5)
    state = tmp_path / "state"
    app = make_app(
        sandbox,
        state,
        bandwidth_limit=5 * MIB,
        start=lambda m: m.add([tmp_path / "movie.bin"], folder),
    )

    async def quit_mid_upload() -> int:
        async with app.run_test(size=SIZE) as pilot:
            file_id = await until(
                pilot,
                lambda: next(
                    (r.file_id for r in app.model.rows.values() if r.sent > 0), None
                ),
                what="upload start",
            )
            await pilot.press("q")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await until(pilot, lambda: not app.is_running, timeout=30, what="exit")
            return file_id

    file_id = run(quit_mid_upload())
    app.manager.store.close()
    with StateStore.open(state) as store:
        record = store.get(file_id)
        assert record is not None and record.status is UploadStatus.PAUSED

    # Next start: `nxup` opens on the unfinished uploads, paused; R resumes them.
    again = make_app(sandbox, state, start=lambda m: m.load_unfinished(paused=True))

    async def resume() -> None:
        async with again.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: (
                    file_id in again.model.rows
                    and row_status(again, file_id) is UploadStatus.PAUSED
                ),
                what="loaded paused",
            )
            await pilot.press("R")
            await until(
                pilot,
                lambda: row_status(again, file_id) is UploadStatus.DONE,
                timeout=60,
                what="done",
            )
            await pilot.press("q")

    run(resume())
    record = again.manager.store.get(file_id)
    assert record is not None and record.status is UploadStatus.DONE
    assert_document_holds(
        nuxeo, record.doc_uid or "", name="movie.bin", content=content
    )
    assert all(
        u["Key"] != record.object_key
        for u in multipart_uploads(
            sandbox.s3.admin_client(), bucket=sandbox.info.bucket
        )
    )


def test_screens_open_from_their_keys(
    sandbox: Sandbox, make_app: Any, tmp_path: Path, folder: str, nuxeo: Nuxeo
) -> None:
    content = write(tmp_path / "x.bin", 11 * MIB)
    app = make_app(
        sandbox,
        tmp_path / "state",
        bandwidth_limit=4 * MIB,
        start=lambda m: m.add([tmp_path / "x.bin"], folder),
    )

    async def scenario() -> int:
        async with app.run_test(size=SIZE) as pilot:
            file_id = await until(
                pilot,
                lambda: next(
                    (r.file_id for r in app.model.rows.values() if r.sent > 0), None
                ),
                what="upload",
            )
            select(app, file_id)
            await pilot.press("enter")
            assert isinstance(app.screen, PartsScreen) and app.screen.file_id == file_id
            await pilot.press("escape")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.press("l")
            assert isinstance(app.screen, LogScreen)
            await pilot.press("escape")
            await pilot.press("s")
            assert isinstance(app.screen, StaleScreen)
            await pilot.press("escape")
            before = app.manager.limiter.rate
            await pilot.press("plus")
            assert (
                app.manager.limiter.rate is not None
                and before is not None
                and app.manager.limiter.rate > before
            )
            await pilot.press("minus", "minus")
            assert (
                app.manager.limiter.rate is not None
                and app.manager.limiter.rate < before
            )
            assert "cap" in app.sub_title
            app.manager.set_bandwidth_limit(None)
            await until(
                pilot,
                lambda: row_status(app, file_id) is UploadStatus.DONE,
                timeout=60,
                what="done",
            )
            await pilot.press("q")
            return file_id

    file_id = run(scenario())
    assert_document_holds(
        nuxeo,
        app.manager.store.get(file_id).doc_uid or "",
        name="x.bin",
        content=content,
    )  # type: ignore[union-attr]


def test_a_bad_path_shows_a_failed_row_with_its_reason(
    sandbox: Sandbox, make_app: Any, tmp_path: Path, folder: str
) -> None:
    app = make_app(
        sandbox,
        tmp_path / "state",
        start=lambda m: m.add([tmp_path / "nope.pdf"], folder),
    )

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            row = await until(
                pilot, lambda: next(iter(app.model.rows.values()), None), what="row"
            )
            assert row.status is UploadStatus.FAILED
            assert "no such file" in row.reason
            detail = app.screen.query_one("#detail")
            await until(
                pilot,
                lambda: "nope.pdf" in str(detail.render()),
                what="the detail pane",
            )
            assert "no such file" in str(detail.render())
            await pilot.press("q")

    run(scenario())


def test_engine_keeps_uploading_without_the_ui_reading_progress(
    sandbox: Sandbox, tmp_path: Path, folder: str, nuxeo: Nuxeo
) -> None:
    """The bridge drops progress events and coalesces lifecycle ones: the sink never blocks."""
    bridge = EventBridge()
    content = write(tmp_path / "one.bin", 300_000)
    info = sandbox.info
    manager = TransferManager(
        ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password),
        store=StateStore.open(tmp_path / "state"),
        sink=bridge,
    ).start()
    try:
        manager.add([tmp_path / "one.bin"], folder)
        assert manager.wait(timeout=30)
        drained = bridge.drain()
        kinds = [e.kind for e in drained]
        assert (
            kinds[0] == "queued"
            and kinds[-1] == "completed"
            and "progress" not in kinds
        )
        assert_document_holds(
            nuxeo, drained[-1].document_uid, name="one.bin", content=content
        )
    finally:
        manager.shutdown()
        manager.store.close()


def test_an_app_ended_by_a_failed_assertion_leaves_no_upload_running(
    sandbox: Sandbox, tmp_path: Path, folder: str
) -> None:
    """What the `make_app` fixture does after every test: the engine of an app that ended
    without `q` (an assertion failed in the middle of an upload) is shut down and its store
    closed, so its upload does not run on into the next tests."""
    write(tmp_path / "long.bin", 12 * MIB)
    engines = AppEngines()
    app = engines.make(
        sandbox,
        tmp_path / "state",
        bandwidth_limit=1 * MIB,
        start=lambda m: m.add([tmp_path / "long.bin"], folder),
    )

    async def failing() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: any(r.sent > 0 for r in app.model.rows.values()),
                what="upload start",
            )
            raise AssertionError("a check failed mid-upload")

    with pytest.raises(AssertionError, match="mid-upload"):
        run(failing())
    (file_id,) = app.model.rows
    assert (
        app.manager.snapshot(file_id).status is UploadStatus.UPLOADING
    )  # the app's end stopped nothing

    engines.close()
    snapshot = app.manager.snapshot(file_id)
    assert (
        snapshot.status is UploadStatus.PAUSED
    )  # `nxup` resumes it later, as after `q`
    time.sleep(0.5)  # a window in which nothing may be sent, not a condition
    assert app.manager.snapshot(file_id).sent == snapshot.sent
    with StateStore.open(tmp_path / "state") as store:  # and the journal says so
        record = store.get(file_id)
        assert record is not None and record.status is UploadStatus.PAUSED
