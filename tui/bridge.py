"""Engine events into the Textual app without blocking the engine's threads.

The engine calls the sink from its worker threads. Lifecycle events are queued and one
`EngineEvents` message is posted per burst (`post_message` is thread-safe and returns at once),
so 10,000 queued files make a handful of messages, not 10,000 screen updates. Progress events
are dropped here: the app samples the engine's counters on its own timer instead.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from textual.message import Message
from textual.message_pump import MessagePump

from engine.events import Event, FileProgress, PartCompleted


@dataclass
class EngineEvents(Message):
    """Lifecycle events are waiting in the bridge; drain them with `EventBridge.drain()`."""


class EventBridge:
    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._lock = threading.Lock()
        self._posted = False
        self._target: MessagePump | None = None

    def connect(self, target: MessagePump) -> None:
        self._target = target
        self._notify()

    def __call__(self, event: Event) -> None:
        if isinstance(event, (FileProgress, PartCompleted)):
            return
        with self._lock:
            self._events.append(event)
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            if self._posted or self._target is None or not self._events:
                return
            self._posted = True
        self._target.post_message(EngineEvents())

    def drain(self) -> list[Event]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
            self._posted = False
        return events
