"""Stale multipart uploads: find them, explain them, abort them.

A multipart upload that is neither completed nor aborted keeps its parts on S3, and they are
billed, forever unless a lifecycle rule (`AbortIncompleteMultipartUpload`) removes them. Two
ways in:

- `StaleScanner`: an S3 client with admin rights on the bucket lists every upload under a
  prefix (`s3:ListBucketMultipartUploads`), counts parts, aborts, reads and writes lifecycle
  rules.
- `TrackedScanner`: through Nuxeo only. Batch credentials are limited to the batch's prefix and
  cannot list the bucket, so only the uploads nxup itself recorded in its state database are
  seen; each is checked and aborted with its own batch's fresh credentials.

Both cross-check with the state database: which local file an upload belongs to and whether
`nxup resume` can still finish it. `abort_obsolete` is the start-up cleanup of nxup's own
uploads (file gone, or left unresumed too long); it never touches anything else.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .credentials import BatchCredentials, signing_with
from .errors import (
    BatchGone,
    NxupError,
    StorageError,
    s3_error_code,
    translate_s3_error,
)
from .lifecycle import Stage
from .nuxeo_batch import NuxeoBatchClient
from .owner import Owner
from .s3 import S3Clients, S3Tuning, list_all_parts
from .state import UNFINISHED, StateStore, UploadRecord, UploadStatus

Clock = Callable[[], datetime]

PAGE_SIZE = 1000  # S3's own maximum per ListMultipartUploads page
PART_COUNT_WORKERS = 8
DEFAULT_STALE_AFTER = timedelta(days=7)
ABORT_RULE_ID = "nxup-abort-incomplete-multipart-uploads"
_DENIED_CODES = frozenset({"AccessDenied", "Forbidden", "403", "AllAccessDisabled"})

# The IAM action each call needs, and whether it applies to the bucket or to an object.
_PERMISSIONS: dict[str, tuple[str, bool]] = {
    "list_multipart_uploads": ("s3:ListBucketMultipartUploads", False),
    "list_parts": ("s3:ListMultipartUploadParts", True),
    "abort_multipart_upload": ("s3:AbortMultipartUpload", True),
    "get_bucket_lifecycle_configuration": ("s3:GetLifecycleConfiguration", False),
    "put_bucket_lifecycle_configuration": ("s3:PutLifecycleConfiguration", False),
}
_ACTIONS = {
    "list_multipart_uploads": "listing multipart uploads",
    "list_parts": "listing the parts of a multipart upload",
    "abort_multipart_upload": "aborting a multipart upload",
    "get_bucket_lifecycle_configuration": "reading the bucket's lifecycle rules",
    "put_bucket_lifecycle_configuration": "writing the bucket's lifecycle rules",
}


class StaleError(StorageError):
    """Listing or cleaning up multipart uploads failed; `str()` is one line naming the cause."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# == parsing ages ===================================================================================

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """ "30m", "24h", "7d", "2w", "90s" or plain seconds. ValueError with a readable reason."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"not an age: {text!r} (examples: 30m, 24h, 7d)")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _AGE_UNITS[unit.lower()])


# == what an upload is =============================================================================

@dataclass(frozen=True, slots=True)
class TrackedInfo:
    """What nxup's state database knows of an upload."""

    record_id: int
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
        record_id=record.id,
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


# Aborting everything listed leaves out younger uploads unless an age is given: one this young
# may be running (rclone's clean-up uses the same day).
SAFE_ABORT_AGE = timedelta(hours=24)

# Journal stages at which a multipart upload may still be open on S3 (later, it was joined).
MAY_BE_OPEN = frozenset({Stage.NEW, Stage.BATCHED, Stage.STARTING_MULTIPART, Stage.SENDING, Stage.JOINING})


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


# == errors ========================================================================================

