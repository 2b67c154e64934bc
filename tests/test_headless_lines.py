"""Plain output tells only what happened: no progress line for a file before its "started" line,
and no "0.0% 0 B" line for a file of which nothing was sent yet."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import EventLog, write

from cli.output import Detail
from cli.plain import Reporter
from engine.events import FileCompleted, FileFailed, FileProgress, FileStarted


def test_no_progress_line_before_the_started_line() -> None:
    stream = io.StringIO()
    reporter = Reporter(json_lines=False, stream=stream, progress_every_s=0.0, detail=Detail.VERBOSE)
    reporter(FileProgress(3, sent=10, size=100, parts_done=0, part_count=1, parts_in_flight=()))
    reporter(FileStarted(3, path="/d/x.bin", size=100, multipart=False, part_size=100, part_count=1))
    reporter(FileProgress(3, sent=50, size=100, parts_done=0, part_count=1, parts_in_flight=()))
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["started", "progress"], lines


def test_nothing_sent_is_no_progress(make_manager: Callable[..., tuple[Any, EventLog]], target_folder: str,
                                     tmp_path: Path) -> None:
    manager, events = make_manager(progress_interval_s=0.002, workers=2)
    paths = []
    for index in range(30):
        path = tmp_path / f"tiny-{index}.txt"
        write(path, 100)
        paths.append(path)
    manager.add(paths, target_folder)
    assert manager.wait(timeout=60)
    assert not events.of(FileFailed) and len(events.of(FileCompleted)) == 30
    assert not [e for e in events.of(FileProgress) if e.sent == 0]
    started = {e.file_id for e in events.of(FileStarted)}
    assert all(e.file_id in started for e in events.of(FileProgress))
