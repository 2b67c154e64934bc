"""Snapshots of the stale-uploads screen at 80×24 (an SSH session) and 160×50: a fixed bucket
answers the three S3 calls the screen makes, and the clock is fixed, so ages stay as set; the
Pilot tests (test_stale_screen.py) drive the screen against SeaweedFS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import until
from tui_fixed import FixedEngine

from engine.lifecycle import UploadStatus
from engine.planning import MiB
from engine.stale import S3AdminConfig, StaleSource
from engine.state import PartRecord, StateStore, UploadRecord
from tui.app import NxupApp
from tui.bridge import EventBridge
from tui.screens.stale import StaleScreen

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
SERVER = "https://nuxeo.example.com/nuxeo"
# (key, upload id, age, part sizes); the first two are nxup's own.
UPLOADS = (
    ("upload/7c1e9a52-4b1d-4e8a-9f0b-2d6c3e8a1f47/0", "u-interview", timedelta(minutes=3), [20 * MiB] * 14),
    ("upload/0b8f3d21-99aa-4c3e-8d7f-5e2a1b9c6d03/2", "u-broll", timedelta(days=2, hours=5), [8 * MiB] * 3),
    ("backups/2026/03/db-dump-2026-03-14.sql.gz", "u-dump", timedelta(days=41), [64 * MiB] * 9 + [1024]),
    ("media/raw/camera-B/interview-take-12-with-a-long-descriptive-name.mov", "u-take", timedelta(hours=5),
     [16 * MiB] * 2),
    ("tmp/x", "u-tiny", timedelta(days=9, hours=3), [1024]),
)


class FixedBucket:
    """Answers the S3 calls of the stale-uploads screen like a bucket with a few leftovers."""

    def list_multipart_uploads(self, **_: Any) -> dict[str, Any]:
        uploads = [{"Key": key, "UploadId": upload_id, "Initiated": NOW - age} for key, upload_id, age, _ in UPLOADS]
        return {"Uploads": uploads, "IsTruncated": False}

    def list_parts(self, *, UploadId: str, **_: Any) -> dict[str, Any]:
        sizes = next(sizes for _, upload_id, _, sizes in UPLOADS if upload_id == UploadId)
        return {"Parts": [{"PartNumber": n, "Size": s} for n, s in enumerate(sizes, 1)], "IsTruncated": False}

    def get_bucket_lifecycle_configuration(self, **_: Any) -> dict[str, Any]:
        return {"Rules": []}


@dataclass(frozen=True, slots=True)
class FixedAdmin(S3AdminConfig):
    def client(self) -> Any:
        return FixedBucket()


class EngineWithJournal(FixedEngine):
    def __init__(self, store: StateStore) -> None:
        super().__init__()
        self.store = store


def journal(directory: Path) -> StateStore:
    """nxup's records of the first two uploads: one resumable, one whose file is gone."""
    store = StateStore.open(directory / "state")
    kept = directory / "interview-raw.mp4"
    kept.write_bytes(b"")
    for path, (key, upload_id, _, sizes) in ((kept, UPLOADS[0]), (directory / "b-roll.mov", UPLOADS[1])):
        record = store.add_upload(UploadRecord(
            path=str(path), server_url=SERVER, target="/default-domain/workspaces/Projects",
            status=UploadStatus.PAUSED, bucket="nuxeo-uploads", object_key=key, upload_id=upload_id,
            part_size=sizes[0], part_count=37,
        ))
        assert record.id is not None
        for number, size in enumerate(sizes, 1):
            store.record_part(record.id, PartRecord(number=number, etag=f'"e{number}"', size=size))
    return store


def stale_app(directory: Path) -> NxupApp:
    engine = EngineWithJournal(journal(directory))
    source = StaleSource(FixedAdmin(bucket="nuxeo-uploads"), now=lambda: NOW)
    return NxupApp(engine, EventBridge(), start=None, target="/default-domain/workspaces/Projects",  # type: ignore[arg-type]
                   server_label=SERVER, stale_source=source)


async def open_stale(pilot: Any) -> None:
    await pilot.press("s")
    screen = pilot.app.screen
    assert isinstance(screen, StaleScreen)
    await until(pilot, lambda: not screen.loading and len(screen.uploads) == len(UPLOADS), timeout=10,
                what="the uploads listed and counted")
    await until(pilot, lambda: "L adds one" in str(screen.query_one("#stale-status").render()), timeout=10,
                what="the lifecycle status")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_stale_screen(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(stale_app(tmp_path), terminal_size=size, run_before=open_stale)
