"""Headless output for scripts and cron: plain lines, or one JSON object per event per line."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from typing import IO, Any

from engine.events import (
    Event,
    FileCancelled,
    FileCompleted,
    FileFailed,
    FileIgnored,
    FilePaused,
    FileProgress,
    FileQueued,
    FileSkipped,
    FileStarted,
    Notice,
    PartCompleted,
)
from engine.text import eta_text, json_line, printable, size_text, speed_text


@dataclasses.dataclass
class RunTally:
    queued: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    paused: int = 0
    skipped: int = 0  # its name was taken in the target folder (see --existing)
    ignored: int = 0  # left out by the include and exclude patterns
    bytes_done: int = 0
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def quiet_closed_stdout() -> None:
    """Point standard output at /dev/null once its reader is gone, so that nothing more (not even
    the interpreter's last flush) fails on it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class Reporter:
    """Counts outcomes and prints them. Thread-safe: events come from engine threads."""

    def __init__(self, *, json_lines: bool, stream: IO[str] | None = None, progress_every_s: float = 2.0) -> None:
        self.json_lines = json_lines
        self.stream = stream or sys.stdout
        self.tally = RunTally()
        self._lock = threading.Lock()
        self._progress_every_s = progress_every_s
        self._last_progress: dict[int, float] = {}
        self._started_at: dict[int, tuple[float, int]] = {}
        self.reader_gone = False
        self._paths: dict[int, str] = {}

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._count(event)
            if self.json_lines:
                self._write_json(event)
            else:
                self._write_plain(event)

    # -- tally ---------------------------------------------------------------------------
    def _count(self, event: Event) -> None:
        tally = self.tally
        if isinstance(event, FileQueued):
            if event.file_id not in self._paths:
                tally.queued += 1
            self._paths[event.file_id] = event.path
        elif isinstance(event, FileCompleted):
            tally.done += 1
            tally.bytes_done += event.size
        elif isinstance(event, FileFailed):
            tally.failed += 1
            tally.failures.append((event.path, event.reason))
            if event.file_id < 0:
                tally.queued += 1
        elif isinstance(event, FileSkipped):
            tally.skipped += 1
        elif isinstance(event, FileIgnored):
            tally.ignored += 1
        elif isinstance(event, FileCancelled):
            tally.cancelled += 1
        elif isinstance(event, FilePaused):
            tally.paused += 1

    # -- output --------------------------------------------------------------------------
    def _emit(self, line: str) -> None:
        if self.reader_gone:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # The reader went away (`nxup ... | head -1`): the uploads go on, silently, as
            # they would with output to a file nobody reads.
            self.reader_gone = True
            quiet_closed_stdout()

    def _write_json(self, event: Event) -> None:
        payload: dict[str, Any] = {"event": event.kind, "time": round(time.time(), 3)}
        payload.update(dataclasses.asdict(event))
        self._emit(json_line(payload))

    def _position(self) -> str:
        tally = self.tally
        finished = tally.done + tally.failed + tally.cancelled + tally.skipped
        return f"[{finished}/{tally.queued}]"

    def _write_plain(self, event: Event) -> None:
        name = printable(self._paths.get(event.file_id, getattr(event, "path", "")))
        if isinstance(event, FileStarted):
            # Bytes S3 held before this run are not this run's speed.
            self._started_at[event.file_id] = (time.monotonic(), event.bytes_already_done)
            how = f"{event.part_count} parts of {size_text(event.part_size)}" if event.multipart else "single upload"
            resumed = f", {event.parts_already_done} already on S3" if event.parts_already_done else ""
            self._emit(f"started   {name} ({size_text(event.size)}, {how}{resumed})")
        elif isinstance(event, FileProgress):
            if event.file_id not in self._started_at:  # sampled before its start was told
                return
            now = time.monotonic()
            if now - self._last_progress.get(event.file_id, 0.0) < self._progress_every_s:
                return
            self._last_progress[event.file_id] = now
            self._emit(f"progress  {name} {self._progress_text(event, now)}")
        elif isinstance(event, FileCompleted):
            version = f" (version {event.version_label})" if event.version_label else ""
            self._emit(f"done      {self._position()} {name} ({size_text(event.size)}) -> "
                       f"{printable(event.document_path)}{version}")
        elif isinstance(event, FileFailed):
            # An empty path given on the command line is named as such.
            shown = printable(event.path) or '""'
            self._emit(f"failed    {self._position()} {shown}: {printable(event.reason)}")
        elif isinstance(event, FileSkipped):
            self._emit(f"skipped   {self._position()} {name}: {printable(event.reason)}")
        elif isinstance(event, FileCancelled):
            self._emit(f"cancelled {self._position()} {name}")
        elif isinstance(event, FilePaused):
            self._emit(f"paused    {name}")
        elif isinstance(event, Notice):
            self._emit(f"notice    {printable(event.message)}")
        elif isinstance(event, (FileQueued, PartCompleted, FileIgnored)):  # ignored files: counted, named in JSON
            return

    def _progress_text(self, event: FileProgress, now: float) -> str:
        percent = 100 * event.sent / event.size if event.size else 100.0
        started, base = self._started_at.get(event.file_id, (now, 0))
        elapsed = max(now - started, 1e-6)
        speed = max(event.sent - base, 0) / elapsed
        parts = f" parts {event.parts_done}/{event.part_count}" if event.part_count > 1 else ""
        eta = ""
        if speed > 0 and event.size > event.sent:
            eta = " ETA " + eta_text((event.size - event.sent) / speed)
        return (
            f"{percent:5.1f}% {size_text(event.sent)}/{size_text(event.size)}"
            f" {speed_text(speed)}{parts}{eta}"
        )

    def summary(self, *, elapsed_s: float) -> str:
        tally = self.tally
        text = (
            f"{tally.done} uploaded ({size_text(tally.bytes_done)} in {elapsed_s:.1f} s), "
            f"{tally.failed} failed, {tally.cancelled} cancelled, {tally.paused} paused"
        )
        if tally.skipped:
            text += f", {tally.skipped} skipped (already in the target)"
        if tally.ignored:
            text += f", {tally.ignored} ignored by patterns"
        if self.json_lines:
            self._emit(json_line({"event": "summary", "time": round(time.time(), 3), **dataclasses.asdict(tally),
                                  "elapsed_s": round(elapsed_s, 3)}))
        else:
            self._emit(text)
        return text
