"""Pause latency, in a process of its own: `manager.pause(id)` → `FilePaused`.

The orchestrator passes the server and the file in `NXUP_BENCH_PAUSE` (JSON, in the
environment). One file, capped (`limit_mib_s`), is paused mid-part `pauses` times, resumed
after each; the result is one JSON line with each latency and the parts in flight at each pause.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    from engine.events import FileCancelled, FileCompleted, FilePaused, FileStarted
    from engine.manager import TransferManager, TransferSettings
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore

    paused, started, ended = threading.Event(), threading.Event(), threading.Event()
    stamps: dict[str, float] = {}

    def sink(event: Any) -> None:
        if isinstance(event, FilePaused):
            stamps["paused"] = time.perf_counter()
            paused.set()
        elif isinstance(event, FileStarted):
            started.set()
        elif isinstance(event, (FileCancelled, FileCompleted)):
            ended.set()

    settings = TransferSettings(
        workers=8, bandwidth_limit=int(spec["limit_mib_s"] * MiB)
    )
    store = StateStore.open(Path(spec["state_dir"]))
    connection = ServerConnection(
        url=spec["nuxeo_url"], user=spec["user"], password=spec["password"]
    )
    manager = TransferManager(connection, store=store, sink=sink, settings=settings)
    manager.start()
    rng = random.Random(5)
    (file_id,) = manager.add([spec["path"]], spec["target"]).file_ids
    latencies, in_flight = [], []
    for _ in range(spec["pauses"]):
        if not started.wait(30):
            raise RuntimeError("the upload did not start")
        time.sleep(
            rng.uniform(0.6, 1.2)
        )  # parts are mid-way: 20 MiB parts at a shared cap
        if ended.is_set():
            raise RuntimeError(
                "the file finished before it could be paused again: make it bigger"
            )
        snapshot = manager.snapshot(file_id)
        in_flight.append(len(snapshot.parts_in_flight) if snapshot else 0)
        paused.clear()
        begin = time.perf_counter()
        manager.pause(file_id)
        if not paused.wait(30):
            raise RuntimeError("no FilePaused within 30 s")
        latencies.append(stamps["paused"] - begin)
        started.clear()
        manager.resume(file_id)
    manager.cancel(file_id)
    ended.wait(30)
    manager.shutdown()
    store.close()
    return {"latencies_s": latencies, "parts_in_flight": in_flight}


def main() -> None:
    spec = json.loads(os.environ.pop("NXUP_BENCH_PAUSE"))
    sys.stdout.write(json.dumps(measure(spec)) + "\n")


if __name__ == "__main__":
    main()
