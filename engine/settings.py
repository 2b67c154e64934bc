"""How the transfer manager works: workers, part sizes, checksums, bandwidth."""

from __future__ import annotations

from dataclasses import dataclass

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
    progress_interval_s: float = 0.25
    # Small files (single uploads) share a batch, up to this many each (see `shared_batches`).
    files_per_batch: int = DEFAULT_FILES_PER_BATCH

    @property
    def active_limit(self) -> int:
        # Files at their Nuxeo stages hold a slot too: with too few slots, S3 workers idle
        # while the files admitted wait for Nuxeo.
        return self.max_active_files or 2 * (self.workers + self.nuxeo_workers)


__all__ = ["TransferSettings"]
