"""The transfer manager never hides a failure: an error that stops a command stays on screen until
dismissed, and on exit the terminal gets what a headless run prints (errors, counts, each failure
with its reason, how to resume) with the same exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import until, write

from engine.errors import StateError
from engine.events import FileCompleted
from engine.lifecycle import UploadStatus
from engine.manager import TransferManager, TransferSettings
from engine.nuxeo_batch import ServerConnection
from engine.state import StateStore
from sandbox import Sandbox
from tui.app import NxupApp
from tui.bridge import EventBridge
from tui.screens.error import ErrorScreen


@pytest.fixture
def app_on(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[..., NxupApp]]:
    """An app on a real engine; every engine is shut down and its store closed after the test."""
    made: list[TransferManager] = []

    def make(start: Callable[[TransferManager], Any], kind: type[TransferManager] = TransferManager) -> NxupApp:
        info = sandbox.info
        bridge = EventBridge()
        manager = kind(
            ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password),
            store=StateStore.open(tmp_path / f"state-{len(made)}"), sink=bridge,
            settings=TransferSettings(workers=2),
        )
        made.append(manager)
        return NxupApp(manager, bridge, start=lambda: start(manager), server_label=info.nuxeo_url)

    yield make
    for manager in made:
        manager.shutdown(timeout=10)
        manager.store.close()


def test_a_missing_target_folder_stays_on_screen_and_ends_in_exit_code_1(
        app_on: Callable[..., NxupApp], tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    write(path, 10)
    app = app_on(lambda manager: manager.add([path], "/default-domain/workspaces/no-such-folder"))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error dialog")
            await pilot.pause(1.0)  # a toast would be fading by now; the dialog stays
            assert isinstance(app.screen, ErrorScreen)
            assert "no-such-folder does not exist" in app.screen.message
            await pilot.press("enter")
            await until(pilot, lambda: not isinstance(app.screen, ErrorScreen), what="the dialog to close")
            await pilot.press("q")

    asyncio.run(scenario())
    lines, code = app.exit_report()
    assert code == 1
    assert lines[0].startswith("nxup: the target folder /default-domain/workspaces/no-such-folder does not exist")
    assert "0 uploaded (0 B), 0 failed, 0 cancelled, 0 paused" in lines


def test_exit_names_each_failure_with_its_reason(
        app_on: Callable[..., NxupApp], target_folder: str, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    write(good, 1000)
    missing = tmp_path / "missing.txt"
    app = app_on(lambda manager: manager.add([good, missing], target_folder))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.manager.counts()[UploadStatus.DONE] == 1, what="the good file")
            await until(pilot, lambda: any(r.status is UploadStatus.FAILED for r in app.model.rows.values()),
                        what="the missing file's failure")
            await pilot.press("q")

    asyncio.run(scenario())
    lines, code = app.exit_report()
    assert code == 1
    assert "1 uploaded (1000 B), 1 failed, 0 cancelled, 0 paused" in lines
    (failure,) = [line for line in lines if line.startswith("failed")]
    assert str(missing) in failure and "no such file" in failure.lower()


def test_a_clean_run_exits_0_and_says_what_it_did(
        app_on: Callable[..., NxupApp], target_folder: str, tmp_path: Path) -> None:
    path = tmp_path / "fine.txt"
    write(path, 2048)
    app = app_on(lambda manager: manager.add([path], target_folder))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.manager.counts()[UploadStatus.DONE] == 1, what="the upload")
            await until(pilot, lambda: all(r.status is UploadStatus.DONE for r in app.model.rows.values()),
                        what="the screen to show it done")
            await pilot.press("q")

    asyncio.run(scenario())
    assert app.exit_report() == (["1 uploaded (2.0 KiB), 0 failed, 0 cancelled, 0 paused"], 0)


def test_an_unexpected_error_in_a_command_is_shown_not_lost(app_on: Callable[..., NxupApp]) -> None:
    def start(manager: TransferManager) -> None:
        raise RuntimeError("a bug")

    app = app_on(start)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error dialog")
            assert isinstance(app.screen, ErrorScreen)
            assert app.screen.message == "unexpected error: RuntimeError('a bug')"
            await pilot.press("enter", "q")

    asyncio.run(scenario())
    lines, code = app.exit_report()
    assert code == 1 and lines[0] == "nxup: unexpected error: RuntimeError('a bug')"


class _ShutdownFailsOnce(TransferManager):
    """A manager whose first stop fails as a full disk would (the next one, after the test, works)."""

    failed = False

    def shutdown(self, *, timeout: float = 30.0) -> None:
        if not self.failed:
            self.failed = True
            raise StateError("/state/nxup.db: the state database cannot be written (disk full)")
        super().shutdown(timeout=timeout)


def test_the_app_exits_even_when_stopping_the_engine_fails(app_on: Callable[..., NxupApp]) -> None:
    app = app_on(lambda manager: None, _ShutdownFailsOnce)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("q")
            await until(pilot, lambda: app.return_code is not None, what="the app to exit")

    asyncio.run(scenario())
    lines, code = app.exit_report()
    assert code == 1
    assert lines[0] == "nxup: /state/nxup.db: the state database cannot be written (disk full)"


def test_events_taken_after_the_screens_are_gone_end_quietly(
        app_on: Callable[..., NxupApp], target_folder: str, tmp_path: Path) -> None:
    """Events are taken on a timer (at most ten times a second): one that fires while the app
    closes finds no screen, and must not turn a clean quit into a traceback."""
    path = tmp_path / "late.txt"
    write(path, 100)
    app = app_on(lambda manager: manager.add([path], target_folder))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.manager.counts()[UploadStatus.DONE] == 1, what="the upload")
            await pilot.press("q")

    asyncio.run(scenario())
    assert not app.screen_stack
    app.bridge(FileCompleted(file_id=1, path=str(path), size=100, document_path="/x", document_uid="u", etag="e"))
    app._take_events()  # an event after the app closed, taken by a timer that outlived the screens
    assert app.exit_report()[1] == 0
