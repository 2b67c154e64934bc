"""A transfer manager caught mid-run, for the snapshot and layout tests: the engine is replaced
at its edge by a fixed one that answers the same queries, so speeds, ETAs and parts are stable
(the Pilot tests of test_tui_pilot drive the real engine)."""

from __future__ import annotations

from pathlib import Path
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
from engine.lifecycle import UploadStatus
from engine.manager import FileSnapshot, TransferSettings
from engine.nuxeo_batch import ServerConnection
from engine.planning import MiB
from tui.app import NxupApp
from tui.bridge import EventBridge

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
        self.file_ids: set[int] = set()  # every file of the run, once it is on screen

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
        (7, "/home/jdoe/scans/2026-03-14 survey of the north warehouse, roof and loading bays (final).pdf", 1000),
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


def fixed_app(*, more_queued: int = 0) -> NxupApp:
    """The run of `events_of_a_run`, and `more_queued` files queued after it."""
    engine = FixedEngine()
    engine.snapshots[3] = FileSnapshot(
        file_id=3,
        path="/home/jdoe/video/interview-raw.mp4",
        name="interview-raw.mp4",
        target=TARGET,
        size=734 * MiB,
        sent=300 * MiB + 32 * MiB,  # parts 1-14 and 18 acknowledged, 15-17 in flight
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
        acknowledged=300 * MiB,
        in_flight=32 * MiB,
    )
    bridge = EventBridge()
    app = NxupApp(
        engine, bridge, start=None, target=TARGET, server_label=engine.connection.url
    )  # type: ignore[arg-type]
    app.model.clock = lambda: 100.0  # no time passes: speeds and ETAs stay as set
    events = events_of_a_run() + [
        FileQueued(100 + number, path=f"/home/jdoe/photos/IMG_{number:04d}.jpg", size=3 * MiB, target=TARGET)
        for number in range(more_queued)
    ]
    for event in events:
        bridge(event)
    engine.file_ids = {event.file_id for event in events}
    return app


async def settle(pilot: Any) -> None:
    """Every event of the run applied, then the figures no event carries set and shown."""
    app: NxupApp = pilot.app
    every_file = app.manager.file_ids  # type: ignore[attr-defined]
    await until(
        pilot,
        lambda: set(app.model.rows) == every_file,
        timeout=10,
        what="a row for every file",
    )
    await until(
        pilot,
        lambda: app.model.rows[-1].status is UploadStatus.FAILED and app.transfers.files.row_count == len(every_file),
        timeout=10,
        what="the last event, on screen",
    )
    rows = app.model.rows
    rows[3].sent, rows[3].acknowledged, rows[3].speed = 332 * MiB, 300 * MiB, 18.5 * MiB
    rows[4].sent = rows[4].acknowledged = 60 * MiB
    app.model.history.extend(
        [0, 4e6, 12e6, 18e6, 19e6, 19.4e6, 18e6, 20e6, 19e6, 19.5e6]
    )
    app.model.recount()
    screen = app.transfers
    assert screen is not None
    screen.refresh_rows(set(rows))
    screen.refresh_totals(history_changed=True)
    # The list is drawn again a moment later when it was drawn just before.
    await until(pilot, lambda: not screen.files.redraw_pending, timeout=10, what="the rows drawn")
    await pilot.pause()  # the messages those refreshes posted, handled


def folder_to_complete(root: Path) -> None:
    """Entries for the add dialog's path completion to offer (and one to leave out)."""
    (root / "notes-2026").mkdir()
    (root / "notes-2026" / "inside.pdf").write_bytes(b"x")
    (root / "notes report.txt").write_bytes(b"x")
    (root / "photos").mkdir()
    (root / ".notes-hidden").write_bytes(b"x")
    (root / "notes\x1bodd").write_bytes(b"x")  # a name that would be shown escaped: left out
