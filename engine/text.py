"""How sizes, speeds, durations and file names are written, the same on every screen and line.

Both front ends (the command line and the transfer manager) show the engine's values; they
share these forms so a size or a name reads the same in a log line and on screen."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from typing import Any

import humanize


def size_text(size: float) -> str:
    return humanize.naturalsize(size, binary=True, format="%.1f")


def speed_text(rate: float) -> str:
    return f"{size_text(rate)}/s" if rate >= 1 else "–"


def age_text(age: timedelta) -> str:
    return humanize.naturaldelta(age)


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return "<1s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    return humanize.naturaldelta(seconds)


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
