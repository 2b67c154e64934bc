"""Snapshots of the main screens in a fixed state (80×24, the size of an SSH session).

The engine is replaced at its edge by a fixed one that answers the same queries, so speeds,
ETAs and parts are stable; the Pilot tests drive the real engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import until

from engine.bandwidth import BandwidthLimiter
from engine.events import (
    Event,
    FileCompleted,
    FileFailed,
    FilePaused,
    FileQueued,
    FileStarted,
    PartProgress,
)
from engine.manager import FileSnapshot, TransferSettings
from engine.nuxeo_batch import ServerConnection
from engine.planning import MiB
from engine.state import UploadStatus
from tui.app import NxupApp
from tui.bridge import EventBridge
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.parts import PartsScreen

SIZE = (80, 24)
TARGET = "/default-domain/workspaces/Projects"


class FixedEngine:
    """Answers like a TransferManager caught mid-run."""

    def __init__(self) -> None:
        self.settings = TransferSettings(workers=4)
        self.limiter = BandwidthLimiter(20 * MiB)
        self.connection = ServerConnection(
            url="https://nuxeo.example.com/nuxeo", user="jdoe"
        )
        self.snapshots: dict[int, FileSnapshot] = {}

    def start(self) -> None: ...
    def shutdown(self, **_: Any) -> None: ...
    def pause(self, file_id: int) -> None: ...
    def resume(self, file_id: int) -> None: ...
    def pause_all(self) -> None: ...
    def resume_all(self) -> None: ...
    def cancel(self, file_id: int) -> None: ...
    def set_bandwidth_limit(self, rate: int | None) -> None:
        self.limiter.set_rate(rate)

    def snapshot(self, file_id: int) -> FileSnapshot | None:
        return self.snapshots.get(file_id)

    def counts(self) -> dict[UploadStatus, int]:
        return {status: 0 for status in UploadStatus}


def events_of_a_run() -> list[Event]:
    files = [
        (1, "/home/jdoe/scans/contract-2026.pdf", 2_457_600),
        (2, "/home/jdoe/scans/site-survey.jpg", 845_000),
        (3, "/home/jdoe/video/interview-raw.mp4", 734 * MiB),
        (4, "/home/jdoe/video/b-roll.mov", 212 * MiB),
        (5, "/home/jdoe/notes/meeting notes.txt", 12_345),
        (6, "/home/jdoe/notes/budget.xlsx", 96_000),
    ]
    events: list[Event] = [
        FileQueued(i, path=p, size=s, target=TARGET) for i, p, s in files
    ]
    events += [
        FileStarted(
            1,
            path=files[0][1],
            size=files[0][2],
            multipart=False,
            part_size=files[0][2],
            part_count=1,
        ),
        FileCompleted(
            1,
            path=files[0][1],
            size=files[0][2],
            document_path=f"{TARGET}/contract-2026.pdf",
            document_uid="u1",
            etag='"e1"',
        ),
        FileStarted(
            2,
            path=files[1][1],
            size=files[1][2],
            multipart=False,
            part_size=files[1][2],
            part_count=1,
        ),
        FileCompleted(
            2,
            path=files[1][1],
            size=files[1][2],
            document_path=f"{TARGET}/site-survey.jpg",
            document_uid="u2",
            etag='"e2"',
        ),
        FileStarted(
            3,
            path=files[2][1],
            size=files[2][2],
            multipart=True,
            part_size=20 * MiB,
            part_count=37,
        ),
        FileStarted(
            4,
            path=files[3][1],
            size=files[3][2],
            multipart=True,
            part_size=20 * MiB,
            part_count=11,
        ),
        FilePaused(4, path=files[3][1]),
        FileFailed(
            -1,
            path="/home/jdoe/notes/pipe",
            reason="not a regular file (a FIFO)",
            retryable=False,
        ),
    ]
    return events


def fixed_app() -> NxupApp:
    engine = FixedEngine()
    engine.snapshots[3] = FileSnapshot(
        file_id=3,
        path="/home/jdoe/video/interview-raw.mp4",
        name="interview-raw.mp4",
        target=TARGET,
        size=734 * MiB,
        sent=300 * MiB + 9 * MiB,
        status=UploadStatus.UPLOADING,
        error=None,
        part_count=37,
        parts_done=14,
        parts_in_flight=(
            PartProgress(15, 2 * MiB, 20 * MiB),
            PartProgress(16, 11 * MiB, 20 * MiB),
            PartProgress(17, 19 * MiB, 20 * MiB),
        ),
        done_part_numbers=frozenset(range(1, 15)) | frozenset({18}),
    )
    bridge = EventBridge()
    app = NxupApp(
        engine, bridge, start=None, target=TARGET, server_label=engine.connection.url
    )  # type: ignore[arg-type]
    app.model.clock = lambda: 100.0  # no time passes: speeds and ETAs stay as set
    for event in events_of_a_run():
        bridge(event)
    return app


async def settle(pilot: Any) -> None:
    """Every event of the run applied, then the figures no event carries set and shown."""
    app: NxupApp = pilot.app
    every_file = {event.file_id for event in events_of_a_run()}
    await until(
        pilot,
        lambda: set(app.model.rows) == every_file,
        timeout=10,
        what="a row for every file",
    )
    await until(
        pilot,
        lambda: app.model.rows[-1].status is UploadStatus.FAILED,
        timeout=10,
        what="the last event",
    )
    rows = app.model.rows
    rows[3].sent, rows[3].speed = 309 * MiB, 18.5 * MiB
    rows[4].sent = 60 * MiB
    app.model.history.extend(
        [0, 4e6, 12e6, 18e6, 19e6, 19.4e6, 18e6, 20e6, 19e6, 19.5e6]
    )
    app.model.recount()
    screen = app.transfers
    assert screen is not None
    screen.refresh_rows(set(rows))
    screen.refresh_totals(history_changed=True)
    await pilot.pause()  # the messages those refreshes posted, handled


async def shown(pilot: Any, condition: Callable[[], Any], what: str) -> None:
    await until(pilot, condition, timeout=10, what=what)
    await pilot.pause()


def test_transfers_screen(snap_compare: Any) -> None:
    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=settle)


def test_parts_view(snap_compare: Any) -> None:
    async def open_parts(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.transfers.files.select_file(3)
        await pilot.press("enter")
        await shown(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, PartsScreen)
                and str(pilot.app.screen.query_one("#parts-title").render())
            ),
            "the parts of the file",
        )

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=open_parts)


def test_help_screen(snap_compare: Any) -> None:
    async def open_help(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await shown(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=open_help)


def test_failed_row_detail(snap_compare: Any) -> None:
    async def select_failed(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.transfers.files.select_file(-1)
        detail = pilot.app.screen.query_one("#detail")
        await shown(
            pilot,
            lambda: "not a regular file" in str(detail.render()),
            "the failed row's detail",
        )

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=select_failed)


def test_cancel_confirmation(snap_compare: Any) -> None:
    async def ask_cancel(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.transfers.files.select_file(3)
        await pilot.press("c")
        await shown(
            pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the question"
        )

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=ask_cancel)