def describe_failure(exc: BaseException, *, operation: str, bucket: str, key: str | None = None) -> NxupError:
    """One line for a failed S3 call; access denied names the missing permission."""
    if isinstance(exc, NxupError):
        return exc
    code = s3_error_code(exc)
    action = _ACTIONS.get(operation, operation.replace("_", " "))
    if code in _DENIED_CODES and operation in _PERMISSIONS:
        permission, on_object = _PERMISSIONS[operation]
        resource = f"arn:aws:s3:::{bucket}/{key}" if on_object and key else f"arn:aws:s3:::{bucket}"
        return StaleError(f"S3 denied {action}: the credentials need {permission} on {resource}", code=code)
    if code == "NoSuchBucket":
        return StaleError(f"S3 has no bucket named {bucket}", code=code)
    translated = translate_s3_error(exc, action=action)
    return StaleError(str(translated), code=getattr(translated, "code", code))


def _is_gone(exc: BaseException) -> bool:
    return s3_error_code(exc) in ("NoSuchUpload", "404", "NoSuchKey")


# == listing =======================================================================================

def iter_upload_pages(client: Any, bucket: str, prefix: str = "", *, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
    """Every page of ListMultipartUploads under `prefix`.

    The markers sent back are exactly the ones the server returned: AWS returns both
    NextKeyMarker and NextUploadIdMarker, some S3-compatible servers (SeaweedFS) order by
    upload id and return only NextUploadIdMarker, and a guessed KeyMarker makes those skip
    uploads. A server whose markers do not advance ends the listing instead of looping.
    """
    markers: dict[str, str] = {}
    seen_markers: set[tuple[str, str]] = set()
    while True:
        try:
            answer = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, MaxUploads=page_size, **markers)
        except (ClientError, BotoCoreError) as exc:
            raise describe_failure(exc, operation="list_multipart_uploads", bucket=bucket) from exc
        yield list(answer.get("Uploads") or [])
        if not answer.get("IsTruncated"):
            return
        markers = {}
        if answer.get("NextKeyMarker"):
            markers["KeyMarker"] = str(answer["NextKeyMarker"])
        if answer.get("NextUploadIdMarker"):
            markers["UploadIdMarker"] = str(answer["NextUploadIdMarker"])
        position = (markers.get("KeyMarker", ""), markers.get("UploadIdMarker", ""))
        if not markers or position in seen_markers:
            raise StaleError("S3 returned a truncated listing without a usable next marker; the list is incomplete")
        seen_markers.add(position)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AbortResult:
    upload: StaleUpload
    ok: bool
    message: str  # "aborted", "already gone", "would abort", or the one-line reason it failed
    # nxup has no credentials that may abort it (its batch expired, or a stock Nuxeo's batch
    # credentials refuse aborts): the server's clean-up or an admin removes it.
    left_to_server: bool = False
    in_use: bool = False  # a running nxup is sending it: left alone, not a failure


_ABORT_DENIED = ("the batch credentials may not abort it (a stock Nuxeo's allow uploading only): the Nuxeo "
                 "server's clean-up removes it after a day, or an admin now (nxup stale --bucket)")


@dataclass(slots=True)
class AbortReport:
    dry_run: bool
    results: list[AbortResult] = field(default_factory=list)

    @property
    def succeeded(self) -> list[AbortResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[AbortResult]:
        return [r for r in self.results if not r.ok and not r.in_use]

    @property
    def in_use(self) -> list[AbortResult]:
        return [r for r in self.results if r.in_use]

    @property
    def bytes_freed(self) -> int:
        return total_bytes(r.upload for r in self.succeeded)


def _mark_cancelled(store: StateStore | None, upload: StaleUpload, why: str) -> None:
    """An aborted upload can no longer be resumed: the state database must say so and why."""
    if store is None or upload.tracked is None:
        return
    record_id = upload.tracked.record_id
    record = store.get(record_id)
    if record is None or record.upload_id != upload.upload_id:
        return
    store.forget_parts(record_id)
    fields: dict[str, Any] = {"upload_id": None, "error": why}
    if record.status in UNFINISHED:
        fields.update(status=UploadStatus.CANCELLED, finished_at=time.time())
    store.update(record_id, **fields)


def _filtered(uploads: Iterable[StaleUpload], older_than: timedelta | None, now: datetime) -> list[StaleUpload]:
    if not older_than:
        return list(uploads)
    return [u for u in uploads if u.age(now) >= older_than]


_WHY_STALE = "its multipart upload was aborted with nxup stale"


def _abort_all(uploads: Iterable[StaleUpload], abort_one: Callable[[StaleUpload], AbortResult], workers: int, *,
               dry_run: bool, on_done: Callable[[AbortResult], None] | None) -> AbortReport:
    """One AbortMultipartUpload per upload on a bounded pool (thousands of uploads would take
    minutes one by one); results keep the given order and `on_done` runs on the caller's thread."""
    report = AbortReport(dry_run=dry_run)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="nxup-abort") as pool:
        for result in pool.map(abort_one, uploads):
            report.results.append(result)
            if on_done is not None:
                on_done(result)
    return report


