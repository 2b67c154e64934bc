"""Parsing sizes and rates as users write them ("20MiB", "500 KiB/s", "1.5GB")."""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in `text`: "20MiB", "5 MiB", "1.5GB", "1048576". ValueError with a readable reason."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 20MiB, 512KiB, 1GB)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {text!r} (use B, KiB, MiB, GiB, KB, MB, GB)")
    return int(float(number) * factor)


def parse_rate(text: str) -> int | None:
    """Bytes per second in `text` ("20MiB/s", "500KiB", "off"); None means no cap."""
    cleaned = text.strip().lower()
    if cleaned in ("", "0", "off", "none", "unlimited"):
        return None
    if cleaned.endswith("/s"):
        cleaned = cleaned[:-2]
    rate = parse_size(cleaned)
    if rate <= 0:
        return None
    return rate
