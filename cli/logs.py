"""Python logging, set up in this one place for every command that uploads.

- The screen (stderr) gets warnings and errors (errors only with `--quiet`); with `--debug`,
  everything: nxup's own debug messages and the HTTP libraries' (botocore, urllib3, the Nuxeo
  client). With `--json` these records are JSON objects (`"event": "log"`) on stdout instead.
- The log file (`--log-file`, mode 0600) gets every event of the run and nxup's debug messages
  whatever the screen shows, and the HTTP libraries' debug log with `--debug`.

Every line either way passes through `engine.redaction.redact`: no password, token, S3 secret or
request signature reaches the screen or the file.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from cli.output import Detail, OutputSettings
from engine.redaction import redact
from engine.text import printable

EVENTS_LOGGER = "nxup.events"  # the reporter's lines: on screen already, so for the log file only
_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3", "requests", "nuxeo")
_OWN = ("engine", "cli", "tui", "nxup")
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"

_installed: list[logging.Handler] = []


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time: a live progress bar redirects it, so that
    log lines go above the bar instead of through it."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class JsonLogHandler(logging.Handler):
    """Log records as `{"event": "log", ...}` objects, through the reporter's output."""

    def __init__(self, emit_line: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self._emit_line({"event": "log", "time": round(record.created, 3), "level": record.levelname.lower(),
                             "logger": record.name, "message": message})
        except Exception:
            self.handleError(record)


def _not_events(record: logging.LogRecord) -> bool:
    return not record.name.startswith(EVENTS_LOGGER)


def open_log_file(path: Path) -> IO[str]:
    """The log file, appended to, readable by its owner only (made so if it was not)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(descriptor, 0o600)
    except OSError as exc:
        raise click.UsageError(f"--log-file {printable(str(path))}: {exc.strerror or exc}") from exc
    return open(descriptor, "a", encoding="utf-8", errors="backslashreplace", buffering=1)


def configure_logging(settings: OutputSettings, *, screen: bool,
                      json_emit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Install the handlers `settings` ask for (replacing any this function installed before).
    `screen`: whether log records may go to the terminal (not while the transfer manager owns
    it). `json_emit`: with `--json`, how a record reaches stdout."""
    import engine.nuxeo_batch  # noqa: F401  # it quiets the Nuxeo client at import; levels are set after

    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    debug = settings.detail >= Detail.DEBUG
    if screen:
        console: logging.Handler
        if json_emit is not None:
            console = JsonLogHandler(json_emit)
            console.setFormatter(RedactingFormatter("%(message)s"))
        else:
            console = _Stderr()
            console.setFormatter(RedactingFormatter(
                "%(levelname)s %(name)s: %(message)s" if debug else "nxup: %(message)s"))
        console.setLevel(logging.DEBUG if debug else logging.ERROR if settings.detail is Detail.QUIET
                         else logging.WARNING)
        console.addFilter(_not_events)
        _installed.append(console)
    if settings.log_file is not None:
        file_handler = logging.StreamHandler(open_log_file(settings.log_file))
        formatter = RedactingFormatter(_FILE_FORMAT)
        formatter.converter = time.gmtime
        file_handler.setFormatter(formatter)
        file_handler.setLevel(logging.DEBUG)
        _installed.append(file_handler)
    if not _installed:
        # Nothing may reach the screen (the transfer manager owns it): not even Python's last
        # resort, which writes warnings to stderr.
        _installed.append(logging.NullHandler())
    for handler in _installed:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug or settings.log_file else logging.WARNING)
    for name in _OWN:
        logging.getLogger(name).setLevel(logging.DEBUG if debug or settings.log_file else logging.WARNING)
    logging.getLogger(EVENTS_LOGGER).setLevel(logging.DEBUG if settings.log_file else logging.CRITICAL + 1)
    # Their warnings (a retried connection, a full pool) are how they work, not news for the user.
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.ERROR)


__all__ = ["EVENTS_LOGGER", "JsonLogHandler", "RedactingFormatter", "configure_logging", "open_log_file"]
