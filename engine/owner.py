"""Which process owns an upload: its pid and its start time.

Two nxup processes must never work on the same upload (two batches, two documents, one
process's failure overwriting the other's success). A process claims the uploads it works on in
the state store; the claim names the process by pid *and* start time, so that a claim outlives
neither its process (a killed nxup's claims are free at once) nor a reused pid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (Linux); 0 where /proc has none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0
    # The command name (field 2) is in parentheses and may hold spaces: count after it.
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[19])


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    started: int

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(pid, _start_time(pid))

    def is_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        started = _start_time(self.pid)
        return started == 0 or self.started == 0 or started == self.started


__all__ = ["Owner"]
