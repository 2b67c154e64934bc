"""The real `nxup demo` in a real terminal (a pty read through a terminal emulator): start it,
press the pause, resume and quit keys, read the screen, and check what the run left in S3 and
Nuxeo (the demo checks every document against its file before it removes the sandbox)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
import pyte
import pytest

NXUP = str(Path(sys.executable).with_name("nxup"))
COLUMNS, LINES = 80, 24


class Terminal:
    """A child process on a pty, with the screen it draws."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.transcript = bytearray()
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.master = master
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)

    def pump(self, seconds: float = 0.1) -> None:
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([self.master], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.transcript += data
            self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, pattern: str, *, absent: str | None = None, timeout: float = 60.0) -> str:
        """The screen once `pattern` shows (and `absent` no longer does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.1)
            text = self.text()
            if re.search(pattern, text) and not (absent and re.search(absent, text)):
                return text
            if self.process.poll() is not None:
                break
        raise AssertionError(f"{pattern!r} (without {absent!r}) never showed; screen:\n{self.text()}")

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())
        self.pump(0.2)

    def finish(self, *, timeout: float = 90.0) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.pump(0.2)
        self.pump(0.3)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError("nxup demo did not exit")
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


def processes_using(directory: str) -> list[psutil.Process]:
    """Processes whose command line names `directory` (the demo's S3 server does)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(directory in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.timeout(240)
def test_demo_in_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUXEO_", "NXUP_", "AWS_"))}
    env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES), HOME=str(tmp_path))
    terminal = Terminal([NXUP, "demo", "--files", "12", "--large", "2", "--limit", "10MiB/s"], env)
    try:
        screen = terminal.wait_for(r"uploading", timeout=90)
        assert "nxup" in screen and "Progress" in screen

        terminal.press("P")  # pause all
        screen = terminal.wait_for(r"paused", absent=r"uploading|queued", timeout=20)
        # The totals line: "N/M done · F failed · L left · SENT/TOTAL · ...": bytes sent must not move.
        totals = re.compile(r"\d+/\d+ done · \d+ failed · \d+ left · ([\d.]+ \w+/[\d.]+ \w+)")
        frozen = totals.search(screen)
        assert frozen is not None, screen
        terminal.pump(1.0)
        assert "uploading" not in terminal.text()
        still = totals.search(terminal.text())
        assert still is not None and still.group(1) == frozen.group(1)

        terminal.press("R")  # resume all
        terminal.wait_for(r"uploading", timeout=20)
        terminal.press("+++++++++")  # lift the cap so the run ends quickly
        screen = terminal.wait_for(r"All done", timeout=120)
        assert re.search(r"All done: 14 uploaded \([\d.]+ \w+\) · 0 failed", screen), screen
        assert "recording-1.mp4" in screen, "the closing summary hides no row"

        terminal.press("q")
        code = terminal.finish()
        output = terminal.transcript.decode("utf-8", "replace")
    finally:
        terminal.close()
    report = re.search(r"checked: (\d+) documents hold exactly their file, (\d+) differ, (\d+) not uploaded; "
                       r"multipart uploads left on S3: (\d+)", output)
    assert report, output[-2000:]
    held, differ, not_uploaded, leftovers = map(int, report.groups())
    assert (held, differ, not_uploaded, leftovers) == (14, 0, 0, 0)
    assert code == 0
    assert "Traceback" not in output
    sandbox_dir = re.search(r"in (/\S+)/samples", output)
    assert sandbox_dir, output[:2000]
    assert not processes_using(sandbox_dir.group(1)), "the demo left its S3 server running"
    assert not Path(sandbox_dir.group(1)).exists(), "the demo left its data behind"