class _Scanner:
    """What both scanners share: the state database, the clock, the pool size, and aborting.
    A scanner supplies `_abort_upload` (one real abort) and, if it has any, `_after_aborts`."""

    def __init__(self, store: StateStore | None, *, now: Clock, workers: int) -> None:
        self.store = store
        self.now = now
        self.workers = workers

    def _in_pool(self, work: Callable[[StaleUpload], None], uploads: Iterable[StaleUpload]) -> None:
        """Run `work` on every upload from a bounded pool (one S3 request each)."""
        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="nxup-parts") as pool:
            list(pool.map(work, uploads))

    def abort(self, uploads: Iterable[StaleUpload], *, dry_run: bool = False,
              on_done: Callable[[AbortResult], None] | None = None) -> AbortReport:
        """Abort each upload; NoSuchUpload counts as done (it is gone either way)."""
        report = _abort_all(uploads, lambda u: self._abort_or_not(u, dry_run=dry_run, why=_WHY_STALE), self.workers,
                            dry_run=dry_run, on_done=on_done)
        if not dry_run:
            self._after_aborts(report.succeeded)
        return report

    def abort_one(self, upload: StaleUpload, *, dry_run: bool, why: str) -> AbortResult:
        result = self._abort_or_not(upload, dry_run=dry_run, why=why)
        if not dry_run and result.ok:
            self._after_aborts([result])
        return result

    def _abort_or_not(self, upload: StaleUpload, *, dry_run: bool, why: str) -> AbortResult:
        in_use_by = upload.tracked.in_use_by if upload.tracked is not None else None
        if in_use_by is not None:
            # A running nxup is sending it: not a leftover, whatever its age.
            return AbortResult(upload, False, f"in use by nxup pid {in_use_by}; left to it", in_use=True)
        return AbortResult(upload, True, "would abort") if dry_run else self._abort_upload(upload, why)

    def _abort_upload(self, upload: StaleUpload, why: str) -> AbortResult:
        raise NotImplementedError

    def _after_aborts(self, results: list[AbortResult]) -> None:
        """Clean-up once a set of aborts is done (`results` are the successful ones)."""


