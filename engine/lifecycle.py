"""The states of one file's upload: its scheduling status, its journaled stages, and the only
transitions allowed between stages.

A file goes through side effects that must each happen once: start the multipart upload, join
its parts, register the object with Nuxeo (`/complete`), create the document. Each is preceded
by its *intent* stage, journaled before the request leaves, and followed by its *result* stage,
journaled as soon as the answer arrives. After a crash at any point the stored stage says which
effect may have happened without its answer being seen, and the manager checks (or repeats in
a way that cannot duplicate) instead of repeating blindly:

- `STARTING_MULTIPART`: an upload may exist on S3 without its id; it is left to the server's
  clean-up (and `nxup stale`) and a new one is started.
- `JOINING`: the parts may already be joined. Joining again works if not; if S3 no longer knows
  the upload, Nuxeo is asked to register the key (it checks the object with its own rights).
- `REGISTERING`: `/complete` is repeated (it only records the object in the batch).
- `CREATING_DOCUMENT`: the creation is sent again with the same `Idempotency-Key`, so a server
  that ran it answers with the document it made instead of making a second one.

Where the scheduling status (queued, paused, failed...) says whether the file is being worked
on, the stage says how far its effects went; it never goes back except by the named recoveries.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Stage(StrEnum):
    NEW = "new"  # nothing on the servers yet
    BATCHED = "batched"  # a batch and an object key are chosen
    STARTING_MULTIPART = "starting_multipart"  # intent: CreateMultipartUpload sent
    SENDING = "sending"  # bytes going to S3 (the multipart upload id is known if multipart)
    JOINING = "joining"  # intent: CompleteMultipartUpload sent
    ON_S3 = "on_s3"  # the object is whole on S3
    REGISTERING = "registering"  # intent: Nuxeo's /complete sent
    REGISTERED = "registered"  # the batch holds the object
    CREATING_DOCUMENT = "creating_document"  # intent: document creation sent, with its key
    DOCUMENTED = "documented"  # the document holds the blob


class UploadStatus(StrEnum):
    """Where a file stands in the schedule (queued, paused, failed...), where its stage says how
    far its effects went."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # its name was taken in the target folder (see `existing`): nothing sent


# What `nxup resume` picks up; FAILED is included so that a failed upload is retried.
UNFINISHED: frozenset[UploadStatus] = frozenset(
    {UploadStatus.QUEUED, UploadStatus.UPLOADING, UploadStatus.PAUSED, UploadStatus.FAILED}
)


def count_by_status(statuses: Iterable[UploadStatus]) -> dict[UploadStatus, int]:
    """How many files are in each status (every status present, zero or not)."""
    counts = dict.fromkeys(UploadStatus, 0)
    for status in statuses:
        counts[status] += 1
    return counts


_S = Stage
# Going back to NEW (the file changed: start over) is allowed from everywhere but the end.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    _S.NEW: frozenset({_S.BATCHED}),
    _S.BATCHED: frozenset({_S.STARTING_MULTIPART, _S.SENDING}),
    # Back to BATCHED: the id of an upload started just before a crash is unknown.
    _S.STARTING_MULTIPART: frozenset({_S.SENDING, _S.BATCHED}),
    # Single upload: straight to ON_S3. Back to BATCHED: the multipart upload is gone from S3.
    _S.SENDING: frozenset({_S.JOINING, _S.ON_S3, _S.BATCHED}),
    # REGISTERED: S3 lost the answer of a join that happened, and Nuxeo confirmed the object.
    # SENDING: S3 refused some parts (InvalidPart). BATCHED: the upload and object are gone.
    _S.JOINING: frozenset({_S.ON_S3, _S.REGISTERED, _S.SENDING, _S.BATCHED}),
    _S.ON_S3: frozenset({_S.REGISTERING}),
    # ON_S3: the batch expired: register again with a new batch. BATCHED: Nuxeo has no object.
    _S.REGISTERING: frozenset({_S.REGISTERED, _S.ON_S3, _S.BATCHED}),
    _S.REGISTERED: frozenset({_S.CREATING_DOCUMENT, _S.ON_S3}),
    # ON_S3: the server made a document without the blob (its batch had expired); that
    # document was removed and the object goes through a new batch.
    _S.CREATING_DOCUMENT: frozenset({_S.DOCUMENTED, _S.ON_S3}),
    _S.DOCUMENTED: frozenset(),
}

# Stages whose effect is tied to the batch: a new batch must register the object again.
BATCH_BOUND: frozenset[Stage] = frozenset({_S.REGISTERING, _S.REGISTERED, _S.CREATING_DOCUMENT})


class InvalidTransition(RuntimeError):
    """A stage change the table does not allow: a bug, never a user error."""


def check_transition(current: Stage, target: Stage) -> None:
    if target == current:
        return
    if target is Stage.NEW and current is not Stage.DOCUMENTED:
        return
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"an upload cannot go from {current.value} to {target.value}")


def stage_after_new_batch(current: Stage) -> Stage:
    """Where a file stands once its expired batch is replaced: bytes on S3 stay where they are;
    what the old batch held (the registered object) must be registered again."""
    return Stage.ON_S3 if current in BATCH_BOUND else current


__all__ = [
    "BATCH_BOUND", "InvalidTransition", "Stage", "TRANSITIONS", "UNFINISHED", "UploadStatus", "check_transition",
    "count_by_status", "stage_after_new_batch",
]
