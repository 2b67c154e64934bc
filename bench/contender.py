"""One benchmark contender, run in its own process so that CPU time and peak RSS are its own.

The orchestrator (`bench.run`) starts the sandbox and passes everything through the
`NXUP_BENCH_SPEC` environment variable (JSON). The result is one JSON line on stdout.

Contenders:
- `nxup`: the real engine (TransferManager) on a folder; whole flow (batch, S3, Nuxeo complete,
  document). Instrumented from the outside (wrapped methods, engine untouched): wall time of every
  Nuxeo call, S3 call, state-store write and pool task, and the S3 window (first to last S3 call).
- `boto3_upload_file`: `client.upload_file` with s3transfer defaults, operator keys.
- `boto3_parts`: create/upload_part/complete, 8 threads, 20 MiB parts read into memory.
- `boto3_put`: `put_object` of every file of a folder, 8 threads.
- `nxup_pause`: a capped nxup upload paused and resumed N times; latency pause() -> FilePaused.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _maxrss_mib() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss over execve, so a
    child would inherit the (larger) high-water mark of the orchestrator it was forked from."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timings:
    """Thread-safe sums of wall time per label."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def add(self, label: str, start: float, end: float) -> None:
        with self._lock:
            self.total[label] += end - start
            self.count[label] += 1
            self.first[label] = min(self.first.get(label, start), start)
            self.last[label] = max(self.last.get(label, end), end)

    def as_dict(self) -> dict[str, Any]:
        return {k: {"s": round(self.total[k], 4), "n": self.count[k]} for k in sorted(self.total)}


def _instrument(manager: Any, timings: Timings) -> None:
    """Wrap (on the instances only) the Nuxeo calls, the S3 call helper, the state store and
    the pool tasks.

    Nuxeo calls are timed at the NuxeoBatchClient method, not at `client.request`: the nuxeo
    client streams responses, so the body (and the server's wait) is read after `request`
    returns. `new_batch` includes its own `handlers` call (also listed on its own)."""
    nuxeo = manager.nuxeo
    for name in ("handlers", "new_batch", "batch_info", "refresh_credentials", "complete", "registered_size",
                 "drop", "folder_kind", "ensure_folder", "create_file_document", "delete_document"):
        original = getattr(nuxeo, name)

        def timed_nuxeo(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings.add(f"nuxeo {_name}", start, time.perf_counter())

        setattr(nuxeo, name, timed_nuxeo)
    s3_call = manager._s3._call

    def timed_s3_call(transfer: Any, *, action: str, method: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return s3_call(transfer, action=action, method=method, **kwargs)
        finally:
            timings.add(f"s3 {method}", start, time.perf_counter())

    manager._s3._call = timed_s3_call
    # Whole pool tasks (they contain the calls above) and the time workers wait for work.
    for name, label in (("_prepare", "task prepare"), ("_send_part", "task part"), ("_finish", "task finish")):
        original = getattr(manager, name)

        def timed_task(*args: Any, _original: Any = original, _label: str = label) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args)
            finally:
                timings.add(_label, start, time.perf_counter())

        setattr(manager, name, timed_task)
    pool_queue = manager._pool._queue
    get = pool_queue.get

    def timed_get(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return get(*args, **kwargs)
        finally:
            timings.add("pool idle (waiting for a task)", start, time.perf_counter())

    pool_queue.get = timed_get
    store = manager.store
    for name in ("add_upload", "update", "record_part", "find_active", "forget_parts"):
        original = getattr(store, name)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timings.add(f"state {_name}", start, time.perf_counter())

        setattr(store, name, timed)


def _manager(spec: dict[str, Any], sink: Any, **overrides: Any) -> Any:
    from engine.manager import TransferManager, TransferSettings
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore

    settings = TransferSettings(
        workers=spec.get("workers", 8),
        part_size=spec.get("part_size_mib", 20) * MiB,
        bandwidth_limit=spec.get("limit_mib_s") and int(spec["limit_mib_s"] * MiB),
        **overrides,
    )
    store = StateStore.open(Path(spec["state_dir"]))
    connection = ServerConnection(url=spec["nuxeo_url"], user=spec["user"], password=spec["password"])
    return TransferManager(connection, store=store, sink=sink, settings=settings), store


def run_nxup(spec: dict[str, Any]) -> dict[str, Any]:
    from engine.events import FileCompleted, FileFailed

    done = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def sink(event: Any) -> None:
        if isinstance(event, FileCompleted):
            with lock:
                done["ok"] += 1
        elif isinstance(event, FileFailed):
            with lock:
                done["failed"].append(event.reason)

    manager, store = _manager(spec, sink)
    timings = Timings()
    _instrument(manager, timings)
    manager.start()
    rss_before = _maxrss_mib()
    cpu0, t0 = _cpu(), time.perf_counter()
    manager.add([spec["path"]], spec["target"])
    manager.wait()
    t1, cpu1 = time.perf_counter(), _cpu()
    manager.shutdown()
    store.close()
    s3_labels = [k for k in timings.first if k.startswith("s3 ")]
    s3_window = (
        max(timings.last[k] for k in s3_labels) - min(timings.first[k] for k in s3_labels)
        if s3_labels else 0.0
    )
    return {
        "wall_s": t1 - t0, "cpu_s": cpu1 - cpu0, "s3_window_s": s3_window,
        "files_ok": done["ok"], "failed": done["failed"][:3], "n_failed": len(done["failed"]),
        "rss_before_mib": rss_before, "calls": timings.as_dict(),
    }


def _boto3_client(spec: dict[str, Any], *, pool: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=spec["s3_endpoint"], region_name=spec["region"],
        aws_access_key_id=spec["access_key"], aws_secret_access_key=spec["secret_key"],
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=pool),
    )


def run_boto3_upload_file(spec: dict[str, Any]) -> dict[str, Any]:
    client = _boto3_client(spec)
    rss_before = _maxrss_mib()
    cpu0, t0 = _cpu(), time.perf_counter()
    client.upload_file(spec["path"], spec["bucket"], spec["key"])
    t1, cpu1 = time.perf_counter(), _cpu()
    return {"wall_s": t1 - t0, "cpu_s": cpu1 - cpu0, "s3_window_s": t1 - t0, "files_ok": 1, "rss_before_mib": rss_before}


def run_boto3_parts(spec: dict[str, Any]) -> dict[str, Any]:
    threads, part_size = spec.get("workers", 8), spec.get("part_size_mib", 20) * MiB
    client = _boto3_client(spec, pool=threads + 2)
    bucket, key, path = spec["bucket"], spec["key"], spec["path"]
    size = os.path.getsize(path)
    rss_before = _maxrss_mib()
    cpu0, t0 = _cpu(), time.perf_counter()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def send(number: int) -> dict[str, Any]:
        with open(path, "rb") as handle:
            handle.seek((number - 1) * part_size)
            data = handle.read(part_size)
        answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer.get("ChecksumCRC32")}

    count = -(-size // part_size)
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(send, range(1, count + 1)))
    parts = [{k: v for k, v in p.items() if v is not None} for p in parts]
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    t1, cpu1 = time.perf_counter(), _cpu()
    return {"wall_s": t1 - t0, "cpu_s": cpu1 - cpu0, "s3_window_s": t1 - t0, "files_ok": 1, "rss_before_mib": rss_before}


