"""What the journal holds: one record per upload and one per part S3 acknowledged."""

from __future__ import annotations

from dataclasses import dataclass

from .lifecycle import Stage, UploadStatus


@dataclass(slots=True, kw_only=True)
class UploadRecord:
    """One row of `uploads`.

    `id` is the row's id in this store, which every other engine interface calls `file_id` (events,
    the manager's commands, the store's methods); `upload_id` is the S3 multipart UploadId (None for a
    single upload, or before the multipart upload is created).
    """

    id: int | None = None
    path: str  # absolute local path
    size: int | None = None
    mtime_ns: int | None = None
    server_url: str
    user: str | None = None
    target: str  # Nuxeo path of the parent folder
    doc_name: str | None = None  # title of the document to create
    status: UploadStatus = UploadStatus.QUEUED
    batch_id: str | None = None
    file_idx: int = 0  # the file's index in its batch (small files share one batch)
    handler: str | None = None
    bucket: str | None = None
    object_key: str | None = None
    upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    checksum_algorithm: str | None = None
    etag: str | None = None  # final ETag once the object exists on S3
    stage: Stage = Stage.NEW  # how far the upload's side effects went (see `lifecycle`)
    document_key: str | None = None  # Idempotency-Key of the document creation, once sent
    doc_uid: str | None = None  # document the blob was attached to
    # A name taken in the target folder (see `existing`): the policy, and what was decided,
    # journaled before any request it leads to (None: not decided yet).
    existing: str | None = None
    action: str | None = None
    version_of: str | None = None  # the document that gets the file as a new version
    doc_revision: str | None = None  # its changeToken when it was listed (guards the version)
    note: str | None = None  # why the file was skipped
    # The nxup process working on it (see `owner`); a claim of a dead process is free.
    owner_pid: int | None = None
    owner_started: int | None = None
    error: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    # The settings the upload was added with (workers, part size, checksum, cap...), as
    # `TransferSettings.journal_text()` writes them: `nxup resume` goes on with them.
    transfer_settings: str | None = None

    def __post_init__(self) -> None:
        # Rows and callers may pass the plain string; keep the fields enums either way.
        self.status = UploadStatus(self.status)
        self.stage = Stage(self.stage)


@dataclass(frozen=True, slots=True)
class PartRecord:
    """A part S3 has acknowledged."""

    number: int
    etag: str
    size: int
    checksum: str | None = None


__all__ = ["PartRecord", "UploadRecord"]
