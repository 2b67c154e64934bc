"""What the transfer manager leaves on the terminal once it is gone: the same end as a headless
run, so nothing that failed or is left over goes unsaid."""

from __future__ import annotations

from collections.abc import Sequence

from engine.lifecycle import UploadStatus, count_by_status
from engine.text import printable, size_text
from tui.model import FileRow

FAILED_SHOWN = 20  # failures named one by one; `nxup status` lists the rest


def exit_report(rows: Sequence[FileRow], errors: Sequence[str]) -> tuple[list[str], int]:
    """The errors that stopped a command, the counts, each failure with its reason and how to
    resume; and the exit code (1 when anything failed or is left paused)."""
    counts = count_by_status(row.status for row in rows)
    done_bytes = sum(row.size for row in rows if row.status is UploadStatus.DONE)
    lines = [f"nxup: {message}" for message in errors]
    skipped = f", {counts[UploadStatus.SKIPPED]} skipped" if counts[UploadStatus.SKIPPED] else ""
    lines.append(
        f"{counts[UploadStatus.DONE]} uploaded ({size_text(done_bytes)}), {counts[UploadStatus.FAILED]} failed, "
        f"{counts[UploadStatus.CANCELLED]} cancelled, {counts[UploadStatus.PAUSED]} paused{skipped}"
    )
    failed = [row for row in rows if row.status is UploadStatus.FAILED]
    lines += [
        f"failed    {printable(row.path) or chr(34) * 2}: {printable(row.reason)}" for row in failed[:FAILED_SHOWN]
    ]
    if len(failed) > FAILED_SHOWN:
        lines.append(f"… and {len(failed) - FAILED_SHOWN} more failed (`nxup status` lists them)")
    unfinished = counts[UploadStatus.PAUSED] + counts[UploadStatus.QUEUED] + counts[UploadStatus.UPLOADING]
    if unfinished:
        lines.append("unfinished files are paused; `nxup resume` continues them")
    failing = bool(errors or failed or unfinished)
    return lines, 1 if failing else 0
