"""What the command line and the screen both say about stale uploads, in the same words."""

from __future__ import annotations

from collections.abc import Sequence

from engine.text import size_text

from .outcomes import AbortReport
from .uploads import StaleUpload, total_bytes


def abort_question(uploads: Sequence[StaleUpload]) -> str:
    """The confirmation asked before aborting: how many, how much, and how many nxup could still
    resume (aborting those throws their sent parts away)."""
    size = size_text(total_bytes(uploads))
    if any(u.parts is None and not u.note for u in uploads):
        size = f"at least {size} (still counting)"
    resumable = sum(1 for u in uploads if u.resumable)
    warning = f" {resumable:,} of them nxup could still resume." if resumable else ""
    return f"Abort {len(uploads):,} multipart upload(s) holding {size}?{warning}"


def report_line(report: AbortReport) -> str:
    """What a set of aborts came to, in one line."""
    done = len(report.succeeded)
    if report.dry_run:
        line = f"dry run: would abort {done:,} upload(s) holding {size_text(report.bytes_freed)}; nothing was aborted"
    else:
        line = f"aborted {done:,} upload(s), {size_text(report.bytes_freed)} freed"
        if report.failed:
            line += f"; {len(report.failed):,} failed"
    if report.in_use:
        line += f"; {len(report.in_use):,} in use by a running nxup, left to it"
    return line
