"""How many parts are in flight under a bandwidth cap.

Without a cap, every worker sends a part. Under a cap, the cap is shared by the parts in flight:
with 8 workers at 30 MiB/s, 8 parts of 20 MiB each go at under 4 MiB/s, all half done at any
moment, and a pause or a crash drops the bytes of all of them. So under a cap, a part starts only
while the parts in flight hold less than one second of the cap: ceil(cap / part size) parts of
one size (2 of 20 MiB at 30 MiB/s, 1 at 20 MiB/s or below, 5 at 100 MiB/s), at least one, at most
the workers. Each part then goes at about a part per second or more, which one connection
sustains, so the cap is still filled, and a pause or a crash drops about a second of the cap per
part in flight. Counting bytes, not parts, keeps the rule for files of different part sizes.

Parts held back wait here, in the pool's priority order, not on a worker: the workers stay free
for small files and for finishing, and a part goes to the pool as soon as one in flight ends or
the cap is raised.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Any

from .edges import Executor
from .pool import Priority

# The parts in flight may hold this many seconds of the cap.
_SECONDS_OF_CAP = 1.0


class PartGate:
    def __init__(self, pool: Executor, rate: int | None) -> None:
        self._pool = pool
        self._rate = rate
        self._lock = threading.Lock()
        self._in_flight_bytes = 0
        self._in_flight = 0
        self._held: list[tuple[Priority, int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = itertools.count()

    @property
    def in_flight(self) -> int:
        """Parts handed to the pool and not ended yet."""
        return self._in_flight

    def set_rate(self, rate: int | None) -> None:
        with self._lock:
            self._rate = rate
            ready = self._release()
        self._start(ready)

    def submit(self, priority: Priority, size: int, task: Callable[..., None], *args: Any) -> None:
        """Run `task(*args)` on the pool as a part of `size` bytes, now or once the cap allows."""
        with self._lock:
            heapq.heappush(self._held, (priority, next(self._order), size, task, args))
            ready = self._release()
        self._start(ready)

    def _allows(self) -> bool:
        if self._rate is None or self._in_flight == 0:
            return True
        return self._in_flight_bytes < self._rate * _SECONDS_OF_CAP

    def _release(self) -> list[tuple[Priority, int, Callable[..., None], tuple[Any, ...]]]:
        """The held parts that may start now, counted in flight (lock held)."""
        ready = []
        while self._held and self._allows():
            priority, _, size, task, args = heapq.heappop(self._held)
            self._in_flight += 1
            self._in_flight_bytes += size
            ready.append((priority, size, task, args))
        return ready

    def _start(self, ready: list[tuple[Priority, int, Callable[..., None], tuple[Any, ...]]]) -> None:
        for priority, size, task, args in ready:
            self._pool.submit(priority, self._run, size, task, args)

    def _run(self, size: int, task: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            task(*args)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._in_flight_bytes -= size
                ready = self._release()
            self._start(ready)


__all__ = ["PartGate"]
