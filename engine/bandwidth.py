"""A shared bandwidth cap for every body being sent, changeable while uploads run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import Interrupted

# The longest single sleep, so that a rate change takes effect quickly.
_MAX_WAIT_STEP_S = 0.05
# Unused allowance that may be spent at once after an idle period (smooths bursts).
_BURST_S = 0.2


class BandwidthLimiter:
    """Reservation-based limiter: each read books its bytes on a shared timeline and sleeps
    until its turn. Fair across threads, no busy loop, and the rate can change at any time.

    The timeline counts bytes, not seconds: a read books the bytes from `_next_free` on, and
    its turn comes when the timeline's position (which advances at the rate) reaches the
    start of its booking. A rate change re-anchors the position at the current time, so reads
    already waiting finish their wait at the new rate, never at the one they booked under.

    The clock and sleep are injectable so tests need no real time.
    """

    def __init__(
        self,
        rate: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("a bandwidth cap must be positive")
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The timeline: at time `_anchor_t` it stood at byte `_anchor_b`, and it advances at
        # the rate from there. `_next_free` is the first byte no read has booked yet.
        self._anchor_t = clock()
        self._anchor_b = 0.0
        self._next_free = 0.0

    @property
    def rate(self) -> int | None:
        """Bytes per second, or None for no cap."""
        return self._rate

    def _position(self, now: float, rate: int) -> float:
        return self._anchor_b + (now - self._anchor_t) * rate

    def set_rate(self, rate: int | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("a bandwidth cap must be positive")
        with self._lock:
            now = self._clock()
            if self._rate is None:
                # Nothing waits without a cap: the timeline starts again where the bookings end.
                self._anchor_b = self._next_free
            else:
                self._anchor_b = self._position(now, self._rate)
            self._anchor_t = now
            self._rate = rate

    def acquire(
        self, amount: int, *, wait_interrupted: Callable[[float], bool] | None = None
    ) -> None:
        """Wait until `amount` bytes may be sent.

        `wait_interrupted(seconds)` sleeps but wakes early, returning True, when the caller is
        paused or cancelled: the wait then ends at once with Interrupted.
        """
        if amount <= 0:
            return
        with self._lock:
            rate = self._rate
            if rate is None:
                return
            position = self._position(self._clock(), rate)
            start = max(self._next_free, position - _BURST_S * rate)
            self._next_free = start + amount
        while True:
            with self._lock:
                rate = self._rate
                if rate is None:
                    return
                # Read under the lock: a rate change since the booking applies to what is left.
                turn = self._anchor_t + (start - self._anchor_b) / rate
            remaining = turn - self._clock()
            if remaining <= 0:
                return
            step = min(remaining, _MAX_WAIT_STEP_S)
            if wait_interrupted is None:
                self._sleep(step)
            elif wait_interrupted(step):
                raise Interrupted("interrupted while throttled")
