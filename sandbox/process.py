"""The sandbox in a child process.

Its HTTP server threads then never compete with the caller (a terminal UI, a benchmark) for
the interpreter lock, as a real remote server would not. The child dies with its parent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

from .core import SandboxInfo
from .nuxeo_server import BATCH_TTL_S
from .s3 import AccessPolicy, SandboxError
from .weed import _die_with_parent

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


class SandboxProcess:
    def __init__(
        self,
        *,
        credential_ttl_s: int = 3600,
        default_handler_first: bool = False,
        policy: AccessPolicy | str = AccessPolicy.STOCK,
        batch_ttl_s: float = BATCH_TTL_S,
        handler_name: str = "s3",
    ) -> None:
        self._args = [
            "--json",
            "--credential-ttl", str(credential_ttl_s),
            "--policy", AccessPolicy(policy).value,
            "--batch-ttl", str(batch_ttl_s),
            "--handler-name", handler_name,
        ]
        if default_handler_first:
            self._args.append("--default-handler-first")
        self.process: subprocess.Popen[str] | None = None
        self._info: SandboxInfo | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- lives as long as the process it collects

    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            raise RuntimeError("the sandbox is not running")
        return self._info

    def start(self) -> SandboxProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", *self._args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            preexec_fn=_die_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=STOP_TIMEOUT_S)
            self._stderr.seek(0)
            raise SandboxError(self._stderr.read().strip() or "the sandbox exited at start")
        self._info = SandboxInfo(**json.loads(line))
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        self._info = None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
