"""How responsive the transfer manager stays with 10,000 queued files and 8 busy workers.

Runs the real app (headless, 80×24) on the sandbox with the real engine, queues N small files
plus a few large ones, and measures while uploads run:
- how long until every queued file has its row;
- event-loop lag: a 20 ms timer's worst and 99th-percentile lateness;
- key latency: time for a `space` (pause/resume) press to be handled;
- the peak RSS of the app and the engine.

    .venv/bin/python -m bench.tui_lag --files 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from engine.manager import TransferManager, TransferSettings
from engine.nuxeo_batch import ServerConnection
from engine.planning import MiB
from engine.state import StateStore
from sandbox import SandboxProcess
from tui.app import NxupApp
from tui.bridge import EventBridge


def make_files(root: Path, count: int) -> None:
    for index in range(count):
        folder = root / f"batch-{index // 1000:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{index:05d}.txt").write_bytes(os.urandom(512))
    big = root / "big"
    big.mkdir(exist_ok=True)
    for index in range(2):
        (big / f"movie-{index}.bin").write_bytes(os.urandom(64 * MiB))


def _current_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def measure(app: NxupApp, expected: int, seconds: float) -> dict[str, float]:
    lateness: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        started = time.monotonic()
        while len(app.model.rows) < expected:
            await pilot.pause(0.05)
            if time.monotonic() - started > 120:
                break
        rows_after = time.monotonic() - started

        interval = 0.02
        end = time.monotonic() + seconds
        expected_at = time.monotonic() + interval
        while time.monotonic() < end:
            await asyncio.sleep(interval)
            now = time.monotonic()
            lateness.append(max(0.0, now - expected_at))
            expected_at = now + interval

        # Key latency: from a key press to the cursor having moved (polled every millisecond).
        presses = []
        files = app.transfers.files  # type: ignore[union-attr]
        for _ in range(20):
            before = files.cursor
            t0 = time.monotonic()
            app.simulate_key("down")
            while files.cursor == before and time.monotonic() - t0 < 5:
                await asyncio.sleep(0.001)
            presses.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)
        uploading = sum(
            1 for r in app.model.rows.values() if r.status.value == "uploading"
        )
        done = sum(1 for r in app.model.rows.values() if r.status.value == "done")
        app.manager.shutdown()
    lateness.sort()
    return {
        "rows_visible_s": rows_after,
        "loop_lag_p50_ms": 1000 * statistics.median(lateness),
        "loop_lag_p99_ms": 1000 * lateness[int(len(lateness) * 0.99) - 1],
        "loop_lag_max_ms": 1000 * lateness[-1],
        "key_press_median_ms": 1000 * statistics.median(presses),
        "key_press_max_ms": 1000 * max(presses),
        # The app and the engine with every file queued (the sandbox runs in a process of its own).
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_at_the_end_mib": _current_rss_mib(),
        "uploading_during_measure": uploading,
        "done_during_measure": done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="how long to measure lag while uploading",
    )
    args = parser.parse_args()
    with SandboxProcess() as running, tempfile.TemporaryDirectory() as scratch:
        info = running.info
        root = Path(scratch) / "files"
        make_files(root, args.files)
        bridge = EventBridge()
        manager = TransferManager(
            ServerConnection(
                url=info.nuxeo_url, user=info.user, password=info.password
            ),
            store=StateStore.open(Path(scratch) / "state"),
            sink=bridge,
            settings=TransferSettings(workers=8),
        )
        app = NxupApp(
            manager,
            bridge,
            start=lambda: manager.add(
                sorted(root.iterdir()), "/default-domain/workspaces"
            ),
        )
        result = asyncio.run(measure(app, args.files + 2, args.seconds))
        manager.store.close()
    for name, value in result.items():
        print(f"{name:28} {value:10.1f}")


if __name__ == "__main__":
    main()
