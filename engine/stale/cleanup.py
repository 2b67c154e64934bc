"""The start-up clean-up of nxup's own multipart uploads that will never be finished (the local
file is gone, or it was left unresumed too long). Nothing else is touched."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.edges import NuxeoCalls
from engine.lifecycle import UNFINISHED, UploadStatus
from engine.owner import Owner
from engine.state import StateStore, UploadRecord

from .admin import AdminScanner
from .outcomes import AbortOutcome, AbortResult
from .tracked import TrackedScanner
from .uploads import DEFAULT_STALE_AFTER, Clock, StaleUpload, upload_of_record, utc_now


@dataclass(frozen=True, slots=True)
class CleanupEntry:
    path: str
    key: str
    why: str  # "the local file is gone", "not resumed for 9 days"
    outcome: AbortOutcome
    message: str  # "aborted", "already gone", or why it could not be aborted

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    def notice(self) -> str:
        if self.ok:
            return f"aborted the obsolete multipart upload of {self.path} ({self.why})"
        return f"could not abort the obsolete multipart upload of {self.path} ({self.why}): {self.message}"


def obsolete_reason(record: UploadRecord, *, max_age: timedelta | None, now: datetime,
                    last_activity: float | None = None) -> str | None:
    """Why an unfinished nxup upload is obsolete, or None if it is not. Its age counts from
    `last_activity` (the last part saved, or the row's last change) when given."""
    if record.status not in UNFINISHED or not record.upload_id:
        return None
    if not os.path.lexists(record.path):
        return "the local file is gone"
    moved = last_activity if last_activity is not None else record.updated_at
    if max_age and moved is not None:
        idle = now - datetime.fromtimestamp(moved, UTC)
        if idle > max_age:
            return f"not resumed for {_days_text(idle)}"
    return None


def _days_text(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 2 else f"{span.total_seconds() / 3600:.0f} hours"


def abort_obsolete(store: StateStore, *, max_age: timedelta | None = DEFAULT_STALE_AFTER, now: Clock = utc_now,
                   batches: NuxeoCalls | None = None, admin: Any | None = None) -> list[CleanupEntry]:
    """Abort nxup's own obsolete multipart uploads (file gone, or unresumed longer than
    `max_age`; None or 0 = never by age) and mark them cancelled. Nothing else is touched.

    Uploads of another Nuxeo server are left for when that server is used, unless `admin`
    (an S3 client with bucket-wide rights) is given. An upload whose batch expired is aborted
    only with `admin`; otherwise it is marked cancelled with the reason, for an admin or the
    server's cleanup to remove."""
    current = now()
    tracked = TrackedScanner(store, batches, now=now) if batches is not None else None
    entries: list[CleanupEntry] = []
    me = Owner.current()
    for record in store.unfinished():
        assert record.id is not None
        why = obsolete_reason(record, max_age=max_age, now=current, last_activity=store.last_activity(record.id))
        if why is None:
            continue
        owner = store.owner_of(record.id)
        if owner is not None and owner != me:
            continue  # another nxup is working on it right now
        entry = _abort_record(store, record, why, tracked=tracked, admin=admin)
        if entry is not None:
            entries.append(entry)
    return entries


def _abort_record(store: StateStore, record: UploadRecord, why: str, *, tracked: TrackedScanner | None,
                  admin: Any | None) -> CleanupEntry | None:
    upload = upload_of_record(store, record, initiated=datetime.fromtimestamp(record.created_at or 0, UTC))
    text = f"nxup aborted its multipart upload at start-up: {why}"
    result: AbortResult | None = None
    if tracked is not None and record.server_url == tracked.server_url:
        result = tracked.abort_one(upload, dry_run=False, why=text)
        if result.ok or admin is None or not result.left_to_server:
            return _entry(store, record, upload, why, result)
    if admin is not None and record.bucket:
        result = AdminScanner(admin, record.bucket, store).abort_one(upload, dry_run=False, why=text)
        return _entry(store, record, upload, why, result)
    return None if result is None else _entry(store, record, upload, why, result)


def _entry(store: StateStore, record: UploadRecord, upload: StaleUpload, why: str,
           result: AbortResult) -> CleanupEntry:
    if result.left_to_server and record.id is not None:
        # Nothing nxup can do later either: stop offering it for resume, keep the UploadId so
        # `nxup stale` still explains the leftover.
        store.update(record.id, status=UploadStatus.CANCELLED, finished_at=time.time(),
                     error=f"obsolete ({why}); its multipart upload is left on S3: {result.message}")
    return CleanupEntry(path=record.path, key=upload.key, why=why, outcome=result.outcome, message=result.message)
