"""Regenerate the SVG screenshots in this folder from the real app.

Starts the sandbox, makes sample files, runs the real transfer manager in an 80×24 terminal
with a bandwidth cap so uploads are caught mid-flight, and saves one SVG per screen:

    python screenshots/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from textual.widgets import Input  # noqa: E402

from cli.demo import make_samples, sandbox_stale_source  # noqa: E402
from engine.lifecycle import UploadStatus  # noqa: E402
from engine.manager import TransferManager, TransferSettings  # noqa: E402
from engine.nuxeo_batch import ServerConnection  # noqa: E402
from engine.planning import MiB  # noqa: E402
from engine.state import StateStore  # noqa: E402
from sandbox import Sandbox  # noqa: E402
from tui.app import NxupApp  # noqa: E402
from tui.bridge import EventBridge  # noqa: E402
from tui.screens.add_files import AddFilesScreen  # noqa: E402
from tui.screens.confirm import ConfirmScreen  # noqa: E402
from tui.screens.help import HelpScreen  # noqa: E402
from tui.screens.log import LogScreen  # noqa: E402
from tui.screens.parts import PartsScreen  # noqa: E402
from tui.widgets.path_completion import PathDropdown  # noqa: E402

SIZE = (80, 24)


async def until(pilot: Any, condition: Callable[[], Any], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        await pilot.pause(0.1)
    await pilot.pause(0.3)  # what the condition saw, drawn


async def capture(app: NxupApp, scratch: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        rows = app.model.rows
        # The small files done, the biggest file under way: parts of it done and in flight.
        def biggest_under_way() -> bool:
            if len(rows) < 15:
                return False
            snapshot = app.manager.snapshot(max(rows.values(), key=lambda r: r.size).file_id)
            return snapshot is not None and snapshot.parts_done >= 2 and len(snapshot.parts_in_flight) >= 2

        await until(pilot, biggest_under_way, "the biggest file under way")
        app.save_screenshot("transfers.svg", path=str(HERE))
        big = max(rows.values(), key=lambda r: r.size)
        files = app.transfers.files  # type: ignore[union-attr]
        files.select_file(big.file_id)
        await pilot.press("enter")
        assert isinstance(app.screen, PartsScreen)
        await until(pilot, lambda: "parts done" in str(app.screen.query_one("#parts-title").render()), "the parts")
        app.save_screenshot("parts.svg", path=str(HERE))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        app.save_screenshot("help.svg", path=str(HERE))
        await pilot.press("escape")
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the quit question")
        app.save_screenshot("quit.svg", path=str(HERE))
        await pilot.press("n")
        await pilot.press("s")
        await until(pilot, lambda: app.screen.table.row_count > 0, "the stale uploads")  # type: ignore[attr-defined]
        app.save_screenshot("stale.svg", path=str(HERE))
        await pilot.press("escape")
        # The add dialog, completing a path: the folders of the samples.
        await pilot.press("a")
        assert isinstance(app.screen, AddFilesScreen)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        for key in "samples/":
            await pilot.press(key)
        dropdown = app.screen.query_one(PathDropdown)
        await until(pilot, lambda: dropdown.display and dropdown.option_list.option_count > 1, "the completions")
        app.save_screenshot("add.svg", path=str(HERE))
        await pilot.press("escape", "escape")
        # A failed file: a path that does not exist, with its reason; and a cancelled one.
        app.manager.add([scratch / "missing-report.pdf"], "/default-domain/workspaces")
        await until(pilot, lambda: any(r.status is UploadStatus.FAILED for r in rows.values()), "the failed file")
        failed = next(r for r in rows.values() if r.status is UploadStatus.FAILED)
        files.select_file(failed.file_id)
        await until(pilot, lambda: "no such file" in str(app.screen.query_one("#detail").render()), "its reason")
        app.save_screenshot("error.svg", path=str(HERE))
        files.select_file(big.file_id)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: big.status is UploadStatus.CANCELLED, "the cancel")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log")
        app.save_screenshot("log.svg", path=str(HERE))
        await pilot.press("escape")
        app.manager.shutdown()


def main() -> None:
    with Sandbox() as running, tempfile.TemporaryDirectory() as scratch:
        info = running.info
        os.environ["NXUP_STATE_DIR"] = str(Path(scratch) / "state")
        samples = Path(scratch) / "samples"
        make_samples(samples, small_files=12, large_files=3)
        os.chdir(scratch)  # the add dialog completes "samples/"
        store = StateStore.open()
        bridge = EventBridge()
        manager = TransferManager(
            ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password),
            store=store,
            sink=bridge,
            settings=TransferSettings(
                bandwidth_limit=12 * MiB, part_size=8 * MiB, single_upload_limit=8 * MiB, workers=4
            ),
        )
        # An orphan for the stale-uploads screen: a multipart upload started and never finished.
        admin = running.s3.admin_client()
        orphan = admin.create_multipart_upload(Bucket=info.bucket, Key="upload/abandoned/scan-archive.zip")
        admin.upload_part(
            Bucket=info.bucket,
            Key="upload/abandoned/scan-archive.zip",
            UploadId=orphan["UploadId"],
            PartNumber=1,
            Body=os.urandom(5 * MiB),
        )
        source = sandbox_stale_source(info)
        app = NxupApp(
            manager,
            bridge,
            start=lambda: manager.add([samples], "/default-domain/workspaces"),
            server_label=info.nuxeo_url,
            stale_source=source,
        )
        asyncio.run(capture(app, Path(scratch)))
        os.chdir(HERE)
        store.close()
    print("screenshots written to", HERE)


if __name__ == "__main__":
    main()
