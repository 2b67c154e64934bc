"""`nxup demo`: the sandbox, sample files, and the real upload flow end to end."""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import click

from engine.planning import MiB

DEMO_TARGET = "/default-domain/workspaces"
# The large samples' sizes; the first three, at the default cap of 5 MiB/s, take about 70 s.
LARGE_SIZES_MIB = (40, 100, 200, 150, 60)


def sandbox_stale_source(info: Any, prefix: str = "") -> Any:
    """The stale-uploads list of a sandbox's bucket (`SandboxInfo`), with its operator keys, in
    memory only."""
    from engine.stale import S3AdminConfig, StaleSource

    return StaleSource(
        S3AdminConfig(
            bucket=info.bucket, endpoint=info.s3_endpoint, region=info.region,
            access_key_id=info.s3_access_key_id, secret_access_key=info.s3_secret_access_key,
        ),
        prefix=prefix,
    )


def make_samples(root: Path, *, small_files: int, large_files: int, seed: int = 7) -> list[Path]:
    """Sample files in folders: many small ones and a few of 40–200 MiB.

    Large files repeat one random MiB with a changing header, which is quick to write and still
    gives every part different bytes.
    """
    rng = random.Random(seed)
    folders = [root / "reports", root / "photos" / "2026", root / "notes"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for index in range(small_files):
        folder = folders[index % len(folders)]
        suffix = (".txt", ".jpg", ".pdf", ".csv")[index % 4]
        path = folder / f"sample-{index:03d}{suffix}"
        path.write_bytes(rng.randbytes(rng.randint(200, 256 * 1024)))
        made.append(path)
    block = rng.randbytes(MiB)
    videos = root / "videos"
    videos.mkdir(exist_ok=True)
    for index in range(large_files):
        size_mib = LARGE_SIZES_MIB[index % len(LARGE_SIZES_MIB)]
        path = videos / f"recording-{index + 1}.mp4"
        with open(path, "wb") as handle:
            for mib in range(size_mib):
                handle.write(f"{index}:{mib}:".encode().ljust(64, b"-"))
                handle.write(block[64:])
        made.append(path)
    return made


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(running: Any, state_dir: Path) -> tuple[str, bool]:
    """Check what the run left: each finished file's document holds exactly its bytes, and no
    multipart upload is left behind. Returns a one-line report and whether all is well."""
    from nuxeo.client import Nuxeo

    from engine.lifecycle import UploadStatus
    from engine.state import StateStore

    info = running.info
    client = Nuxeo(host=info.nuxeo_url, auth=(info.user, info.password))
    with StateStore.open(state_dir) as store:
        records = store.recent(limit=1_000_000)
    matching = differing = 0
    for record in records:
        if record.status is not UploadStatus.DONE or not record.doc_uid:
            continue
        blob = client.documents.get(uid=record.doc_uid).properties.get("file:content") or {}
        same = int(blob.get("length") or -1) == record.size and blob.get("digest") == _md5_of(Path(record.path))
        matching, differing = matching + same, differing + (not same)
    client.client.on_exit()  # no idle connection may hold the sandbox's stop
    unfinished = sum(1 for r in records if r.status is not UploadStatus.DONE)
    admin = info.admin_client()
    leftovers = admin.list_multipart_uploads(Bucket=info.bucket).get("Uploads", [])
    admin.close()
    report = (
        f"checked: {matching} documents hold exactly their file, {differing} differ, "
        f"{unfinished} not uploaded; multipart uploads left on S3: {len(leftovers)}"
    )
    return report, differing == 0 and not leftovers


def run_demo(*, small_files: int, large_files: int, limit: int | None, json_lines: bool, tui: bool) -> int:
    from cli.plain import Reporter
    from cli.running import run_headless, run_tui
    from engine.errors import NxupError
    from engine.manager import TransferManager, TransferSettings
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore
    from sandbox import SandboxProcess
    from tui.bridge import EventBridge

    rate = limit  # bytes per second, None for no cap
    click.echo("starting the sandbox (SeaweedFS + a local Nuxeo-compatible server)...", err=True)
    try:
        # A child process: the sandbox's servers must not compete with the screen for the GIL.
        running = SandboxProcess().start()
    except Exception as exc:
        click.echo(f"nxup: cannot start the sandbox: {exc}", err=True)
        return 1
    try:
        info = running.info
        samples = Path(info.data_dir) / "samples"
        made = make_samples(samples, small_files=small_files, large_files=large_files)
        total = sum(p.stat().st_size for p in made)
        click.echo(f"made {len(made)} sample files ({total / MiB:.0f} MiB) in {samples}", err=True)
        # The demo's state lives and dies with the sandbox: the user's own state is untouched.
        os.environ["NXUP_STATE_DIR"] = str(Path(info.data_dir) / "state")
        store = StateStore.open()
        sink = EventBridge() if tui else Reporter(json_lines=json_lines,
                                                  live=not json_lines and sys.stdout.isatty())
        connection = ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password)
        # The terminal UI samples the engine's counters itself: no progress events for it.
        settings = TransferSettings(bandwidth_limit=rate, progress_interval_s=None if tui else 0.25)
        manager = TransferManager(connection, store=store, sink=sink, settings=settings)

        def start() -> None:
            manager.add([samples], DEMO_TARGET)

        try:
            if tui:
                # The sandbox disappears with the demo: what is unfinished at quit is aborted.
                # The stale-uploads screen gets the sandbox's operator keys, in memory only.
                source = sandbox_stale_source(info)
                code = run_tui(manager, sink, start, target=DEMO_TARGET, abort_on_quit=True, stale_source=source)
            else:
                code = run_headless(manager, sink, start, abort_on_interrupt=True)
        except NxupError as exc:
            click.echo(f"nxup: {exc}", err=True)
            code = 1
        finally:
            store.close()
        report, healthy = verify(running, Path(info.data_dir) / "state")
        click.echo(report, err=True)
        return code if healthy else 1
    finally:
        started = time.monotonic()
        running.stop()
        click.echo(f"sandbox stopped ({time.monotonic() - started:.1f} s)", err=True)
        sys.stderr.flush()
