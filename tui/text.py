"""How sizes, speeds, durations and file names are written, the same on every screen and line."""

from __future__ import annotations

import os

import humanize


def size_text(size: float) -> str:
    return humanize.naturalsize(size, binary=True, format="%.1f")


def speed_text(rate: float) -> str:
    return f"{size_text(rate)}/s" if rate >= 1 else "–"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return "<1s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    return humanize.naturaldelta(seconds)


def display_name(path: str) -> str:
    """The file's name on one screen line (names may hold newlines or tabs)."""
    return os.path.basename(path).replace("\n", "␤").replace("\r", "␍").replace("\t", " ")


def one_line(text: str) -> str:
    """A path or message on one output line: newlines are escaped."""
    return text.replace("\n", "\\n").replace("\r", "\\r")
