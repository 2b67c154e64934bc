"""After a resume, speeds count only the bytes sent in this run: the bytes S3 already held are
neither the plain progress line's speed nor a spike in the transfer manager's throughput."""

from __future__ import annotations

import io
from typing import Any

import pytest

from cli import plain
from cli.output import Detail
from cli.plain import Reporter
from engine.events import FileProgress, FileQueued, FileStarted
from engine.lifecycle import UploadStatus
from engine.manager import FileSnapshot
from tui.model import TransferModel

MIB = 1024 * 1024
HELD = 100 * MIB  # on S3 before the resume


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resumed_start(size: int) -> FileStarted:
    return FileStarted(7, path="/d/big.bin", size=size, multipart=True, part_size=10 * MIB, part_count=20,
                       parts_already_done=10, bytes_already_done=HELD)


def test_plain_progress_speed_counts_this_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(plain.time, "monotonic", clock)
    stream = io.StringIO()
    # Per-file progress lines are the verbose level's.
    reporter = Reporter(json_lines=False, stream=stream, progress_every_s=0.0, detail=Detail.VERBOSE)
    reporter(FileQueued(7, path="/d/big.bin", size=200 * MIB, target="/t", resumed=True))
    reporter(resumed_start(200 * MIB))
    clock.now += 2.0
    reporter(FileProgress(7, sent=HELD + 4 * MIB, size=200 * MIB, parts_done=10, part_count=20, parts_in_flight=(),
                          acknowledged=HELD + 4 * MIB))
    (line,) = [text for text in stream.getvalue().splitlines() if text.startswith("progress")]
    assert "2.0 MiB/s" in line, line


def snapshot(sent: int) -> Any:
    return lambda file_id: FileSnapshot(
        file_id=file_id, path="/d/big.bin", name="big.bin", target="/t", size=200 * MIB, sent=sent,
        status=UploadStatus.UPLOADING, error=None, part_count=20, parts_done=10, parts_in_flight=(),
        done_part_numbers=frozenset(range(1, 11)))


def test_throughput_history_has_no_spike_for_bytes_held_before_the_resume() -> None:
    clock = Clock()
    model = TransferModel(clock=clock)
    model.apply([FileQueued(7, path="/d/big.bin", size=200 * MIB, target="/t", resumed=True)])
    model.record_throughput(model.totals())
    model.apply([resumed_start(200 * MIB)])
    for second in range(1, 4):
        clock.now += 1.0
        model.sample(snapshot(HELD + second * MIB))
        assert model.record_throughput(model.totals())
        assert model.history[-1] <= 1.01 * MIB, f"{model.history[-1] / MIB:.1f} MiB/s at second {second}"
    assert model.history[-1] == pytest.approx(MIB)
