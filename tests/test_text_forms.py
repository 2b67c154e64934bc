"""Sizes, speeds and durations read the same, and stay short, on every screen and line: an 80-column
row has no room for "3 minutes" or "1000 Bytes"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.text import age_text, eta_text, size_text, speed_text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1000, "1000 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (12_345, "12.1 KiB"),
        (845_000, "825 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),  # 1023.999 KiB rounds up to the next unit, not "1024 KiB"
        (734 * 2**20, "734 MiB"),
        (5 * 2**40, "5.0 TiB"),
    ],
)
def test_sizes_are_binary_and_at_most_eight_characters(size: int, text: str) -> None:
    assert size_text(size) == text
    assert len(text) <= 8


def test_speeds() -> None:
    assert speed_text(18.5 * 2**20) == "18.5 MiB/s"
    assert speed_text(0) == "–"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "<1s"),
        (42, "42s"),
        (180, "3m"),
        (3599, "1h"),
        (3900, "1h05m"),
        (10 * 3600 + 59 * 60, "11h"),
        (8 * 86400 + 3 * 3600, "8d3h"),
        (20 * 86400, "20d"),
    ],
)
def test_durations_are_at_most_five_characters(seconds: float, text: str) -> None:
    assert eta_text(seconds) == text
    assert len(text) <= 5


def test_unknown_eta_and_ages() -> None:
    assert eta_text(None) == "–"
    assert age_text(timedelta(days=1)) == "1d"
    assert age_text(timedelta(minutes=30)) == "30m"
