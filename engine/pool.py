"""A bounded pool of worker threads fed by a priority queue.

One pool serves every file: its threads upload parts of one file and of several files at once,
so the number of connections to S3 stays fixed whatever is queued. Lower priority tuples run
first (the manager puts finishing work before new parts, and earlier files before later ones).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Priority = tuple[int, ...]
_STOP = object()


class WorkerPool:
    def __init__(self, workers: int, *, name: str = "nxup-worker") -> None:
        if workers < 1:
            raise ValueError("at least one worker is needed")
        self._queue: queue.PriorityQueue[tuple[Priority, int, Any, tuple[Any, ...]]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()

    def submit(self, priority: Priority, task: Callable[..., None], *args: Any) -> None:
        self._queue.put((priority, next(self._order), task, args))

    def _run(self) -> None:
        while True:
            _, _, task, args = self._queue.get()
            if task is _STOP:
                return
            try:
                task(*args)
            except Exception:  # a task must never kill its worker
                log.exception("an upload task failed unexpectedly")

    def stop(self, *, timeout: float | None = 30.0) -> None:
        """Stop each worker after the task it is running; queued tasks are dropped (the stop
        markers sort before any work)."""
        for _ in self._threads:
            self._queue.put(((-1,), next(self._order), _STOP, ()))
        if self._started:
            for thread in self._threads:
                thread.join(timeout)
