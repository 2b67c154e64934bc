"""Streaming request bodies made of file slices.

A part is never loaded in memory: botocore reads it from the file in small blocks while it
sends, so memory stays flat whatever the file or part size. The slice counts bytes only while
botocore is really sending (not while it computes a checksum), rolls the count back when a
retry rewinds it, applies the bandwidth cap, and raises `Interrupted` as soon as its file is
paused or cancelled, which aborts the request mid-part; except that a pause lets a part finish
when what is left of it goes within the pause budget at the rate it is going: its bytes are then
kept instead of sent again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .bandwidth import BandwidthLimiter
from .errors import FileChanged, Interrupted


class StopReason:
    PAUSE = "pause"
    CANCEL = "cancel"


# How long a pause may take to stop every byte on the wire (the pause latency target): a part
# whose rest goes within it finishes, and its bytes stay acknowledged.
PAUSE_BUDGET_S = 0.5
# A part's rate is measured over at least this long before a pause trusts it.
_SHORTEST_MEASURE_S = 0.1


# Guards the creation of TransferControl events (see `TransferControl._wakeup`).
_WAKEUP_LOCK = threading.Lock()


class TransferControl:
    """A per-file flag that body reads check on every block."""

    __slots__ = ("_reason", "_event")

    def __init__(self) -> None:
        self._reason: str | None = None
        # Made when first waited on: an Event costs over a kilobyte, and most of 100,000
        # queued files are never waited on.
        self._event: threading.Event | None = None

    @property
    def reason(self) -> str | None:
        return self._reason

    def is_interrupted(self) -> bool:
        return self._reason is not None

    def interrupt(self, reason: str) -> None:
        # Cancel wins over pause: a paused file can still be cancelled.
        if self._reason != StopReason.CANCEL:
            self._reason = reason
        with _WAKEUP_LOCK:
            if self._event is not None:
                self._event.set()

    def clear(self) -> None:
        self._reason = None
        with _WAKEUP_LOCK:
            if self._event is not None:
                self._event.clear()

    def check(self) -> None:
        if self._reason is not None:
            raise Interrupted(self._reason)

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout`, waking early when interrupted; True if interrupted."""
        return self._wakeup().wait(timeout)

    def _wakeup(self) -> threading.Event:
        # Made and set under the lock that `interrupt` takes, so no interrupt is missed.
        with _WAKEUP_LOCK:
            if self._event is None:
                self._event = threading.Event()
                if self._reason is not None:
                    self._event.set()
            return self._event


@dataclass(slots=True)
class PartCounter:
    """Bytes of one part really sent. Written by one thread, sampled by others."""

    number: int
    size: int
    sent: int = 0


class FileSlice:
    """A read-only, seekable view of `size` bytes at `offset` of an open file descriptor.

    Uses `os.pread`, so many slices of one file can be read by several threads at once.
    """

    def __init__(
        self,
        fd: int,
        *,
        offset: int,
        size: int,
        counter: PartCounter,
        control: TransferControl,
        limiter: BandwidthLimiter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fd = fd
        self._offset = offset
        self._size = size
        self._pos = 0
        self._transferring = False
        self.counter = counter
        self.control = control
        self._limiter = limiter
        self._clock = clock
        self._began: tuple[float, int] | None = None  # (when, position) this send began
        self._finishing = False  # paused, but finishing within the pause budget

    # botocore and urllib3 only need read/seek/tell/len.
    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, where: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = where
        elif whence == os.SEEK_CUR:
            pos = self._pos + where
        elif whence == os.SEEK_END:
            pos = self._size + where
        else:
            raise ValueError(f"invalid whence {whence}")
        self._pos = max(0, min(pos, self._size))
        if self._transferring:
            # A retry rewinds the body: bytes shown must be bytes sent.
            self.counter.sent = self._pos
        return self._pos

    def read(self, amount: int | None = -1) -> bytes:
        remaining = self._size - self._pos
        if amount is None or amount < 0 or amount > remaining:
            amount = remaining
        if amount <= 0:
            return b""
        if self._transferring:
            if self.control.is_interrupted() and not self._finishes_in_budget():
                self.control.check()
            self._limiter.acquire(amount, wait_interrupted=self._throttled_wait)
        data = os.pread(self._fd, amount, self._offset + self._pos)
        if len(data) < amount:
            raise FileChanged("the file became shorter while it was being uploaded")
        self._pos += amount
        if self._transferring:
            self.counter.sent = self._pos
        return data

    def _throttled_wait(self, seconds: float) -> bool:
        """Wait for a turn at the cap; True when the wait must end with `Interrupted` (the file
        was paused or cancelled meanwhile, and this part is not one that finishes)."""
        if self._finishing and self.control.reason == StopReason.PAUSE:
            time.sleep(seconds)
            return False
        return self.control.wait(seconds) and not self._finishes_in_budget()

    def _finishes_in_budget(self) -> bool:
        """Whether this part, its file paused, may go on: what is left of it goes within the pause
        budget at the rate it has been sent. Decided once: a part that goes on finishes, unless
        the file is cancelled meanwhile."""
        if self.control.reason != StopReason.PAUSE:
            return False
        if not self._finishing and self._began is not None:
            began_at, began_pos = self._began
            elapsed = self._clock() - began_at
            if elapsed < _SHORTEST_MEASURE_S:
                return False  # too soon to tell (the first blocks fill buffers, not the wire)
            rate = (self._pos - began_pos) / elapsed
            if self._limiter.rate is not None:
                rate = min(rate, self._limiter.rate)  # a burst at the start is no lasting rate
            self._finishing = rate > 0 and (self._size - self._pos) / rate <= PAUSE_BUDGET_S
        return self._finishing

    # Hooks called around botocore's request creation (see `engine.s3.register_body_hooks`):
    # reads made while signing or hashing are not sends.
    def signal_transferring(self) -> None:
        self._transferring = True
        self.counter.sent = self._pos
        self._began = (self._clock(), self._pos)
        self._finishing = False

    def signal_not_transferring(self) -> None:
        self._transferring = False

    def close(self) -> None:
        """The descriptor belongs to the file transfer, not to the slice."""


__all__ = ["PAUSE_BUDGET_S", "FileSlice", "Interrupted", "PartCounter", "StopReason", "TransferControl"]
