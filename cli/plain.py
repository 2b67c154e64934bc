"""Headless output for scripts and cron: plain lines, or one JSON object per event per line."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from typing import IO, Any

from cli.logs import EVENTS_LOGGER
from cli.output import Detail, json_error
from cli.progress import LiveBar, OverallProgress
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
    """Counts outcomes and prints them, at the detail asked (see `Detail`), with the run's overall
    progress: a live bar on a terminal, a line every few seconds otherwise, an `overall` object
    with `--json`. Every event also goes to the log file, whatever the screen shows.
    Thread-safe: events come from engine threads, `tick` from the command's own."""

    def __init__(self, *, json_lines: bool, stream: IO[str] | None = None, progress_every_s: float = 2.0,
                 detail: Detail = Detail.NORMAL, live: bool = False, overall_every_s: float = 5.0) -> None:
        self.json_lines = json_lines
        self.stream = stream or sys.stdout
        self.detail = detail
        self.tally = RunTally()
        self.overall = OverallProgress()
        self._lock = threading.Lock()
        self._progress_every_s = progress_every_s
        self._overall_every_s = overall_every_s
        self._last_overall = time.monotonic()
        self._last_progress: dict[int, float] = {}
        self._started_at: dict[int, tuple[float, int]] = {}
        self.reader_gone = False
        self._paths: dict[int, str] = {}
        self._events_log = logging.getLogger(EVENTS_LOGGER)
        self._bar = LiveBar(self.stream) if live and not json_lines and detail > Detail.QUIET else None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._count(event)
            if self.json_lines:
                if self.detail > Detail.QUIET or not isinstance(event, FileProgress):
                    self._write_json(event)
                self._log_event(event)
            else:
                self._write_plain(event)

    # -- tally ---------------------------------------------------------------------------
    def _count(self, event: Event) -> None:
        tally, overall = self.tally, self.overall
        if isinstance(event, FileQueued):
            if event.file_id not in self._paths:
                tally.queued += 1
            self._paths[event.file_id] = event.path
            overall.queued(event.file_id, event.size)
        elif isinstance(event, FileStarted):
            overall.started(event.file_id, event.bytes_already_done)
        elif isinstance(event, FileProgress):
            overall.progress(event.file_id, acknowledged=event.acknowledged, in_flight=event.in_flight)
        elif isinstance(event, FileCompleted):
            tally.done += 1
            tally.bytes_done += event.size
            overall.completed(event.file_id)
        elif isinstance(event, FileFailed):
            tally.failed += 1
            tally.failures.append((event.path, event.reason))
            if event.file_id < 0:
                tally.queued += 1
            overall.failed(event.file_id)
        elif isinstance(event, FileSkipped):
            tally.skipped += 1
            overall.cancelled(event.file_id)  # nothing of it is to be sent
        elif isinstance(event, FileIgnored):
            tally.ignored += 1
        elif isinstance(event, FileCancelled):
            tally.cancelled += 1
            overall.cancelled(event.file_id)
        elif isinstance(event, FilePaused):
            tally.paused += 1
            overall.progress(event.file_id, acknowledged=event.acknowledged, in_flight=0)

    # -- output --------------------------------------------------------------------------
    def _emit(self, line: str) -> None:
        if self.reader_gone:
            return
        if self._bar is not None:
            self._bar.print(line)
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except BrokenPipeError:
            # The reader went away (`nxup ... | head -1`): the uploads go on, silently, as
            # they would with output to a file nobody reads.
            self.reader_gone = True
            quiet_closed_stdout()

    def emit_json(self, payload: dict[str, Any]) -> None:
        """One JSON object on its own line (log records with `--json` come this way)."""
        with self._lock:
            self._emit(json_line(payload))

    def _write_json(self, event: Event) -> None:
        payload: dict[str, Any] = {"event": event.kind, "time": round(time.time(), 3)}
        payload.update(dataclasses.asdict(event))
        self._emit(json_line(payload))

    def _log_event(self, event: Event) -> None:
        if self._events_log.isEnabledFor(logging.DEBUG):
            shown = self._line(event, time.monotonic())
            if shown is not None:
                level = logging.DEBUG if isinstance(event, (FileProgress, PartCompleted, FileQueued)) else logging.INFO
                self._events_log.log(level, "%s", shown[1])

    def _position(self) -> str:
        tally = self.tally
        finished = tally.done + tally.failed + tally.cancelled + tally.skipped
        return f"[{finished}/{tally.queued}]"

    def _write_plain(self, event: Event) -> None:
        shown = self._line(event, time.monotonic())
        if shown is None:
            return
        detail, line = shown
        if self.detail >= detail:
            self._emit(line)
        self._events_log.log(logging.DEBUG if detail > Detail.VERBOSE else logging.INFO, "%s", line)

    def _line(self, event: Event, now: float) -> tuple[Detail, str] | None:
        """The event's plain line, and the least detail that shows it (DEBUG: the log file only)."""
        name = printable(self._paths.get(event.file_id, getattr(event, "path", "")))
        if isinstance(event, FileStarted):
            # Bytes S3 held before this run are not this run's speed.
            self._started_at[event.file_id] = (now, event.bytes_already_done)
            how = f"{event.part_count} parts of {size_text(event.part_size)}" if event.multipart else "single upload"
            resumed = f", {event.parts_already_done} already on S3" if event.parts_already_done else ""
            return Detail.VERBOSE, f"started   {name} ({size_text(event.size)}, {how}{resumed})"
        if isinstance(event, FileProgress):
            if event.file_id not in self._started_at:  # sampled before its start was told
                return None
            if now - self._last_progress.get(event.file_id, 0.0) < self._progress_every_s:
                return None
            self._last_progress[event.file_id] = now
            return Detail.VERBOSE, f"progress  {name} {self._progress_text(event, now)}"
        if isinstance(event, FileCompleted):
            version = f" (version {event.version_label})" if event.version_label else ""
            return Detail.VERBOSE, (f"done      {self._position()} {name} ({size_text(event.size)}) -> "
                                    f"{printable(event.document_path)}{version}")
        if isinstance(event, FileFailed):
            # An empty path given on the command line is named as such.
            shown = printable(event.path) or '""'
            return Detail.QUIET, f"failed    {self._position()} {shown}: {printable(event.reason)}"
        if isinstance(event, FileSkipped):
            return Detail.VERBOSE, f"skipped   {self._position()} {name}: {printable(event.reason)}"
        if isinstance(event, FileCancelled):
            return Detail.VERBOSE, f"cancelled {self._position()} {name}"
        if isinstance(event, FilePaused):
            # Bytes in flight a pause dropped make the progress go back: said, not left to guess.
            if event.dropped:
                return Detail.NORMAL, (f"paused    {name}: kept {size_text(event.acknowledged)} acknowledged, "
                                       f"{size_text(event.dropped)} in flight will be sent again")
            return Detail.VERBOSE, f"paused    {name}" + (
                f": kept {size_text(event.acknowledged)} acknowledged" if event.acknowledged else "")
        if isinstance(event, Notice):
            return Detail.NORMAL, f"notice    {printable(event.message)}"
        if isinstance(event, FileQueued):
            return Detail.DEBUG, f"queued    {name} ({size_text(event.size)}) -> {printable(event.target)}"
        if isinstance(event, PartCompleted):
            return Detail.DEBUG, f"part      {name}: part {event.number} acknowledged ({size_text(event.size)})"
        return None  # ignored files: counted, named in JSON

    def _progress_text(self, event: FileProgress, now: float) -> str:
        # The percentage is of acknowledged bytes: it never goes back.
        percent = 100 * event.acknowledged / event.size if event.size else 100.0
        in_flight = f" +{size_text(event.in_flight)} in flight" if event.in_flight else ""
        started, base = self._started_at.get(event.file_id, (now, 0))
        elapsed = max(now - started, 1e-6)
        speed = max(event.sent - base, 0) / elapsed
        parts = f" parts {event.parts_done}/{event.part_count}" if event.part_count > 1 else ""
        eta = ""
        if speed > 0 and event.size > event.sent:
            eta = " ETA " + eta_text((event.size - event.sent) / speed)
        return (
            f"{percent:5.1f}% {size_text(event.acknowledged)}/{size_text(event.size)}{in_flight}"
            f" {speed_text(speed)}{parts}{eta}"
        )

    # -- the run as a whole ----------------------------------------------------------------
    def tick(self) -> None:
        """Called a few times a second while the run goes: redraws the live bar, and every few
        seconds writes the overall line (or its JSON object)."""
        with self._lock:
            figures = self.overall.figures()  # sampled every tick: the speed is measured from these
            if self._bar is not None:
                self._bar.show(figures)
                return
            now = time.monotonic()
            if now - self._last_overall < self._overall_every_s or self.detail is Detail.QUIET:
                return
            self._last_overall = now
            if self.json_lines:
                self._emit(json_line({"event": "overall", "time": round(time.time(), 3), **figures.as_json()}))
            else:
                self._emit(f"overall   {figures.text()}")
            self._events_log.info("overall   %s", figures.text())

    def fatal(self, reason: str) -> None:
        """A fatal error: with `--json`, the one `error` object (the caller says it on stderr)."""
        with self._lock:
            self._stop_bar()
            if self.json_lines:
                self._emit(json_error(reason))
            self._events_log.error("%s", reason)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.show(self.overall.figures())
            self._bar.stop()
            self._bar = None

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
        with self._lock:
            self._stop_bar()
            if self.json_lines:
                self._emit(json_line({"event": "summary", "time": round(time.time(), 3), **dataclasses.asdict(tally),
                                      "elapsed_s": round(elapsed_s, 3)}))
            else:
                self._emit(text)
            self._events_log.info("summary   %s", text)
        return text
