"""The `--json` lines: every event kind, written by the reporter the CLI uses, carries exactly the
keys the README's table documents (the table is read from the README itself)."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from cli.logs import JsonLogHandler
from cli.plain import Reporter
from engine.events import (
    Event,
    FileCancelled,
    FileCompleted,
    FileFailed,
    FileIgnored,
    FilePaused,
    FileProgress,
    FileQueued,
    FileSkipped,
    FileStarted,
    Notice,
    PartCompleted,
    PartProgress,
)

README = Path(__file__).resolve().parent.parent / "README.md"

ONE_OF_EACH: list[Event] = [
    FileQueued(1, path="/d/a.bin", size=10, target="/t", resumed=False),
    FileStarted(1, path="/d/a.bin", size=10, multipart=True, part_size=5, part_count=2, parts_already_done=0,
                bytes_already_done=0),
    FileProgress(1, sent=6, size=10, parts_done=1, part_count=2, parts_in_flight=(PartProgress(2, 1, 5),),
                 acknowledged=5, in_flight=1),
    PartCompleted(1, number=1, size=5),
    FileCompleted(1, path="/d/a.bin", size=10, document_path="/t/a.bin", document_uid="uid", etag='"e-2"'),
    FileFailed(-1, path="/d/missing", reason="no such file or directory", retryable=False),
    FilePaused(1, path="/d/a.bin", acknowledged=5, dropped=1),
    FileCancelled(1, path="/d/a.bin"),
    FileSkipped(2, path="/d/b.bin", reason="same bytes in /t/b.bin", document_path="/t/b.bin"),
    FileIgnored(-2, path="/d/.DS_Store", reason="a hidden or system file"),
    Notice(1, message="/d/a.bin: a notice"),
]


def documented() -> dict[str, set[str]]:
    """The README's table: event -> keys (besides `event` and `time`, which every line has)."""
    section = README.read_text(encoding="utf-8").split("### JSON lines", 1)[1].split("###", 1)[0]
    table: dict[str, set[str]] = {}
    for event, keys in re.findall(r"^\| `(\w+)`[^|]*\| ([^|]+) \|$", section, flags=re.MULTILINE):
        table[event] = {re.sub(r" \(.*", "", key.strip()) for key in re.split(r", (?![^(]*\))", keys)}
    return table


# Written by the command line itself, not by the engine: the run as a whole, a log record, a
# fatal error, and the summary.
OWN_KINDS = {"overall", "log", "error", "summary"}


def json_lines(events: list[Event]) -> list[dict[str, object]]:
    stream = io.StringIO()
    reporter = Reporter(json_lines=True, stream=stream, overall_every_s=0.0)
    for event in events:
        reporter(event)
    reporter.tick()
    handler = JsonLogHandler(reporter.emit_json)
    handler.handle(logging.makeLogRecord({"name": "engine.manager", "levelno": logging.WARNING,
                                          "levelname": "WARNING", "msg": "a warning"}))
    reporter.fatal("https://host/nuxeo: Nuxeo rejected the user name or password (401)")
    reporter.summary(elapsed_s=1.5)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_readme_documents_every_event_kind() -> None:
    assert set(documented()) == {event.kind for event in ONE_OF_EACH} | OWN_KINDS


@pytest.mark.parametrize("line", json_lines(ONE_OF_EACH), ids=lambda line: str(line["event"]))
def test_each_line_carries_exactly_the_documented_keys(line: dict[str, object]) -> None:
    assert isinstance(line["time"], float)
    assert set(line) - {"event", "time"} == documented()[str(line["event"])]


def test_summary_counts_and_names_failures() -> None:
    (*_, summary) = json_lines(ONE_OF_EACH)
    assert summary["event"] == "summary"
    assert summary["failures"] == [["/d/missing", "no such file or directory"]]
    assert summary["done"] == 1 and summary["failed"] == 1 and summary["cancelled"] == 1
