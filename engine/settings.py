"""How the transfer manager works: workers, part sizes, checksums, bandwidth."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from .planning import DEFAULT_PART_SIZE, DEFAULT_SINGLE_UPLOAD_LIMIT
from .s3 import ChecksumAlgorithm
from .shared_batches import DEFAULT_FILES_PER_BATCH


@dataclass(frozen=True, slots=True)
class TransferSettings:
    workers: int = 8  # S3 requests in flight
    # Nuxeo requests in flight (registering objects, creating documents): their own bound, so
    # that a slow server (a large file's `/complete` copies it) never holds an S3 worker.
    nuxeo_workers: int = 8
    max_active_files: int | None = None  # default: 2 × (workers + nuxeo_workers)
    single_upload_limit: int = DEFAULT_SINGLE_UPLOAD_LIMIT
    part_size: int = DEFAULT_PART_SIZE
    checksum: ChecksumAlgorithm = ChecksumAlgorithm.CRC32
    verify_etag: bool = False
    bandwidth_limit: int | None = None
    max_attempts: int = 5
    # How often progress events go to the sink; None sends none, for a front end that samples
    # `snapshot()` itself on its own timer (the transfer manager).
    progress_interval_s: float | None = 0.25
    # Small files (single uploads) share a batch, up to this many each (see `shared_batches`).
    files_per_batch: int = DEFAULT_FILES_PER_BATCH

    @property
    def active_limit(self) -> int:
        # Files at their Nuxeo stages hold a slot too: with too few slots, S3 workers idle
        # while the files admitted wait for Nuxeo.
        return self.max_active_files or 2 * (self.workers + self.nuxeo_workers)

    def journal_text(self) -> str:
        """The settings a person chose for an upload, as the journal keeps them with it."""
        kept = {name: getattr(self, name) for name in JOURNALED_SETTINGS}
        kept["checksum"] = self.checksum.value
        return json.dumps(kept, sort_keys=True)

    def with_journal(self, text: str | None) -> TransferSettings:
        """These settings with the ones a journal entry kept; what it lacks, or holds in a form
        this version does not read, stays as it is here."""
        try:
            kept = json.loads(text) if text else {}
        except ValueError:
            return self
        if not isinstance(kept, dict):
            return self
        changes: dict[str, Any] = {}
        for name in JOURNALED_SETTINGS:
            if name in kept and _readable(name, kept[name]):
                value = kept[name]
                changes[name] = ChecksumAlgorithm(value) if name == "checksum" else value
        return replace(self, **changes)


# What `nxup upload` lets a person choose, kept with each upload for `nxup resume`.
JOURNALED_SETTINGS = ("workers", "part_size", "single_upload_limit", "checksum", "verify_etag", "bandwidth_limit")


def _readable(name: str, value: object) -> bool:
    if name == "checksum":
        return isinstance(value, str) and value in {algorithm.value for algorithm in ChecksumAlgorithm}
    if name == "verify_etag":
        return isinstance(value, bool)
    if name == "bandwidth_limit" and value is None:
        return True  # no cap
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


__all__ = ["JOURNALED_SETTINGS", "TransferSettings"]
