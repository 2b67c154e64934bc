"""Parsing sizes and rates as users write them ("20MiB", "500 KiB/s", "1.5GB")."""

from __future__ import annotations

import re

# A bare letter is binary, as rclone reads it and as nxup shows sizes ("20M" is 20 MiB);
# only the explicit SI forms (KB, MB, GB, TB) are decimal.
_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
    "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
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
        raise ValueError(f"unknown unit {unit!r} in {text!r} (use B, K, M, G (binary), KiB, MiB, GiB, or KB, MB, GB)")
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
