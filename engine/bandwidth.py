"""A shared bandwidth cap for every body being sent, changeable while uploads run."""

from __future__ import annotations

import threading
import time
from typing import Callable

from .errors import Interrupted

# The longest single sleep, so that a rate change takes effect quickly.
_MAX_WAIT_STEP_S = 0.05
# Unused allowance that may be spent at once after an idle period (smooths bursts).
_BURST_S = 0.2


class BandwidthLimiter:
    """Reservation-based limiter: each read books its bytes on a shared timeline and sleeps
    until its turn. Fair across threads, no busy loop, and the rate can change at any time.

    The clock and sleep are injectable so tests need no real time.
    """

    def __init__(
        self,
        rate: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = 0.0

    @property
    def rate(self) -> int | None:
        """Bytes per second, or None for no cap."""
        return self._rate

    def set_rate(self, rate: int | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("a bandwidth cap must be positive")
        with self._lock:
            self._rate = rate
            self._next_free = min(self._next_free, self._clock())

    def acquire(self, amount: int, *, wait_interrupted: Callable[[float], bool] | None = None) -> None:
        """Wait until `amount` bytes may be sent.

        `wait_interrupted(seconds)` sleeps but wakes early, returning True, when the caller is
        paused or cancelled: the wait then ends at once with Interrupted.
        """
        rate = self._rate
        if rate is None or amount <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(self._next_free, now - _BURST_S)
            self._next_free = start + amount / rate
            wait_until = start
        while True:
            remaining = wait_until - self._clock()
            if remaining <= 0:
                return
            step = min(remaining, _MAX_WAIT_STEP_S)
            if wait_interrupted is None:
                self._sleep(step)
            elif wait_interrupted(step):
                raise Interrupted("interrupted while throttled")
