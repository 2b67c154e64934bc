"""Run one contender's command and measure it, in a process of its own.

The orchestrator starts `python -m bench.measure` with the launch in `NXUP_BENCH_LAUNCH`
(JSON: argv, the command's whole environment, where its output goes, whether it runs on a
pseudo-terminal). Secrets travel in that environment only, never in an argv. The result is one
JSON line on stdout:

- `wall_s`: from the command's start to its exit (start-up included, as a user waits for it);
  `started`/`ended` on the system's monotonic clock, which the orchestrator shares;
- `cpu_s`: user + system time of the command and its children (`wait4`);
- `rss_peak_mib`: the command's `VmHWM`, read every 20 ms while it runs (not `ru_maxrss`,
  which Linux carries over `execve` from the process that started it);
- `exit_code`, and the end of its output when it failed.

On a pseudo-terminal (80×24, the transfer manager), `q` is pressed as soon as nxup's state
database shows every expected file finished; the output is read and dropped meanwhile.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

COLUMNS, LINES = 80, 24
RSS_POLL_S = 0.02
STATE_POLL_S = 0.05
QUIT_AGAIN_S = 0.25
TAIL_BYTES = 4000
FINISHED = ("done", "failed", "cancelled")


class PeakRss:
    """Polls a process's VmHWM until stopped; keeps the last value read."""

    def __init__(self, pid: int) -> None:
        self.mib = 0.0
        self._path = f"/proc/{pid}/status"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:
            try:
                with open(self._path) as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.mib = max(self.mib, int(line.split()[1]) / 1024)
                            break
            except OSError:
                pass
            if self._stop.wait(RSS_POLL_S):
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.mib


def finished_files(state_db: Path) -> int:
    """How many uploads nxup's state database holds as finished (0 before it exists)."""
    if not state_db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=1.0) as db:
            marks = ",".join("?" * len(FINISHED))
            (count,) = db.execute(
                f"SELECT count(*) FROM uploads WHERE status IN ({marks})", FINISHED
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(count)


def start(launch: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int | None]:
    """Start the command: on a pseudo-terminal (its master side returned), or with its output
    in a file (and its errors kept for the report)."""
    if not launch.get("tty"):
        with open(launch.get("stdout") or os.devnull, "wb") as output:
            process = subprocess.Popen(
                launch["argv"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.PIPE,
                env=launch["env"],
                start_new_session=True,
            )
        return process, None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    process = subprocess.Popen(
        launch["argv"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=launch["env"],
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    return process, master


def drive_terminal(master: int, launch: dict[str, Any]) -> bytes:
    """Read the screen's output until the command exits; press `q` once the state database
    shows every expected file finished. Returns the end of the output.

    The app's own view of the files can lag the database by a moment: a `q` pressed then asks
    whether to pause the uploads still shown in progress. So until the command exits, `n`
    (no, when that question is up; unbound otherwise) and `q` are pressed again every 250 ms.
    """
    state_db, expected = Path(launch["state_db"]), int(launch["expect_files"])
    tail = b""
    quit_at: float | None = None
    next_check = 0.0
    while True:
        ready, _, _ = select.select([master], [], [], STATE_POLL_S)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break  # the command closed the terminal: it is exiting
            if not data:
                break
            tail = (tail + data)[-TAIL_BYTES:]
        now = time.monotonic()
        if quit_at is None and now >= next_check:
            next_check = now + STATE_POLL_S
            if finished_files(state_db) >= expected:
                os.write(master, b"q")
                quit_at = now
        elif quit_at is not None and now - quit_at >= QUIT_AGAIN_S:
            os.write(master, b"nq")
            quit_at = now
    os.close(master)
    return tail


def main() -> None:
    launch = json.loads(os.environ.pop("NXUP_BENCH_LAUNCH"))
    started = time.monotonic()
    process, master = start(launch)
    rss = PeakRss(process.pid)
    timer = threading.Timer(float(launch.get("timeout_s", 3600)), process.kill)
    timer.start()
    if master is not None:
        tail = drive_terminal(master, launch)
    else:
        assert process.stderr is not None
        tail = process.stderr.read()[-TAIL_BYTES:]
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.monotonic()
    timer.cancel()
    timed_out = ended - started >= float(launch.get("timeout_s", 3600))
    process.returncode = os.waitstatus_to_exitcode(status)
    result = {
        "wall_s": ended - started,
        "started": started,
        "ended": ended,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_peak_mib": rss.stop(),
        "exit_code": process.returncode,
        "timed_out": timed_out,
    }
    if process.returncode != 0 or timed_out:
        result["output_tail"] = tail.decode(errors="replace")
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
