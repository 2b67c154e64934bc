"""`nxup upload`."""

from __future__ import annotations

import sys

import click

from cli.dry_run import path_filter, run_dry_run, selection_options
from cli.running import run_transfers, use_tui
from cli.transfer_options import fail_usage, transfer_options, transfer_settings

_UPLOAD_EXAMPLES = """\b
Examples:
  export NUXEO_URL=https://nuxeo.example.com/nuxeo NUXEO_USER=jdoe NUXEO_PASSWORD=...
  nxup upload ~/scans --to /default-domain/workspaces/Projects
  nxup upload report.pdf --to /default-domain/workspaces/Projects --no-tui --limit 20MiB/s
  nxup upload ~/photos --to /default-domain/workspaces/Photos --json > events.jsonl
  nxup upload ~/site --to /default-domain/workspaces/Site --exclude 'build/' --include '*.html' --dry-run
  nxup upload ~/scans --to /default-domain/workspaces/Projects --existing skip
  nxup login --profile work --url https://nuxeo.example.com/nuxeo --user jdoe   # once
  nxup upload ~/scans --profile work --to /default-domain/workspaces/Projects
"""

@click.command(epilog=_UPLOAD_EXAMPLES)
# A click.Path for completion only: nxup checks each path itself, names a bad one and goes on.
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False, path_type=str))
@click.option(
    "--to", "target", required=True, help="Nuxeo folder path that receives the files (or the profile's target)."
)
@selection_options
@transfer_options
def upload(
    paths: tuple[str, ...],
    target: str,
    existing: str,
    includes: tuple[str, ...],
    excludes: tuple[str, ...],
    no_default_excludes: bool,
    dry_run: bool,
    url: str | None,
    user: str | None,
    no_tui: bool,
    json_lines: bool,
    workers: int,
    part_size: int,
    single_limit: int,
    checksum: str,
    verify: bool,
    limit: int | None,
) -> None:
    """Upload files and folders (mirrored as Folder documents) to a Nuxeo folder.

    Ctrl-C (or q in the transfer manager) pauses: the parts S3 acknowledged are kept, a part that
    ends within half a second ends, the other parts in flight are sent again by `nxup resume`."""

    from cli.connection import server_connection, url_on_command_line
    from engine.existing import ExistingPolicy

    if not url:
        fail_usage("no server: give --url or set NUXEO_URL")
    _check_target(target)
    settings = transfer_settings(workers, part_size, single_limit, checksum, verify, limit)
    patterns = path_filter(includes, excludes, no_default_excludes)
    connection = server_connection(url, user, url_on_command_line=url_on_command_line())
    if dry_run:
        sys.exit(run_dry_run(connection, paths, target, existing=existing, patterns=patterns, json_lines=json_lines))
    tui = use_tui(no_tui=no_tui, json_lines=json_lines)
    sys.exit(
        run_transfers(
            connection,
            settings,
            tui=tui,
            json_lines=json_lines,
            target=target,
            start=lambda manager: manager.add(paths, target, existing=ExistingPolicy(existing), patterns=patterns),
        )
    )


def _check_target(target: str) -> None:
    """A Nuxeo path is Unicode text: bytes that are not UTF-8, or control characters, in it
    can only be a mistake."""
    import unicodedata

    from engine.inputs import is_utf8
    from engine.text import printable

    if not is_utf8(target) or any(unicodedata.category(char) == "Cc" for char in target):
        fail_usage(
            f"--to {printable(target)}: not a Nuxeo folder path (control characters or bytes that are not UTF-8)"
        )
