"""What a stale upload is: one multipart upload still open on S3, and what nxup's journal knows
of it (which local file, whether `nxup resume` can still finish it)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.lifecycle import UNFINISHED, Stage, UploadStatus
from engine.state import StateStore, UploadRecord

Clock = Callable[[], datetime]

DEFAULT_STALE_AFTER = timedelta(days=7)
# Aborting everything listed leaves out younger uploads unless an age is given: one this young
# may be running (rclone's clean-up uses the same day).
SAFE_ABORT_AGE = timedelta(hours=24)
# Journal stages at which a multipart upload may still be open on S3 (later, it was joined).
MAY_BE_OPEN = frozenset({Stage.NEW, Stage.BATCHED, Stage.STARTING_MULTIPART, Stage.SENDING, Stage.JOINING})


def utc_now() -> datetime:
    return datetime.now(UTC)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """ "30m", "24h", "7d", "2w", "90s" or plain seconds. ValueError with a readable reason."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"not an age: {text!r} (examples: 30m, 24h, 7d)")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _AGE_UNITS[unit.lower()])


@dataclass(frozen=True, slots=True)
class TrackedInfo:
    """What nxup's state database knows of an upload."""

    file_id: int
    path: str
    status: UploadStatus
    server_url: str
    parts_done: int  # parts recorded as acknowledged by S3
    part_count: int | None
    resumable: bool
    reason: str  # why it cannot be resumed ("" when it can)
    in_use_by: int | None = None  # pid of the running nxup sending it: never aborted here

    @property
    def file_name(self) -> str:
        return os.path.basename(self.path) or self.path


@dataclass(slots=True)
class StaleUpload:
    """One multipart upload still open on S3.

    `parts` and `bytes` are None until counted (one ListParts request per upload, so counting
    is optional and done in the background for large listings).
    """

    key: str
    upload_id: str
    initiated: datetime
    parts: int | None = None
    bytes: int | None = None
    tracked: TrackedInfo | None = None
    note: str = ""  # why the parts could not be counted, if they could not

    def age(self, now: datetime) -> timedelta:
        return max(now - self.initiated, timedelta(0))

    @property
    def resumable(self) -> bool:
        return self.tracked is not None and self.tracked.resumable

    def as_json(self, now: datetime) -> dict[str, Any]:
        tracked = self.tracked
        return {
            "key": self.key,
            "upload_id": self.upload_id,
            "initiated": self.initiated.isoformat(),
            "age_s": int(self.age(now).total_seconds()),
            "parts": self.parts,
            "bytes": self.bytes,
            "tracked": None if tracked is None else {
                "path": tracked.path,
                "status": tracked.status.value,
                "parts_done": tracked.parts_done,
                "part_count": tracked.part_count,
                "resumable": tracked.resumable,
                "reason": tracked.reason,
                "in_use_by": tracked.in_use_by,
            },
        }


def tracked_info(store: StateStore, record: UploadRecord) -> TrackedInfo:
    assert record.id is not None
    resumable, reason = _resumability(record)
    owner = store.owner_of(record.id)
    if owner is not None:
        resumable, reason = False, f"in use by nxup pid {owner.pid}"
    return TrackedInfo(
        file_id=record.id,
        path=record.path,
        status=record.status,
        server_url=record.server_url,
        parts_done=len(store.parts(record.id)),
        part_count=record.part_count,
        resumable=resumable,
        reason=reason,
        in_use_by=owner.pid if owner is not None else None,
    )


def _resumability(record: UploadRecord) -> tuple[bool, str]:
    if record.status not in UNFINISHED:
        return False, f"nxup marked it {record.status.value}; the S3 upload is a leftover"
    try:
        stat = os.stat(record.path)
    except OSError:
        return False, "the local file is gone"
    if record.size is not None and stat.st_size != record.size:
        return False, "the local file changed size (resume restarts it)"
    if record.mtime_ns is not None and stat.st_mtime_ns != record.mtime_ns:
        return False, "the local file was modified (resume restarts it)"
    return True, ""


def upload_of_record(store: StateStore, record: UploadRecord, *, initiated: datetime) -> StaleUpload:
    """The upload a journal record names (ListParts does not say when it started: `initiated`)."""
    return StaleUpload(
        key=record.object_key or "",
        upload_id=record.upload_id or "",
        initiated=initiated,
        tracked=tracked_info(store, record),
    )


def records_by_upload_id(store: StateStore | None) -> dict[str, UploadRecord]:
    """nxup's records that name a multipart upload; `tracked_info` (a parts query and a stat)
    is left for the uploads S3 actually returns."""
    if store is None:
        return {}
    return {
        record.upload_id: record
        for record in store.with_multipart_upload()
        if record.upload_id and record.id is not None
    }


def total_bytes(uploads: Iterable[StaleUpload]) -> int:
    return sum(upload.bytes or 0 for upload in uploads)


def at_least(uploads: Iterable[StaleUpload], older_than: timedelta | None, now: datetime) -> list[StaleUpload]:
    """The uploads at least `older_than` old (all of them without an age)."""
    if not older_than:
        return list(uploads)
    return [u for u in uploads if u.age(now) >= older_than]
