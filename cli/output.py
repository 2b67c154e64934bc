"""How much a headless run shows, and where: the options `-q`, `-v`, `--debug`, `--log-file` and
`--json`, read into one `OutputSettings`.

The options carry no value into the commands: each stores what it says in the click context, so
every command that has them reads the same settings with `output_settings()`, and the command
group can answer a fatal error in JSON when `--json` was given (see `json_requested`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import click

from engine.text import json_line

_META = "nxup.output"
DEFAULT_STATS_S = 5.0


class Detail(IntEnum):
    QUIET = 0  # errors and the summary
    NORMAL = 1  # + the overall progress, notices, pauses that drop bytes in flight
    VERBOSE = 2  # + a line per file: started, progress, done, paused, cancelled
    DEBUG = 3  # + the engine's and the HTTP libraries' debug log on stderr


@dataclass(frozen=True, slots=True)
class OutputSettings:
    detail: Detail = Detail.NORMAL
    log_file: Path | None = None
    json_lines: bool = False
    stats_every_s: float = DEFAULT_STATS_S  # the overall line when not on a terminal (and `overall` objects)


def _stored(ctx: click.Context) -> dict[str, Any]:
    stored: dict[str, Any] = ctx.meta.setdefault(_META, {})
    return stored


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value:
            _stored(ctx)[name] = value
        return value

    return callback


remember_json = _store("json")
"""The callback of `--json`: fatal errors are then JSON objects too."""


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_store("quiet"),
                     help="Only errors and the final summary."),
        click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_store("verbose"),
                     help="A line per file as well: started, progress, done, paused."),
        click.option("--debug", is_flag=True, expose_value=False, callback=_store("debug"),
                     help="The engine's and the HTTP requests' debug log on stderr (secrets masked)."),
        click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
                     callback=_store("log_file"),
                     help="Append every event and the debug log to this file (mode 0600), whatever the screen shows; "
                          "with --debug, the HTTP requests too."),
        click.option("--stats", type=click.FloatRange(min=0.1), expose_value=False, callback=_store("stats"),
                     metavar="SECONDS",
                     help="Write the overall progress every SECONDS when not on a terminal (default 5)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def output_settings() -> OutputSettings:
    """The settings the current command was given."""
    stored = _stored(click.get_current_context())
    if stored.get("quiet") and (stored.get("verbose") or stored.get("debug")):
        raise click.UsageError("--quiet goes with neither --verbose nor --debug")
    detail = Detail.NORMAL
    if stored.get("quiet"):
        detail = Detail.QUIET
    elif stored.get("debug"):
        detail = Detail.DEBUG
    elif stored.get("verbose"):
        detail = Detail.VERBOSE
    return OutputSettings(detail=detail, log_file=stored.get("log_file"), json_lines=bool(stored.get("json")),
                          stats_every_s=stored.get("stats") or DEFAULT_STATS_S)


def json_requested(ctx: click.Context) -> bool:
    return bool(_stored(ctx).get("json"))


def json_error(reason: str) -> str:
    """A fatal error (a wrong password, an unreachable server, a missing target) as the one JSON
    object `--json` prints for it."""
    return json_line({"event": "error", "time": round(time.time(), 3), "reason": reason})


__all__ = ["Detail", "OutputSettings", "json_error", "json_requested", "output_options", "output_settings",
           "remember_json"]