class StaleScanner(_Scanner):
    """Multipart uploads under a prefix of a bucket, through a client with bucket-wide rights."""

    def __init__(self, client: Any, bucket: str, store: StateStore | None = None, *,
                 now: Clock = utc_now, workers: int = PART_COUNT_WORKERS) -> None:
        super().__init__(store, now=now, workers=workers)
        self.client = client
        self.bucket = bucket

    def pages(self, prefix: str = "") -> Iterator[list[StaleUpload]]:
        """Uploads page by page (for progress), cross-checked with the state database."""
        records = records_by_upload_id(self.store)
        for page in iter_upload_pages(self.client, self.bucket, prefix):
            yield [
                StaleUpload(
                    key=str(entry["Key"]),
                    upload_id=str(entry["UploadId"]),
                    initiated=_as_utc(entry["Initiated"]),
                    tracked=self._tracked(records.get(str(entry["UploadId"]))),
                )
                for entry in page
            ]

    def _tracked(self, record: UploadRecord | None) -> TrackedInfo | None:
        return None if record is None or self.store is None else tracked_info(self.store, record)

    def list(self, prefix: str = "", older_than: timedelta | None = None, *, count_parts: bool = True) -> list[StaleUpload]:
        """Every upload under `prefix` at least `older_than` old, oldest first."""
        now = self.now()
        seen: set[str] = set()
        found: list[StaleUpload] = []
        for page in self.pages(prefix):
            for upload in _filtered(page, older_than, now):
                if upload.upload_id not in seen:  # a page boundary moved under concurrent changes
                    seen.add(upload.upload_id)
                    found.append(upload)
        found.sort(key=lambda u: (u.initiated, u.key))
        if count_parts:
            self.count_parts(found)
        return found

    def count_parts(self, uploads: list[StaleUpload], *, on_counted: Callable[[StaleUpload], None] | None = None,
                    cancelled: threading.Event | None = None) -> None:
        """Fill in parts and bytes, one ListParts per upload on a bounded pool (S3 has no batch
        call for it). An upload that vanished meanwhile gets a note instead."""
        def count(upload: StaleUpload) -> None:
            if cancelled is not None and cancelled.is_set():
                return
            try:
                parts = list_all_parts(self.client, bucket=self.bucket, key=upload.key, upload_id=upload.upload_id)
            except (ClientError, BotoCoreError) as exc:
                upload.note = "gone (completed or aborted meanwhile)" if _is_gone(exc) else str(
                    describe_failure(exc, operation="list_parts", bucket=self.bucket, key=upload.key))
            else:
                upload.parts = len(parts)
                upload.bytes = sum(int(p.get("Size", 0)) for p in parts)
            if on_counted is not None:
                on_counted(upload)

        self._in_pool(count, uploads)

    def _abort_upload(self, upload: StaleUpload, why: str) -> AbortResult:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)
            message = "aborted"
        except (ClientError, BotoCoreError) as exc:
            if not _is_gone(exc):
                error = describe_failure(exc, operation="abort_multipart_upload", bucket=self.bucket, key=upload.key)
                return AbortResult(upload, False, str(error))
            message = "already gone"
        _mark_cancelled(self.store, upload, why)
        return AbortResult(upload, True, message)


# == through Nuxeo: only nxup's own uploads ========================================================

