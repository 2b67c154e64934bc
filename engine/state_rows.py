"""The journal's `uploads` rows as `UploadRecord`s and back: enums stored as their values, and
status lists inlined in queries."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from .lifecycle import Stage, UploadStatus
from .records import UploadRecord

COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UploadRecord))


def status_list(statuses: frozenset[UploadStatus]) -> str:
    # Enum values are fixed identifiers, so inlining them is safe and keeps the index usable.
    return ", ".join(f"'{status.value}'" for status in sorted(statuses))


def to_column(name: str, value: Any) -> Any:
    if name == "status":
        return UploadStatus(value).value
    if name == "stage":
        return Stage(value).value
    return value


def to_row(record: UploadRecord) -> dict[str, Any]:
    return {name: to_column(name, getattr(record, name)) for name in COLUMNS}


def from_row(row: sqlite3.Row) -> UploadRecord:
    return UploadRecord(**{name: row[name] for name in COLUMNS})