def run_boto3_put(spec: dict[str, Any]) -> dict[str, Any]:
    threads = spec.get("workers", 8)
    client = _boto3_client(spec, pool=threads + 2)
    root = Path(spec["path"])
    files = sorted(p for p in root.rglob("*") if p.is_file())
    bucket, prefix = spec["bucket"], spec["key"]
    rss_before = _maxrss_mib()
    cpu0, t0 = _cpu(), time.perf_counter()

    def send(path: Path) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, files))
    t1, cpu1 = time.perf_counter(), _cpu()
    return {"wall_s": t1 - t0, "cpu_s": cpu1 - cpu0, "s3_window_s": t1 - t0, "files_ok": len(files), "rss_before_mib": rss_before}


def run_nxup_pause(spec: dict[str, Any]) -> dict[str, Any]:
    """Pause mid-part `pauses` times; each time resume and let the parts run again first."""
    from engine.events import FileCancelled, FileCompleted, FilePaused, FileStarted

    events: dict[str, threading.Event] = {"paused": threading.Event(), "started": threading.Event(), "cancelled": threading.Event()}
    stamps: dict[str, float] = {}

    def sink(event: Any) -> None:
        if isinstance(event, FilePaused):
            stamps["paused"] = time.perf_counter()
            events["paused"].set()
        elif isinstance(event, FileStarted):
            events["started"].set()
        elif isinstance(event, (FileCancelled, FileCompleted)):
            events["cancelled"].set()

    manager, store = _manager(spec, sink)
    manager.start()
    rng = random.Random(5)
    (file_id,) = manager.add([spec["path"]], spec["target"]).file_ids
    latencies, in_flight = [], []
    for _ in range(spec.get("pauses", 10)):
        if not events["started"].wait(30):
            raise RuntimeError("the upload did not start")
        time.sleep(rng.uniform(0.6, 1.2))  # parts are mid-way: 20 MiB at a shared 20 MiB/s cap
        snap = manager.snapshot(file_id)
        in_flight.append(len(snap.parts_in_flight) if snap else 0)
        if events["cancelled"].is_set():
            break  # the file finished before it could be paused again: make it bigger
        events["paused"].clear()
        start = time.perf_counter()
        manager.pause(file_id)
        if not events["paused"].wait(30):
            raise RuntimeError("no FilePaused within 30 s")
        latencies.append(stamps["paused"] - start)
        events["started"].clear()
        manager.resume(file_id)
    manager.cancel(file_id)
    events["cancelled"].wait(30)
    manager.shutdown()
    store.close()
    return {"latencies_s": latencies, "parts_in_flight": in_flight, "wall_s": 0.0, "cpu_s": 0.0, "files_ok": 0}


CONTENDERS = {
    "nxup": run_nxup,
    "boto3_upload_file": run_boto3_upload_file,
    "boto3_parts": run_boto3_parts,
    "boto3_put": run_boto3_put,
    "nxup_pause": run_nxup_pause,
}


def main() -> None:
    spec = json.loads(os.environ.pop("NXUP_BENCH_SPEC"))
    result = CONTENDERS[spec["kind"]](spec)
    result["rss_peak_self_mib"] = _maxrss_mib()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