class BatchS3:
    """S3 calls signed with a batch's own credentials, fetched fresh from Nuxeo.

    Batch credentials are limited to the batch's prefix, which is exactly what an upload of
    that batch needs: ListParts and AbortMultipartUpload on its key.
    """

    def __init__(self, batches: NuxeoBatchClient) -> None:
        self.batches = batches
        self._clients = S3Clients(S3Tuning(max_connections=PART_COUNT_WORKERS))
        self._lock = threading.Lock()
        self._access: dict[str, tuple[Any, BatchCredentials]] = {}

    def call(self, batch_id: str, method: str, **kwargs: Any) -> Any:
        """Raises BatchGone when Nuxeo no longer has the batch (then only an admin can act)."""
        client, credentials = self._batch(batch_id)
        with signing_with(credentials):
            return getattr(client, method)(**kwargs)

    def list_parts(self, batch_id: str, *, bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
        """Every part of one upload, each page signed with the batch's credentials."""
        client, credentials = self._batch(batch_id)
        with signing_with(credentials):
            return list_all_parts(client, bucket=bucket, key=key, upload_id=upload_id)

    def _batch(self, batch_id: str) -> tuple[Any, BatchCredentials]:
        with self._lock:
            known = self._access.get(batch_id)
        if known is not None:
            return known
        info = self.batches.batch_info(batch_id)
        credentials = BatchCredentials.create(
            info.credentials, refresh=lambda: self.batches.refresh_credentials(batch_id)
        )
        access = (self._clients.client(info.location), credentials)
        with self._lock:
            self._access[batch_id] = access
        return access


class TrackedScanner(_Scanner):
    """nxup's own multipart uploads on one Nuxeo server, checked and aborted through Nuxeo.

    The initiated time is when nxup recorded the upload: ListParts does not return it and the
    bucket cannot be listed with batch credentials.
    """

    def __init__(self, store: StateStore, batches: NuxeoBatchClient, *, now: Clock = utc_now,
                 workers: int = PART_COUNT_WORKERS) -> None:
        super().__init__(store, now=now, workers=workers)
        self.store: StateStore = store
        self.s3 = BatchS3(batches)
        self.server_url = batches.connection.url
        self._records: dict[str, UploadRecord] = {}

    def pages(self, prefix: str = "") -> Iterator[list[StaleUpload]]:
        # Asked first: a wrong password or URL is an error, not an empty or annotated list.
        self.s3.batches.check_login()
        page: list[StaleUpload] = []
        for record in self.store.with_multipart_upload():
            if record.server_url != self.server_url or not record.upload_id or record.id is None:
                continue
            if record.stage not in MAY_BE_OPEN:
                continue  # joined on S3 (its id is kept only to answer for it): not a leftover
            if not (record.object_key or "").startswith(prefix):
                continue
            self._records[record.upload_id] = record
            page.append(StaleUpload(
                key=record.object_key or "",
                upload_id=record.upload_id,
                initiated=datetime.fromtimestamp(record.created_at or time.time(), UTC),
                tracked=tracked_info(self.store, record),
            ))
        yield page

    def list(self, prefix: str = "", older_than: timedelta | None = None, *, count_parts: bool = True) -> list[StaleUpload]:
        found = _filtered(next(self.pages(prefix)), older_than, self.now())
        found.sort(key=lambda u: (u.initiated, u.key))
        if count_parts:
            self.count_parts(found)
        return found

    def _bucket_of(self, upload: StaleUpload) -> tuple[str, str]:
        record = self._records.get(upload.upload_id)
        if record is None and upload.tracked is not None:
            record = self.store.get(upload.tracked.record_id)
        if record is None or not record.batch_id or not record.bucket:
            raise StaleError("nxup has no batch for this upload; only an admin can abort it")
        return record.batch_id, record.bucket

    def count_parts(self, uploads: list[StaleUpload], *, on_counted: Callable[[StaleUpload], None] | None = None,
                    cancelled: threading.Event | None = None) -> None:
        def count(upload: StaleUpload) -> None:
            if cancelled is not None and cancelled.is_set():
                return
            try:
                batch_id, bucket = self._bucket_of(upload)
                parts = self.s3.list_parts(batch_id, bucket=bucket, key=upload.key, upload_id=upload.upload_id)
                upload.parts, upload.bytes = len(parts), sum(int(p.get("Size", 0)) for p in parts)
            except BatchGone:
                upload.note = "its batch expired on Nuxeo: only an admin (--bucket) can see its parts"
            except (ClientError, BotoCoreError) as exc:
                if s3_error_code(exc) in _DENIED_CODES and upload.tracked is not None:
                    # A stock Nuxeo's batch credentials may not list parts: the journal says
                    # which ones S3 acknowledged.
                    journal = self.store.parts(upload.tracked.record_id)
                    upload.parts, upload.bytes = len(journal), sum(p.size for p in journal.values())
                    upload.note = "parts from nxup's journal (the batch credentials may not list them)"
                else:
                    upload.note = "gone (completed or aborted meanwhile)" if _is_gone(exc) else str(
                        describe_failure(exc, operation="list_parts", bucket=bucket, key=upload.key))
            except NxupError as exc:
                upload.note = str(exc)
            if on_counted is not None:
                on_counted(upload)

        self._in_pool(count, uploads)

    def _abort_upload(self, upload: StaleUpload, why: str) -> AbortResult:
        try:
            batch_id, bucket = self._bucket_of(upload)
            self.s3.call(batch_id, "abort_multipart_upload", Bucket=bucket, Key=upload.key, UploadId=upload.upload_id)
            message = "aborted"
        except BatchGone:
            return AbortResult(upload, False, "its batch expired on Nuxeo, so nxup has no credentials for it: "
                                              "the server's cleanup or an admin (nxup stale --bucket) removes it",
                               left_to_server=True)
        except (ClientError, BotoCoreError) as exc:
            if s3_error_code(exc) in _DENIED_CODES:
                return AbortResult(upload, False, _ABORT_DENIED, left_to_server=True)
            if not _is_gone(exc):
                error = describe_failure(exc, operation="abort_multipart_upload", bucket=bucket, key=upload.key)
                return AbortResult(upload, False, str(error))
            message = "already gone"
        except NxupError as exc:
            return AbortResult(upload, False, str(exc))
        _mark_cancelled(self.store, upload, why)
        return AbortResult(upload, True, message)

    def _after_aborts(self, results: list[AbortResult]) -> None:
        """Drop the batches no unfinished upload uses any more (each held only its aborted
        uploads' files; Nuxeo would expire them anyway)."""
        batch_ids: set[str] = set()
        for result in results:
            try:
                batch_ids.add(self._bucket_of(result.upload)[0])
            except StaleError:
                pass
        if not batch_ids:
            return
        batch_ids -= {r.batch_id for r in self.store.unfinished() if r.batch_id}
        for batch_id in sorted(batch_ids):
            try:
                self.s3.batches.drop(batch_id)
            except NxupError:
                pass


# == lifecycle rules ===============================================================================

@dataclass(frozen=True, slots=True)
class LifecycleStatus:
    rules: list[dict[str, Any]]
    abort_days: int | None  # the shortest enabled bucket-wide AbortIncompleteMultipartUpload rule

    @property
    def has_abort_rule(self) -> bool:
        return self.abort_days is not None

    def describe(self) -> str:
        if self.abort_days is not None:
            return f"lifecycle: incomplete multipart uploads are aborted {self.abort_days} day(s) after they start"
        partial = any(_abort_days(r) is not None for r in self.rules)
        if partial:
            return "lifecycle: an AbortIncompleteMultipartUpload rule covers only part of the bucket"
        return "lifecycle: no AbortIncompleteMultipartUpload rule — stale uploads stay until aborted"


def _abort_days(rule: dict[str, Any]) -> int | None:
    if rule.get("Status") != "Enabled":
        return None
    days = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
    return int(days) if days is not None else None


def _covers_bucket(rule: dict[str, Any]) -> bool:
    rule_filter = rule.get("Filter")
    if rule_filter is None:
        return not rule.get("Prefix")
    return set(rule_filter) <= {"Prefix"} and not rule_filter.get("Prefix")


def lifecycle_status(client: Any, bucket: str) -> LifecycleStatus:
    try:
        rules = list(client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules") or [])
    except (ClientError, BotoCoreError) as exc:
        if s3_error_code(exc) == "NoSuchLifecycleConfiguration":
            rules = []
        else:
            raise describe_failure(exc, operation="get_bucket_lifecycle_configuration", bucket=bucket) from exc
    days = [d for r in rules if _covers_bucket(r) and (d := _abort_days(r)) is not None]
    return LifecycleStatus(rules=rules, abort_days=min(days) if days else None)


def add_abort_rule(client: Any, bucket: str, days: int) -> LifecycleStatus:
    """Add (or update nxup's own) bucket-wide AbortIncompleteMultipartUpload rule, keeping
    every other rule as it is: PutBucketLifecycleConfiguration replaces the whole set."""
    if days < 1:
        raise ValueError("the rule needs at least 1 day")
    existing = lifecycle_status(client, bucket).rules
    rules = [r for r in existing if r.get("ID") != ABORT_RULE_ID]
    rules.append({
        "ID": ABORT_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    })
    try:
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    except (ClientError, BotoCoreError) as exc:
        raise describe_failure(exc, operation="put_bucket_lifecycle_configuration", bucket=bucket) from exc
    return lifecycle_status(client, bucket)


# == admin access ==================================================================================

@dataclass(frozen=True, slots=True)
class S3AdminConfig:
    """Direct S3 access for an admin. Keys come from boto3's usual chain (environment,
    profiles, instance roles); the explicit ones are for programs (the demo), never argv."""

    bucket: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> S3AdminConfig | None:
        """The admin's bucket from NXUP_S3_BUCKET (and NXUP_S3_ENDPOINT, _REGION, _PROFILE),
        or None when it is not set."""
        bucket = os.environ.get("NXUP_S3_BUCKET")
        if not bucket:
            return None
        return cls(bucket=bucket, endpoint=os.environ.get("NXUP_S3_ENDPOINT"),
                   region=os.environ.get("NXUP_S3_REGION"), profile=os.environ.get("NXUP_S3_PROFILE"))

    def client(self) -> Any:
        try:
            session = boto3.session.Session(profile_name=self.profile)
        except BotoCoreError as exc:  # an unknown profile
            raise StaleError(f"cannot use the AWS profile {self.profile}: {exc}") from exc
        keys: dict[str, str] = {}
        if self.access_key_id and self.secret_access_key:
            keys = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        elif session.get_credentials() is None:
            raise StaleError("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use --profile")
        config = Config(
            region_name=self.region or session.region_name or "us-east-1",
            retries={"mode": "standard", "max_attempts": 4},
            max_pool_connections=PART_COUNT_WORKERS + 2,
            # S3-compatible servers on a custom endpoint rarely have virtual-host DNS names.
            s3={"addressing_style": "path" if self.endpoint else "auto"},
        )
        return session.client("s3", endpoint_url=self.endpoint, config=config, **keys)


# == start-up cleanup ==============================================================================

@dataclass(frozen=True, slots=True)
class CleanupEntry:
    path: str
    key: str
    why: str  # "the local file is gone", "not resumed for 9 days"
    ok: bool
    message: str  # "aborted", "already gone", or why it could not be aborted

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
                   batches: NuxeoBatchClient | None = None, admin: Any | None = None) -> list[CleanupEntry]:
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
    upload = StaleUpload(
        key=record.object_key or "", upload_id=record.upload_id or "",
        initiated=datetime.fromtimestamp(record.created_at or 0, UTC),
        tracked=tracked_info(store, record),
    )
    text = f"nxup aborted its multipart upload at start-up: {why}"
    result: AbortResult | None = None
    if tracked is not None and record.server_url == tracked.server_url:
        result = tracked.abort_one(upload, dry_run=False, why=text)
        if result.ok or admin is None or not result.left_to_server:
            return _entry(store, record, upload, why, result)
    if admin is not None and record.bucket:
        result = StaleScanner(admin, record.bucket, store).abort_one(upload, dry_run=False, why=text)
        return _entry(store, record, upload, why, result)
    return None if result is None else _entry(store, record, upload, why, result)


def _entry(store: StateStore, record: UploadRecord, upload: StaleUpload, why: str, result: AbortResult) -> CleanupEntry:
    if not result.ok and result.left_to_server and record.id is not None:
        # Nothing nxup can do later either: stop offering it for resume, keep the UploadId so
        # `nxup stale` still explains the leftover.
        store.update(record.id, status=UploadStatus.CANCELLED, finished_at=time.time(),
                     error=f"obsolete ({why}); its multipart upload is left on S3: {result.message}")
    return CleanupEntry(path=record.path, key=upload.key, why=why, ok=result.ok, message=result.message)


__all__ = [
    "ABORT_RULE_ID",
    "AbortReport",
    "AbortResult",
    "BatchS3",
    "CleanupEntry",
    "DEFAULT_STALE_AFTER",
    "LifecycleStatus",
    "S3AdminConfig",
    "StaleError",
    "StaleScanner",
    "StaleUpload",
    "TrackedInfo",
    "TrackedScanner",
    "abort_obsolete",
    "add_abort_rule",
    "describe_failure",
    "iter_upload_pages",
    "lifecycle_status",
    "obsolete_reason",
    "parse_age",
    "total_bytes",
    "utc_now",
]
