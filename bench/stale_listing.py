"""How long `nxup stale` takes with 10,000 orphaned multipart uploads on the local sandbox.

    .venv/bin/python -m bench.stale_listing [--uploads 10000] [--parts-every 10]

Creates the uploads under a fresh prefix (one 1 KiB part on every Nth), then measures, median
of --reps runs: the listing alone (ListMultipartUploads pages), the listing plus parts counting
(one ListParts per upload on 8 threads), the stale screen filling its table under Textual's
Pilot (and how long a key takes to answer while parts are being counted), and aborting all.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def create(s3: Any, bucket: str, prefix: str, count: int, parts_every: int) -> None:
    def one(index: int) -> None:
        key = f"{prefix}f{index:06d}"
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        if parts_every and index % parts_every == 0:
            s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=1,
                Body=b"x" * 1024,
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))


def timed(run: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(reps):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def screen_times(
    running: Any, prefix: str, count: int, state_dir: Path
) -> dict[str, float]:
    from cli.demo import sandbox_stale_source
    from engine.manager import TransferManager
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore
    from tui.app import NxupApp
    from tui.bridge import EventBridge
    from tui.screens.stale import StaleScreen

    info = running.info
    bridge = EventBridge()
    manager = TransferManager(
        ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password),
        store=StateStore.open(state_dir),
        sink=bridge,
    )
    source = sandbox_stale_source(info, prefix)
    app = NxupApp(manager, bridge, stale_source=source)
    result: dict[str, float] = {}

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            started = time.perf_counter()
            await pilot.press("s")
            screen = app.screen
            assert isinstance(screen, StaleScreen)
            while len(screen.shown) < count or screen.table.row_count < count:
                await pilot.pause(0.02)
            result["screen: table filled (s)"] = time.perf_counter() - started
            # Pilot's press() also waits for the app to go idle, which it never is while counts
            # arrive; what a user feels is key press → action done, measured inside the action.
            finished: dict[str, float] = {}
            real_sort = screen.action_sort

            def timed_sort(by: str) -> None:
                real_sort(by)
                finished[by] = time.perf_counter()

            screen.action_sort = timed_sort  # type: ignore[method-assign]
            for turn, (key, by) in enumerate(
                (("a", "age"), ("z", "size"), ("a", "age")), start=1
            ):
                pressed = time.perf_counter()
                finished.pop(by, None)
                await pilot.press(key)
                while by not in finished:
                    await pilot.pause(0.01)
                result[f"screen: key {turn} '{key}' (re-sort) while counting (s)"] = (
                    finished[by] - pressed
                )
            while screen.loading:
                await pilot.pause(0.05)
            result["screen: parts counted (s)"] = time.perf_counter() - started
            await pilot.press("escape", "q")

    asyncio.run(scenario())
    manager.store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=10_000)
    parser.add_argument("--parts-every", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from engine.stale import AdminScanner
    from sandbox import Sandbox

    with (
        Sandbox() as running,
        tempfile.TemporaryDirectory(prefix="nxup-bench-stale-") as scratch,
    ):
        s3, bucket = running.s3.admin_client(), running.info.bucket
        prefix = f"bench-{uuid.uuid4().hex[:8]}/"
        started = time.perf_counter()
        create(s3, bucket, prefix, args.uploads, args.parts_every)
        print(
            f"created {args.uploads:,} uploads in {time.perf_counter() - started:.1f} s"
        )
        scanner = AdminScanner(s3, bucket)
        rows = []
        listing, found = timed(
            lambda: scanner.uploads(prefix, count_parts=False), args.reps
        )
        assert len(found) == args.uploads, len(found)
        rows.append(("list only (ListMultipartUploads pages)", listing))
        counting, found = timed(
            lambda: scanner.uploads(prefix, count_parts=True), args.reps
        )
        assert sum(u.parts or 0 for u in found) == len(
            range(0, args.uploads, args.parts_every or args.uploads)
        )
        rows.append(("list + count parts (8 threads)", counting))
        for name, seconds in screen_times(
            running, prefix, args.uploads, Path(scratch) / "state"
        ).items():
            rows.append((name, seconds))
        aborting, report = timed(lambda: scanner.abort(found), 1)
        assert not report.failed
        rows.append(("abort all (8 threads)", aborting))
        print(
            f"\n{args.uploads:,} uploads, median of {args.reps} (screen and abort: one run)"
        )
        for name, seconds in rows:
            print(f"  {name:<45} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
