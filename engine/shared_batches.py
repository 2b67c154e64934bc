"""One Nuxeo upload batch for many small files.

A batch holds files at indexes 0..n, and its one set of credentials signs every upload into it.
Giving each small file a batch of its own costs a round trip per file (and, on a real server,
an STS AssumeRole), which is most of what sending a small file costs. New small files take the
next index of the open batch instead; a batch is closed after `capacity` files (the server
loads a batch's whole file list on every access to it, so batches stay short), and dropped once
every file that took an index of it is through with it in this run.

Only new files are grouped: a resumed file keeps the batch its journal names, and a file whose
batch is gone goes on with a batch of its own (see `FileSteps._replace_batch`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .credentials import BatchCredentials
from .nuxeo_batch import BatchInfo

DEFAULT_FILES_PER_BATCH = 100


@dataclass(frozen=True, slots=True)
class BatchSlot:
    """The batch and index a file takes, with the batch's shared credentials."""

    batch: BatchInfo
    credentials: BatchCredentials
    file_idx: int


@dataclass(slots=True)
class _OpenBatch:
    batch: BatchInfo
    credentials: BatchCredentials
    taken: int = 0
    holders: set[int] = field(default_factory=set)
    closed: bool = False


class SharedBatches:
    """Hands out batch indexes to new small files; says when a batch may be dropped."""

    def __init__(
        self,
        *,
        new_batch: Callable[[], BatchInfo],
        credentials_for: Callable[[BatchInfo], BatchCredentials],
        capacity: int = DEFAULT_FILES_PER_BATCH,
    ) -> None:
        if capacity < 1:
            raise ValueError("a shared batch holds at least one file")
        self._new_batch = new_batch
        self._credentials_for = credentials_for
        self._capacity = capacity
        self._lock = threading.Lock()  # held while a batch is created: the others wait for it
        self._open: _OpenBatch | None = None
        self._by_id: dict[str, _OpenBatch] = {}

    def take(self, holder: int) -> BatchSlot:
        """The next index of the open batch for file `holder` (a new batch when it is full)."""
        with self._lock:
            current = self._open
            if current is None or current.taken >= self._capacity:
                if current is not None:
                    current.closed = True
                batch = self._new_batch()
                current = _OpenBatch(batch=batch, credentials=self._credentials_for(batch))
                self._open = current
                self._by_id[batch.batch_id] = current
            slot = BatchSlot(batch=current.batch, credentials=current.credentials, file_idx=current.taken)
            current.taken += 1
            current.holders.add(holder)
            return slot

    def release(self, holder: int, batch_id: str, *, more_coming: bool) -> bool:
        """File `holder` is done with batch `batch_id` (its document made, or it was
        cancelled). True when this run may drop the batch: it is not one handed out here, or
        no other file of it is left and it takes no more files (`more_coming`: new files wait
        for a batch, so the open one stays open)."""
        with self._lock:
            shared = self._by_id.get(batch_id)
            if shared is None:
                return True
            shared.holders.discard(holder)
            if shared.holders:
                return False
            if not shared.closed:
                if more_coming:
                    return False
                shared.closed = True
                self._open = None
            del self._by_id[batch_id]
            return True

    def close(self) -> list[str]:
        """No more files will come: the batches nothing uses any more, to drop."""
        with self._lock:
            if self._open is not None:
                self._open.closed = True
                self._open = None
            idle = [batch_id for batch_id, shared in self._by_id.items() if not shared.holders]
            for batch_id in idle:
                del self._by_id[batch_id]
            return idle


__all__ = ["BatchSlot", "DEFAULT_FILES_PER_BATCH", "SharedBatches"]
