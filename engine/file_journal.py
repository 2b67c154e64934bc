"""One file's journal row, written as its upload goes: straight through, or held back between
requests (see `writes_held`), its stage moved only along the allowed transitions (`lifecycle`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .lifecycle import Stage, check_transition
from .state import StateStore
from .transfer import FileTransfer


class FileJournal:
    def __init__(self, *, store: StateStore, lock: threading.RLock) -> None:
        self.store = store
        self._lock = lock

    def persist(self, transfer: FileTransfer, **fields: Any) -> None:
        """Write fields of the file's journal row, then its in-memory record (held back, inside
        `writes_held`, until the next `save_held`)."""
        if transfer.unsaved_by == threading.get_ident():
            transfer.unsaved.update(fields)
        else:
            self.store.update(transfer.id, **fields)
        for name, value in fields.items():
            setattr(transfer.record, name, value)

    @contextmanager
    def writes_held(self, transfer: FileTransfer) -> Iterator[None]:
        """Journal writes of this thread for the file, held back and written as one.

        Stages with no request between them (the batch and plan chosen, then sending; the
        object on S3, then registering it) need not each be written: only what a request
        depends on must be in the journal before that request leaves, so whoever sends one
        inside the block calls `save_held` first. Whatever is held is written at the end of
        the block, failure or not."""
        if transfer.unsaved_by is not None:  # already held by an enclosing block
            yield
            return
        transfer.unsaved_by = threading.get_ident()
        try:
            yield
        finally:
            try:
                self.save_held(transfer)
            finally:
                transfer.unsaved_by = None
                transfer.unsaved.clear()

    def save_held(self, transfer: FileTransfer) -> None:
        """Write the journal fields held back so far (before a request that depends on them)."""
        if transfer.unsaved:
            fields, transfer.unsaved = transfer.unsaved, {}
            self.store.update(transfer.id, **fields)

    def advance(self, transfer: FileTransfer, stage: Stage, **fields: Any) -> None:
        """Journal the file's next stage (with the facts that go with it) before going on."""
        check_transition(transfer.record.stage, stage)
        self.persist(transfer, stage=stage, **fields)


__all__ = ["FileJournal"]
