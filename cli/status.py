"""`nxup status`: the unfinished and recent uploads from the state database."""

from __future__ import annotations

import time

import click

from cli.profile_option import chosen_profile, profile_option

_STATUS_EXAMPLES = """\b
Examples:
  nxup status
  nxup status --recent 100 --json | jq -r 'select(.status == "failed") | .path'
  nxup status --profile work               # only the profile's server
"""


@click.command(epilog=_STATUS_EXAMPLES)
@profile_option({})
@click.option("--json", "json_lines", is_flag=True, help="One JSON object per upload.")
@click.option("--recent", "recent_limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many recent uploads to show besides the unfinished ones.")
def status(json_lines: bool, recent_limit: int) -> None:
    """Unfinished and recent uploads from the state database, with when each last changed
    (with a profile named: only those to its server)."""
    from engine.server_url import bare_url
    from engine.state import StateStore
    from engine.text import json_line, printable, size_text

    profile = chosen_profile()
    server = bare_url(profile.values.get("url", "")) if profile.named else None
    with StateStore.open() as store:
        unfinished = [r for r in store.unfinished() if server is None or bare_url(r.server_url) == server]
        recent = [r for r in store.recent(limit=recent_limit)
                  if r not in unfinished and (server is None or bare_url(r.server_url) == server)]
        parts: dict[int | None, int] = {r.id: len(store.parts(r.id)) for r in unfinished if r.id is not None}
    if json_lines:
        for record in unfinished + recent:
            row = {k: getattr(record, k) for k in ("id", "path", "size", "target", "status", "server_url", "error",
                                                   "part_count", "updated_at", "finished_at", "doc_uid", "note")}
            row["parts_done"] = parts.get(record.id)
            row["server_url"] = bare_url(record.server_url)  # rows written before URLs were stripped
            click.echo(json_line(row))
        return
    click.echo(f"{len(unfinished)} unfinished upload(s)" + (" — `nxup resume` continues them" if unfinished else ""))
    for record in unfinished:
        progress = f"{parts.get(record.id, 0)}/{record.part_count} parts" if record.upload_id else ""
        reason = f" — {printable(record.error)}" if record.error else ""
        click.echo(f"  {_when(record.updated_at)} {record.status:<9} {printable(record.path)} "
                   f"({size_text(record.size or 0)}) -> {printable(record.target)} {progress}{reason}")
    if recent:
        click.echo("recent:")
        for record in recent:
            document = f" (document {record.doc_uid})" if record.doc_uid else ""
            why = record.note or record.error  # why it was skipped, or why it failed
            reason = f" — {printable(why)}" if why else ""
            click.echo(
                f"  {_when(record.finished_at or record.updated_at)} {record.status:<9} {printable(record.path)} "
                f"({size_text(record.size or 0)}) -> {printable(record.target)}{document}{reason}"
            )


def _when(epoch: float | None) -> str:
    """Local date and time, to the minute (as `ls -l` shows them)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else " " * 16


__all__ = ["status"]
