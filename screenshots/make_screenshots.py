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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cli.demo import make_samples  # noqa: E402
from engine.manager import TransferManager, TransferSettings  # noqa: E402
from engine.nuxeo_batch import ServerConnection  # noqa: E402
from engine.planning import MiB  # noqa: E402
from engine.stale import S3AdminConfig, StaleSource  # noqa: E402
from engine.state import StateStore  # noqa: E402
from sandbox import Sandbox  # noqa: E402
from tui.app import NxupApp  # noqa: E402
from tui.bridge import EventBridge  # noqa: E402
from tui.screens.parts import PartsScreen  # noqa: E402

SIZE = (80, 24)


async def capture(app: NxupApp, samples: Path, missing: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        # Wait until the big file is uploading with several parts in flight.
        for _ in range(200):
            await pilot.pause(0.1)
            if any(r.multipart and r.sent > 24 * MiB for r in app.model.rows.values()):
                break
        await pilot.pause(0.6)
        app.save_screenshot("transfers.svg", path=str(HERE))
        big = max(app.model.rows.values(), key=lambda r: r.size)
        files = app.transfers.files  # type: ignore[union-attr]
        files.select_file(big.file_id)
        await pilot.press("enter")
        await pilot.pause(0.8)
        assert isinstance(app.screen, PartsScreen)
        app.save_screenshot("parts.svg", path=str(HERE))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        app.save_screenshot("help.svg", path=str(HERE))
        await pilot.press("escape")
        await pilot.press("s")
        await pilot.pause(2.0)
        app.save_screenshot("stale.svg", path=str(HERE))
        await pilot.press("escape")
        # An error: a path that does not exist shows up as a failed row with its reason.
        app.manager.add([missing], "/default-domain/workspaces")
        await pilot.pause(0.5)
        app.model.log.append("failed: example of the log screen")
        await pilot.press("l")
        await pilot.pause(0.3)
        app.save_screenshot("log.svg", path=str(HERE))
        await pilot.press("escape")
        files.action_jump(-1)
        await pilot.pause(0.3)
        app.save_screenshot("error.svg", path=str(HERE))
        app.manager.shutdown()


def main() -> None:
    with Sandbox() as running, tempfile.TemporaryDirectory() as scratch:
        info = running.info
        os.environ["NXUP_STATE_DIR"] = str(Path(scratch) / "state")
        samples = Path(scratch) / "samples"
        make_samples(samples, small_files=12, large_files=1)
        store = StateStore.open()
        bridge = EventBridge()
        manager = TransferManager(
            ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password),
            store=store,
            sink=bridge,
            settings=TransferSettings(bandwidth_limit=12 * MiB, part_size=8 * MiB, single_upload_limit=8 * MiB, workers=4),
        )
        # An orphan for the stale-uploads screen: a multipart upload started and never finished.
        admin = running.s3.admin_client()
        orphan = admin.create_multipart_upload(Bucket=info.bucket, Key="upload/abandoned/scan-archive.zip")
        admin.upload_part(Bucket=info.bucket, Key="upload/abandoned/scan-archive.zip", UploadId=orphan["UploadId"],
                          PartNumber=1, Body=os.urandom(5 * MiB))
        source = StaleSource(S3AdminConfig(
            bucket=info.bucket, endpoint=info.s3_endpoint, region=info.region,
            access_key_id=info.s3_access_key_id, secret_access_key=info.s3_secret_access_key,
        ))
        app = NxupApp(
            manager, bridge, start=lambda: manager.add([samples], "/default-domain/workspaces"),
            server_label=info.nuxeo_url, stale_source=source,
        )
        asyncio.run(capture(app, samples, Path(scratch) / "missing-report.pdf"))
        store.close()
    print("screenshots written to", HERE)


if __name__ == "__main__":
    main()
