"""How sizes, speeds, durations and file names are written, the same on every screen and line.

Both front ends (the command line and the transfer manager) show the engine's values; they
share these forms so a size or a name reads the same in a log line and on screen."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from typing import Any

_SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def size_text(size: float) -> str:
    """A size in at most 8 characters, in binary units: "1000 B", "1.0 KiB", "12.1 MiB", "734 MiB"
    (one decimal below 100, none above, as `ls -h` writes them, so columns stay narrow)."""
    if abs(size) < 1024:
        return f"{size:.0f} B"
    value = float(size)
    for unit in _SIZE_UNITS:
        value /= 1024
        if abs(value) < 1023.5 or unit == _SIZE_UNITS[-1]:
            return f"{value:.1f} {unit}" if abs(value) < 99.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def speed_text(rate: float) -> str:
    return f"{size_text(rate)}/s" if rate >= 1 else "–"


def duration_text(seconds: float) -> str:
    """A duration in at most 5 characters, to the unit that matters: "42s", "3m", "1h05m", "12h",
    "3d4h", "12d"."""
    if seconds < 59.5:
        return f"{max(seconds, 0):.0f}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 10:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if round(seconds / 3600) < 24:
        return f"{round(seconds / 3600)}h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days}d" if days >= 10 or not hours else f"{days}d{hours}h"


def age_text(age: timedelta) -> str:
    return duration_text(age.total_seconds())


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return "<1s"
    return duration_text(seconds)


# Characters a terminal acts on instead of showing (C0 and C1 controls, DEL: escape sequences,
# carriage returns, bells), line and paragraph separators, the bidirectional controls that can
# make "txt.exe" read as "exe.txt", and lone surrogates: Python's stand-ins for the bytes of a
# name that is not valid UTF-8 (U+DC80..U+DCFF for the bytes 0x80..0xFF).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# In JSON, C0 controls are escaped by `json.dumps` already; the others are not.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escaped(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name: show the byte itself
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` safe to write to a terminal, on one line: every control character, bidirectional
    control and undecodable byte is shown escaped (`\\n`, `\\x1b`, `\\u202e`, `\\xe9`)."""
    return _UNSAFE.sub(lambda match: _escaped(match.group()), text)


def display_name(path: str) -> str:
    """The file's name on one screen line."""
    return printable(os.path.basename(path))


def json_line(value: Any) -> str:
    """One line of JSON that holds no raw control character (non-ASCII text stays readable).
    Lone surrogates become `\\udcXX` escapes, which Python decodes back to the same name."""
    text = json.dumps(value, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
