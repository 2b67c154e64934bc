"""What both ways of finding stale uploads share: listing (filtered by age, oldest first),
counting parts, aborting, on one bounded pool, and the state database kept in step.

A scanner supplies where uploads come from (`pages`) and its two S3 calls (`_list_parts`,
`_abort_on_s3`); what their failures mean is decided here, once.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from engine.errors import BatchGone, NxupError
from engine.lifecycle import UNFINISHED, UploadStatus
from engine.state import StateStore

from .failures import ADMIN_KEYS, describe_failure, is_denied, is_gone
from .outcomes import AbortOutcome, AbortReport, AbortResult
from .uploads import Clock, StaleUpload, at_least, utc_now

PART_COUNT_WORKERS = 8
WHY_STALE = "its multipart upload was aborted with nxup stale"
GONE_NOTE = "gone (completed or aborted meanwhile)"
BATCH_GONE_NOTE = "its batch expired on Nuxeo: only an admin (--bucket) can see its parts"
BATCH_GONE_TEXT = ("its batch expired on Nuxeo, so nxup has no credentials for it: "
                   "the server's cleanup or an admin (nxup stale --bucket) removes it")
ABORT_DENIED_TEXT = ("the batch credentials may not abort it (a stock Nuxeo's allow uploading only): the Nuxeo "
                     "server's clean-up removes it after a day, or an admin now (nxup stale --bucket)")

Item = TypeVar("Item")
Result = TypeVar("Result")


class Scanner(ABC):
    """Stale uploads from one source, cross-checked with the state database (when given)."""

    # Whether S3 refusing an abort leaves the upload to the server (batch credentials that may
    # upload only) rather than being a failure to report (an admin's keys lacking a permission).
    denied_abort_is_left_to_server = False
    keys = ADMIN_KEYS  # whose keys it signs with, as its failures name them

    def __init__(self, store: StateStore | None, *, now: Clock = utc_now, workers: int = PART_COUNT_WORKERS) -> None:
        self.store = store
        self.now = now
        self.workers = workers

    # == what a scanner supplies =================================================================
    @abstractmethod
    def pages(self, prefix: str = "") -> Iterator[list[StaleUpload]]:
        """The uploads under `prefix`, a page at a time (for progress)."""

    @abstractmethod
    def _bucket(self, upload: StaleUpload) -> str:
        """The bucket the upload is in (for naming a failure)."""

    @abstractmethod
    def _list_parts(self, upload: StaleUpload) -> list[dict[str, Any]]:
        """Every part S3 holds for the upload; raises what botocore or Nuxeo raise."""

    @abstractmethod
    def _abort_on_s3(self, upload: StaleUpload) -> None:
        """One AbortMultipartUpload; raises what botocore or Nuxeo raise."""

    def _parts_from_journal(self, upload: StaleUpload) -> bool:
        """Fill in parts and bytes from the journal when S3 may not be asked; False if not."""
        return False

    def _after_aborts(self, results: list[AbortResult]) -> None:
        """Clean-up once a set of aborts is done (`results` are the successful ones)."""
        return None

    # == listing =================================================================================
    def uploads(self, prefix: str = "", older_than: timedelta | None = None, *,
                count_parts: bool = True) -> list[StaleUpload]:
        """Every upload under `prefix` at least `older_than` old, oldest first."""
        now = self.now()
        seen: set[str] = set()
        found: list[StaleUpload] = []
        for page in self.pages(prefix):
            for upload in at_least(page, older_than, now):
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
        call for it). An upload that could not be counted gets a note saying why."""
        def count(upload: StaleUpload) -> None:
            if cancelled is not None and cancelled.is_set():
                return
            self._count_one(upload)
            if on_counted is not None:
                on_counted(upload)

        for _ in self._pooled(count, uploads, name="nxup-parts"):
            pass

    def _count_one(self, upload: StaleUpload) -> None:
        try:
            parts = self._list_parts(upload)
        except BatchGone:
            upload.note = BATCH_GONE_NOTE
        except (ClientError, BotoCoreError) as exc:
            if is_gone(exc):
                upload.note = GONE_NOTE
            elif not (is_denied(exc) and self._parts_from_journal(upload)):
                failure = describe_failure(exc, operation="list_parts", bucket=self._bucket(upload), key=upload.key,
                                           keys=self.keys)
                upload.note = str(failure)
        except NxupError as exc:
            upload.note = str(exc)
        else:
            upload.parts = len(parts)
            upload.bytes = sum(int(p.get("Size", 0)) for p in parts)

    # == aborting ================================================================================
    def abort(self, uploads: Iterable[StaleUpload], *, dry_run: bool = False,
              on_done: Callable[[AbortResult], None] | None = None) -> AbortReport:
        """Abort each upload, keeping the given order; `on_done` runs on the caller's thread.
        NoSuchUpload counts as done (it is gone either way)."""
        report = AbortReport(dry_run=dry_run)
        for result in self._pooled(lambda u: self._abort_or_not(u, dry_run=dry_run, why=WHY_STALE), uploads,
                                   name="nxup-abort"):
            report.results.append(result)
            if on_done is not None:
                on_done(result)
        if not dry_run:
            self._after_aborts(report.succeeded)
        return report

    def abort_one(self, upload: StaleUpload, *, dry_run: bool, why: str) -> AbortResult:
        """Abort one upload; `why` is what the state database records for its file."""
        result = self._abort_or_not(upload, dry_run=dry_run, why=why)
        if not dry_run and result.ok:
            self._after_aborts([result])
        return result

    def _abort_or_not(self, upload: StaleUpload, *, dry_run: bool, why: str) -> AbortResult:
        in_use_by = upload.tracked.in_use_by if upload.tracked is not None else None
        if in_use_by is not None:
            # A running nxup is sending it: not a leftover, whatever its age.
            return AbortResult(upload, AbortOutcome.IN_USE, f"in use by nxup pid {in_use_by}; left to it")
        if dry_run:
            return AbortResult(upload, AbortOutcome.WOULD_ABORT)
        outcome = self._abort_upload(upload)
        if outcome.ok:
            self._mark_cancelled(upload, why)
        return outcome

    def _abort_upload(self, upload: StaleUpload) -> AbortResult:
        try:
            self._abort_on_s3(upload)
        except BatchGone:
            return AbortResult(upload, AbortOutcome.BATCH_GONE, BATCH_GONE_TEXT)
        except (ClientError, BotoCoreError) as exc:
            if is_gone(exc):
                return AbortResult(upload, AbortOutcome.ALREADY_GONE)
            if is_denied(exc) and self.denied_abort_is_left_to_server:
                return AbortResult(upload, AbortOutcome.DENIED, ABORT_DENIED_TEXT)
            failure = describe_failure(exc, operation="abort_multipart_upload", bucket=self._bucket(upload),
                                       key=upload.key, keys=self.keys)
            return AbortResult(upload, AbortOutcome.FAILED, str(failure))
        except NxupError as exc:
            return AbortResult(upload, AbortOutcome.FAILED, str(exc))
        return AbortResult(upload, AbortOutcome.ABORTED)

    def _mark_cancelled(self, upload: StaleUpload, why: str) -> None:
        """An aborted upload can no longer be resumed: the state database must say so and why."""
        if self.store is None or upload.tracked is None:
            return
        file_id = upload.tracked.file_id
        record = self.store.get(file_id)
        if record is None or record.upload_id != upload.upload_id:
            return
        self.store.forget_parts(file_id)
        fields: dict[str, Any] = {"upload_id": None, "error": why}
        if record.status in UNFINISHED:
            fields.update(status=UploadStatus.CANCELLED, finished_at=time.time())
        self.store.update(file_id, **fields)

    # == the pool ================================================================================
    def _pooled(self, work: Callable[[Item], Result], items: Iterable[Item], *, name: str) -> Iterator[Result]:
        """`work` on every item from a bounded pool (one S3 request each: thousands of uploads
        would take minutes one by one); results in the items' order."""
        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix=name) as pool:
            yield from pool.map(work, items)
