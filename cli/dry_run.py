"""What `nxup upload` sends, and what it does with a name already taken: `--existing`,
`--include`/`--exclude` (and the default ignore list), and `--dry-run`, which prints per file
what would happen and where, plain or `--json`, and sends nothing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import click

from cli.exits import EXIT_FAILED, EXIT_OK

EXISTING_HELP = ("What to do when the target folder already has a document of the file's name: version (default: "
                 "same bytes are skipped, else the document gets the file as a new version), skip (never touch it), "
                 "rename (a new document 'a (2).txt'), fail (the file fails unless the bytes are the same).")


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--existing", type=click.Choice(["version", "skip", "rename", "fail"]), default="version",
                     show_default=True, help=EXISTING_HELP),
        click.option("--include", "includes", multiple=True, metavar="PATTERN",
                     help="Send only the files of a folder that match (gitignore-style, relative to the folder "
                          "given; repeatable)."),
        click.option("--exclude", "excludes", multiple=True, metavar="PATTERN",
                     help="Leave out what matches (gitignore-style, relative to the folder given; 'build/' leaves "
                          "out a folder and everything in it; repeatable)."),
        click.option("--no-default-excludes", is_flag=True,
                     help="Also send hidden and system files (.*, ~$*, *.tmp, *.part, *.crdownload, Thumbs.db, "
                          "desktop.ini, Icon\\r, __MACOSX), left out of folders by default."),
        click.option("--dry-run", is_flag=True,
                     help="Print what would be sent where (and what skipped, versioned, renamed or ignored); "
                          "send nothing."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def path_filter(includes: tuple[str, ...], excludes: tuple[str, ...], no_default_excludes: bool) -> Any:
    from engine.inputs import PathFilter

    return PathFilter(include=includes, exclude=excludes, default_excludes=not no_default_excludes)


def run_dry_run(connection: Any, paths: tuple[str, ...], target: str, *, existing: str, patterns: Any,
                json_lines: bool) -> int:
    """Print the plan of the upload; exit 1 when a file would fail."""
    from engine.dry_run import Outcome, plan
    from engine.errors import NxupError
    from engine.existing import ExistingPolicy
    from engine.nuxeo_batch import NuxeoBatchClient
    from engine.text import json_line, printable, size_text

    nuxeo = NuxeoBatchClient(connection)
    counts: Counter[Outcome] = Counter()
    sizes: Counter[Outcome] = Counter()
    try:
        for planned in plan(nuxeo, paths, target, existing=ExistingPolicy(existing), patterns=patterns):
            counts[planned.outcome] += 1
            sizes[planned.outcome] += planned.size
            if json_lines:
                click.echo(json_line({"event": "dry_run", "time": round(time.time(), 3),
                                      "action": planned.outcome.value,
                                      "path": planned.path, "size": planned.size,
                                      "destination": planned.destination, "reason": planned.reason}))
                continue
            click.echo(_plain_line(planned))
    except NxupError as exc:
        click.echo(f"nxup: {printable(connection.url)}: {printable(str(exc))}", err=True)
        return EXIT_FAILED
    finally:
        nuxeo.close()
    sent = counts[Outcome.UPLOAD] + counts[Outcome.VERSION] + counts[Outcome.RENAME]
    sent_bytes = sizes[Outcome.UPLOAD] + sizes[Outcome.VERSION] + sizes[Outcome.RENAME]
    if json_lines:
        click.echo(json_line({"event": "dry_run_summary", "time": round(time.time(), 3),
                              **{outcome.value: counts[outcome] for outcome in Outcome}, "bytes": sent_bytes}))
    else:
        click.echo(f"dry run: {sent} to send ({size_text(sent_bytes)}: {counts[Outcome.UPLOAD]} new, "
                   f"{counts[Outcome.VERSION]} new versions, {counts[Outcome.RENAME]} renamed), "
                   f"{counts[Outcome.SKIP]} skipped, {counts[Outcome.IGNORE]} ignored by patterns, "
                   f"{counts[Outcome.FAIL]} would fail; nothing was sent")
    return EXIT_FAILED if counts[Outcome.FAIL] else EXIT_OK


def _plain_line(planned: Any) -> str:
    from engine.dry_run import Outcome
    from engine.text import printable, size_text

    name, size, where = printable(planned.path), size_text(planned.size), printable(planned.destination)
    if planned.outcome is Outcome.UPLOAD:
        return f"upload {name} ({size}) → {where}"
    if planned.outcome is Outcome.VERSION:
        return f"new version of {name} ({size}) → {where}"
    if planned.outcome is Outcome.RENAME:
        return f"rename {name} ({size}) → {where}"
    return f"{planned.outcome.value} {name}: {printable(planned.reason)}"
