"""The overall progress of a headless run: files and bytes done of the total, speed, time left.

The reporter feeds it the engine's events; it is read as one line (piped output and the log
file), as `overall` objects with `--json`, or drawn as a live bar on a terminal (`LiveBar`, with
rich.progress, as `rclone -P` draws its own).

Bytes are told apart as the engine counts them: acknowledged (S3 answered for their part: they
stay sent whatever happens) and in flight (on the wire in a part S3 has not answered yet: a pause
or a crash sends them again). The speed counts this run's bytes only, over the last seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from engine.text import eta_text, size_text, speed_text

# The speed is measured over this many seconds: long enough to smooth a part's answer, short
# enough to follow a new bandwidth cap.
_SPEED_WINDOW_S = 10.0


@dataclass(slots=True)
class _FileBytes:
    size: int
    acknowledged: int = 0
    in_flight: int = 0
    before_run: int = 0  # on S3 before this run: not this run's speed
    counted: bool = True  # in the totals (a failed file is not, until it is queued again)


@dataclass(frozen=True, slots=True)
class OverallFigures:
    files_done: int
    files_failed: int
    files_total: int
    bytes_acknowledged: int
    bytes_in_flight: int
    bytes_total: int
    speed: float  # bytes per second, over the last seconds
    eta_s: float | None

    @property
    def bytes_done(self) -> int:
        return self.bytes_acknowledged + self.bytes_in_flight

    def text(self) -> str:
        """`3/10 files, 40.0 MiB/100.0 MiB (40%) +8.0 MiB in flight, 5.0 MiB/s, ETA 12s`."""
        # Of the acknowledged bytes: the figure that never goes back.
        percent = 100 * self.bytes_acknowledged / self.bytes_total if self.bytes_total else 100.0
        failed = f" ({self.files_failed} failed)" if self.files_failed else ""
        in_flight = f" +{size_text(self.bytes_in_flight)} in flight" if self.bytes_in_flight else ""
        eta = f", ETA {eta_text(self.eta_s)}" if self.eta_s is not None else ""
        return (
            f"{self.files_done}/{self.files_total} files{failed}, "
            f"{size_text(self.bytes_acknowledged)}/{size_text(self.bytes_total)} ({percent:.0f}%){in_flight}, "
            f"{speed_text(self.speed)}{eta}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "files_done": self.files_done, "files_failed": self.files_failed, "files_total": self.files_total,
            "bytes_acknowledged": self.bytes_acknowledged, "bytes_in_flight": self.bytes_in_flight,
            "bytes_total": self.bytes_total, "speed": round(self.speed),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


class OverallProgress:
    """Running totals over every file (not thread-safe: the reporter holds its lock)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._files: dict[int, _FileBytes] = {}
        self._done = 0
        self._failed = 0
        self._acknowledged = 0
        self._in_flight = 0
        self._before_run = 0
        self._total = 0
        self._samples: deque[tuple[float, int]] = deque()

    def queued(self, file_id: int, size: int) -> None:
        file = self._files.get(file_id)
        if file is None:
            self._files[file_id] = _FileBytes(size=size)
            self._total += size
        elif not file.counted:  # queued again after a failure
            file.counted = True
            self._total += file.size
            self._failed -= 1

    def started(self, file_id: int, bytes_already_done: int) -> None:
        file = self._files.get(file_id)
        if file is not None and file.counted:
            self._set(file, acknowledged=bytes_already_done, in_flight=0)
            self._before_run += bytes_already_done - file.before_run
            file.before_run = bytes_already_done

    def progress(self, file_id: int, *, acknowledged: int, in_flight: int) -> None:
        file = self._files.get(file_id)
        if file is not None and file.counted:
            self._set(file, acknowledged=acknowledged, in_flight=in_flight)

    def completed(self, file_id: int) -> None:
        file = self._files.get(file_id)
        if file is not None and file.counted:
            self._set(file, acknowledged=file.size, in_flight=0)
            self._done += 1

    def failed(self, file_id: int) -> None:
        """A failed file leaves the totals until it is queued again (its bytes are not to come)."""
        file = self._files.get(file_id)
        if file is not None and file.counted:
            self._failed += 1
            self._uncount(file)

    def cancelled(self, file_id: int) -> None:
        file = self._files.pop(file_id, None)
        if file is not None and file.counted:
            self._uncount(file)

    def _uncount(self, file: _FileBytes) -> None:
        self._set(file, acknowledged=0, in_flight=0)
        self._before_run -= file.before_run
        file.before_run = 0
        self._total -= file.size
        file.counted = False

    def _set(self, file: _FileBytes, *, acknowledged: int, in_flight: int) -> None:
        self._acknowledged += acknowledged - file.acknowledged
        self._in_flight += in_flight - file.in_flight
        file.acknowledged, file.in_flight = acknowledged, in_flight

    def figures(self) -> OverallFigures:
        now = self._clock()
        this_run = self._acknowledged + self._in_flight - self._before_run
        self._samples.append((now, this_run))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _SPEED_WINDOW_S:
            self._samples.popleft()
        first_t, first_bytes = self._samples[0]
        speed = max(this_run - first_bytes, 0) / (now - first_t) if now - first_t >= 0.5 else 0.0
        remaining = self._total - self._acknowledged - self._in_flight
        return OverallFigures(
            files_done=self._done, files_failed=self._failed, files_total=len(self._files),
            bytes_acknowledged=self._acknowledged, bytes_in_flight=self._in_flight, bytes_total=self._total,
            speed=speed, eta_s=remaining / speed if speed > 0 and remaining > 0 else None,
        )


_BAR_WIDTH = 30
_NARROWEST_BAR = 10  # narrower than this, the line goes without its bar


def _two_tone_bar(acknowledged: int, in_flight: int, total: int, width: int) -> Any:
    """The bar: acknowledged bytes solid, bytes in flight lighter, the rest as the track."""
    from rich.text import Text

    total = max(total, 1)
    solid = min(width, width * acknowledged // total)
    light = min(width - solid, width * (acknowledged + in_flight) // total - solid)
    bar = Text()
    bar.append("━" * solid, style="green")
    bar.append("━" * light, style="dim green")
    bar.append("━" * (width - solid - light), style="grey23")
    return bar


class LiveBar:
    """One bar redrawn in place on a terminal; lines printed meanwhile go above it."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import Progress, ProgressColumn, Task, TextColumn

        console = Console(file=stream, highlight=False, markup=False, emoji=False)

        class TwoToneBar(ProgressColumn):
            def render(self, task: Task) -> Any:
                # The figures come first: the bar gets what the line leaves.
                width = min(_BAR_WIDTH, console.width - len(task.description) - 2)
                if width < _NARROWEST_BAR:
                    return ""
                return _two_tone_bar(task.fields.get("acknowledged", 0), task.fields.get("in_flight", 0),
                                     int(task.total or 1), width)

        self.console = console
        self._progress = Progress(
            TwoToneBar(), TextColumn("{task.description}", markup=False),
            console=self.console, refresh_per_second=4, transient=False,
        )
        self._task = self._progress.add_task("", total=1)
        self._progress.start()

    def show(self, figures: OverallFigures) -> None:
        self._progress.update(self._task, description=figures.text(), completed=figures.bytes_done,
                              total=max(figures.bytes_total, 1), acknowledged=figures.bytes_acknowledged,
                              in_flight=figures.bytes_in_flight)

    def print(self, line: str) -> None:
        self.console.print(line, soft_wrap=True)

    def stop(self) -> None:
        self._progress.stop()


__all__ = ["LiveBar", "OverallFigures", "OverallProgress"]
