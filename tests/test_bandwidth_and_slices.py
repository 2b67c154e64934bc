"""Unit tests of the bandwidth cap and of file-slice bodies (the edge botocore reads from)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.bandwidth import BandwidthLimiter
from engine.errors import FileChanged, Interrupted
from engine.slices import FileSlice, PartCounter, StopReason, TransferControl


class FakeTime:
    """A clock that only moves when someone sleeps; `at(when, action)` runs `action` once the
    clock has passed `when` (as another thread would, between two steps of a wait)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()
        self.actions: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds
            due = [action for when, action in self.actions if when <= self.now]
            self.actions = [
                (when, action) for when, action in self.actions if when > self.now
            ]
        for action in due:
            action()

    def at(self, when: float, action: Callable[[], None]) -> None:
        self.actions.append((when, action))


def test_cap_spreads_bytes_over_time() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(1_000_000, clock=time.clock, sleep=time.sleep)
    start = time.now
    for _ in range(100):
        limiter.acquire(50_000)
    elapsed = time.now - start
    # 5 MB at 1 MB/s: 5 s, less the small burst allowance.
    assert 4.7 <= elapsed <= 5.05


def test_no_cap_never_sleeps() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(None, clock=time.clock, sleep=time.sleep)
    for _ in range(1000):
        limiter.acquire(1 << 20)
    assert time.now == 1000.0


def test_rate_change_takes_effect_for_the_next_reads() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(100_000, clock=time.clock, sleep=time.sleep)
    limiter.acquire(100_000)
    limiter.set_rate(10_000_000)
    start = time.now
    for _ in range(10):
        limiter.acquire(100_000)
    assert time.now - start < 0.2
    with pytest.raises(ValueError):
        limiter.set_rate(0)


def test_a_read_already_waiting_follows_a_raised_rate() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(1_000, clock=time.clock, sleep=time.sleep)
    limiter.acquire(1_000)  # the burst allowance: at once
    time.at(1000.1, lambda: limiter.set_rate(100_000))
    limiter.acquire(1_000)  # booked for 1001.0 at the old rate
    # The change lands between two 50 ms steps of the wait (by 1000.15): up to 150 of the
    # 1,000 bytes' wait went at the old rate, the rest takes 9 ms at the new one.
    assert 1000.1 < time.now < 1000.2


def test_a_read_already_waiting_follows_a_lowered_rate() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(100_000, clock=time.clock, sleep=time.sleep)
    limiter.acquire(100_000)
    time.at(1000.1, lambda: limiter.set_rate(10_000))
    limiter.acquire(100_000)  # booked for 1001.0 at the old rate
    # The change lands by 1000.15: 10,000 to 15,000 bytes' wait went at the old rate, and the
    # 85,000 to 90,000 left take 8.5 to 9 s at the new one.
    assert 1008.6 < time.now < 1009.2
    turn = time.now
    # The next read waits for the 100,000 bytes before it, at the new rate.
    limiter.acquire(10_000)
    assert time.now == pytest.approx(turn + 10.0, abs=0.06)


def test_lifting_the_cap_releases_reads_already_waiting() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(1_000, clock=time.clock, sleep=time.sleep)
    limiter.acquire(1_000)
    time.at(1000.1, lambda: limiter.set_rate(None))
    limiter.acquire(10_000)  # booked for 1001.0, released by the next step after 1000.1
    assert 1000.1 < time.now < 1000.2
    lifted = time.now
    limiter.set_rate(1_000)  # a cap set again starts from now, owing nothing
    limiter.acquire(100)
    assert time.now == lifted


def test_a_throttled_read_stops_at_once_when_paused() -> None:
    time = FakeTime()
    limiter = BandwidthLimiter(1_000, clock=time.clock, sleep=time.sleep)
    limiter.acquire(10_000)  # books the next 10 s
    control = TransferControl()
    control.interrupt(StopReason.PAUSE)
    with pytest.raises(Interrupted):
        limiter.acquire(10_000, wait_interrupted=control.wait)
    assert time.now == 1000.0  # it did not sleep through its turn


def _slice(
    tmp_path: Path,
    data: bytes,
    *,
    offset: int,
    size: int,
    control: TransferControl | None = None,
    clock: Callable[[], float] = time.monotonic,
):
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    counter = PartCounter(number=1, size=size)
    body = FileSlice(
        fd,
        offset=offset,
        size=size,
        counter=counter,
        control=control or TransferControl(),
        limiter=BandwidthLimiter(None),
        clock=clock,
    )
    return fd, body, counter


def test_slice_reads_its_window_and_counts_only_while_sending(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    fd, body, counter = _slice(tmp_path, data, offset=30_000, size=50_000)
    try:
        assert len(body) == 50_000
        assert body.read() == data[30_000:80_000]  # a checksum pass: not a send
        assert counter.sent == 0
        body.seek(0)
        body.signal_transferring()
        assert body.read(20_000) == data[30_000:50_000]
        assert counter.sent == 20_000
        body.seek(0)  # a retry rewinds: the bytes of the failed attempt are taken back
        assert counter.sent == 0
        assert body.read() == data[30_000:80_000]
        assert counter.sent == 50_000 and body.read() == b""
    finally:
        os.close(fd)


def test_slice_raises_when_paused_or_when_the_file_shrank(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    control = TransferControl()
    now = [0.0]
    fd, body, _ = _slice(tmp_path, data, offset=0, size=10_000, control=control, clock=lambda: now[0])
    try:
        body.signal_transferring()
        body.read(100)
        now[0] = 1.0  # 100 bytes a second: the rest would take 99 s, far beyond the pause budget
        control.interrupt(StopReason.PAUSE)
        with pytest.raises(Interrupted):
            body.read(100)
        control.clear()
        os.truncate(tmp_path / "data.bin", 5_000)
        body.seek(4_000)
        with pytest.raises(FileChanged):
            body.read(2_000)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("reason", "finishes"), [(StopReason.PAUSE, True), (StopReason.CANCEL, False)])
def test_a_paused_part_near_its_end_finishes(tmp_path: Path, reason: str, finishes: bool) -> None:
    """At 9,000 bytes a second, the last 400 bytes take 0.04 s: within the pause budget, the part
    ends and its bytes are kept; a cancel stops it all the same."""
    data = os.urandom(10_000)
    control = TransferControl()
    now = [0.0]
    fd, body, counter = _slice(tmp_path, data, offset=0, size=10_000, control=control, clock=lambda: now[0])
    try:
        body.signal_transferring()
        body.read(9_600)
        now[0] = 9_600 / 9_000
        control.interrupt(reason)
        if finishes:
            assert body.read(400) == data[9_600:] and counter.sent == 10_000
        else:
            with pytest.raises(Interrupted):
                body.read(400)
    finally:
        os.close(fd)


def test_cancel_wins_over_pause() -> None:
    control = TransferControl()
    control.interrupt(StopReason.CANCEL)
    control.interrupt(StopReason.PAUSE)
    assert control.reason == StopReason.CANCEL
