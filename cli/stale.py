"""`nxup stale`: list, explain and abort orphaned multipart uploads (the start-up cleanup that
`nxup upload`, `nxup resume` and `nxup` run before they start is in `startup_cleanup`).

Two ways in:
- admin, direct to S3 (`--bucket`, `--endpoint`, keys from boto3's usual chain or `--s3-profile`):
  every multipart upload under the prefix, plus the bucket's lifecycle rules;
- through Nuxeo (`--url`, `--user`): batch credentials cannot list a bucket, so only the uploads
  nxup recorded in its state database are listed and aborted, each with its batch's credentials.

Engine imports stay inside functions so that `nxup --help` stays fast.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from cli.exits import EXIT_FAILED, EXIT_OK
from cli.param_types import AGE
from cli.profile_option import profile_option
from engine.text import age_text, json_line, printable
from engine.text import size_text as _size_text

if TYPE_CHECKING:
    from engine.stale import AbortReport, AdminScanner, StaleUpload, TrackedScanner



# == formatting ====================================================================================

def size_text(size: int | None) -> str:
    return "?" if size is None else _size_text(size)


def nxup_text(upload: StaleUpload) -> str:
    tracked = upload.tracked
    if tracked is None:
        return "-"
    name = printable(tracked.file_name)
    return f"resumable: {name}" if tracked.resumable else f"tracked: {name} ({printable(tracked.reason)})"


def parts_text(upload: StaleUpload) -> str:
    return "?" if upload.parts is None else str(upload.parts)


def print_table(uploads: list[StaleUpload], now: Any) -> None:
    """The uploads as a table that fits the terminal (80 columns when piped): keys and names
    fold rather than being cut, colour only on a terminal (and never with NO_COLOR)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("AGE", no_wrap=True)
    table.add_column("PARTS", justify="right", no_wrap=True)
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("KEY", overflow="fold")
    table.add_column("NXUP", overflow="fold")
    for upload in uploads:
        nxup = nxup_text(upload) + (f" [{printable(upload.note)}]" if upload.note else "")
        # Text, not strings: a key or a file name is never read as markup.
        table.add_row(Text(age_text(upload.age(now))), Text(parts_text(upload)), Text(size_text(upload.bytes)),
                      Text(printable(upload.key)), Text(nxup))
    console = Console(highlight=False)
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def summary_line(uploads: list[StaleUpload]) -> str:
    from engine.stale import total_bytes

    tracked = [u for u in uploads if u.tracked is not None]
    resumable = len([u for u in tracked if u.tracked is not None and u.tracked.resumable])
    counted = all(u.parts is not None for u in uploads)
    size = size_text(total_bytes(uploads)) + ("" if counted else " counted")
    return (f"{len(uploads)} multipart upload(s) holding {size}; "
            f"{len(tracked)} tracked by nxup ({resumable} resumable)")


# == the command ===================================================================================

def _admin_scanner(
    bucket: str, endpoint: str | None, region: str | None, profile: str | None
) -> tuple[AdminScanner, Any]:
    from engine.stale import AdminScanner, S3AdminConfig
    from engine.state import StateStore

    client = S3AdminConfig(bucket=bucket, endpoint=endpoint, region=region, profile=profile).client()
    return AdminScanner(client, bucket, StateStore.open()), client


def _nuxeo_scanner(url: str, user: str | None) -> TrackedScanner:
    from cli.connection import server_connection, url_on_command_line
    from engine.nuxeo_batch import NuxeoBatchClient
    from engine.stale import TrackedScanner
    from engine.state import StateStore

    connection = server_connection(url, user, url_on_command_line=url_on_command_line())
    return TrackedScanner(StateStore.open(), NuxeoBatchClient(connection))


_STALE_EXAMPLES = """\b
Examples:
  export NXUP_S3_BUCKET=my-bucket NXUP_S3_PROFILE=admin   # admin access, keys from an AWS profile
  nxup stale --prefix upload/ --older-than 24h
  nxup stale --older-than 7d --abort --dry-run
  nxup stale --older-than 7d --abort --yes
  nxup stale --profile work                               # the profile's bucket, or its Nuxeo server
  nxup stale --url https://nuxeo.example.com/nuxeo --user jdoe   # without admin keys: nxup's own
"""


@click.command(epilog=_STALE_EXAMPLES)
@profile_option({"url": "url", "user": "user"})
@click.option("--bucket", envvar="NXUP_S3_BUCKET", show_envvar=True, help="Admin mode: the bucket.")
@click.option(
    "--endpoint", envvar="NXUP_S3_ENDPOINT", show_envvar=True, help="S3 endpoint URL for S3-compatible stores."
)
@click.option("--region", envvar="NXUP_S3_REGION", show_envvar=True, help="S3 region.")
@click.option(
    "--s3-profile",
    envvar="NXUP_S3_PROFILE",
    show_envvar=True,
    metavar="AWS_PROFILE",
    help="AWS profile holding the admin keys; otherwise boto3's usual chain (AWS_ACCESS_KEY_ID...).",
)
@click.option(
    "--url",
    envvar="NUXEO_URL",
    show_envvar=True,
    help="Through Nuxeo (without --bucket): only the uploads nxup tracks.",
)
@click.option("--user", envvar="NUXEO_USER", show_envvar=True, help="Nuxeo user.")
@click.option("--prefix", default="", help="Only keys under this prefix, e.g. upload/.")
@click.option(
    "--older-than", type=AGE, help="Only uploads at least this old: 30m, 24h, 7d (with --abort, 24h unless given)."
)
@click.option("--json", "json_lines", is_flag=True, help="One JSON object per line.")
@click.option("--no-parts", is_flag=True, help="Do not count parts and bytes (one request per upload).")
@click.option("--abort", "do_abort", is_flag=True, help="Abort the uploads listed (asks first, unless --yes).")
@click.option("--dry-run", is_flag=True, help="Say what --abort would abort, abort nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lifecycle", is_flag=True, help="Show whether the bucket has an AbortIncompleteMultipartUpload rule.")
@click.option(
    "--add-lifecycle-rule",
    type=click.IntRange(min=1),
    metavar="DAYS",
    help="Add a bucket-wide rule aborting uploads DAYS after they start (admin; asks first).",
)
def stale(
    bucket: str | None,
    endpoint: str | None,
    region: str | None,
    s3_profile: str | None,
    url: str | None,
    user: str | None,
    prefix: str,
    older_than: timedelta | None,
    json_lines: bool,
    no_parts: bool,
    do_abort: bool,
    dry_run: bool,
    yes: bool,
    lifecycle: bool,
    add_lifecycle_rule: int | None,
) -> None:
    """Orphaned multipart uploads: what they cost, whether nxup can resume them; abort them.

    Admin mode (--bucket) lists every upload under --prefix; through Nuxeo (--url) only the ones
    nxup tracks. Exit codes: 0 ok, 1 something failed, 2 usage."""
    from engine.errors import NxupError

    min_age = older_than or None  # 0: every age
    if (do_abort or dry_run) and older_than is None:
        # A safety age, as rclone's clean-up has: an upload younger than this may be running.
        from engine.stale import SAFE_ABORT_AGE

        min_age = SAFE_ABORT_AGE
        click.echo(f"only uploads at least {age_text(SAFE_ABORT_AGE)} old (--older-than 0 for all)", err=True)
    if (lifecycle or add_lifecycle_rule) and not bucket:
        raise click.UsageError(
            "lifecycle rules need admin access: give --bucket (and --endpoint for S3-compatible stores)"
        )
    if not bucket and not url:
        raise click.UsageError("give --bucket (admin, direct to S3) or --url (through Nuxeo; only nxup's own uploads)")
    try:
        scanner: AdminScanner | TrackedScanner
        if bucket:
            scanner, client = _admin_scanner(bucket, endpoint, region, s3_profile)
        else:
            scanner, client = _nuxeo_scanner(url or "", user), None
        assert scanner.store is not None  # both are made with the state store here
        with scanner.store:
            code = _run(
                scanner,
                client,
                bucket,
                prefix=prefix,
                min_age=min_age,
                json_lines=json_lines,
                count_parts=not no_parts,
                do_abort=do_abort or dry_run,
                dry_run=dry_run,
                yes=yes,
                lifecycle=lifecycle,
                add_rule_days=add_lifecycle_rule,
            )
    except NxupError as exc:
        click.echo(f"nxup: {printable(str(exc))}", err=True)
        code = EXIT_FAILED
    sys.exit(code)


def _run(
    scanner: AdminScanner | TrackedScanner,
    client: Any,
    bucket: str | None,
    *,
    prefix: str,
    min_age: timedelta | None,
    json_lines: bool,
    count_parts: bool,
    do_abort: bool,
    dry_run: bool,
    yes: bool,
    lifecycle: bool,
    add_rule_days: int | None,
) -> int:
    if add_rule_days is not None:
        return _add_rule(client, bucket or "", add_rule_days, yes=yes)
    if lifecycle:
        return _show_lifecycle(client, bucket or "", json_lines=json_lines)
    uploads = scanner.uploads(prefix, min_age, count_parts=count_parts or do_abort)
    now = scanner.now()
    if do_abort:
        return _abort(scanner, uploads, now, dry_run=dry_run, yes=yes, json_lines=json_lines)
    if json_lines:
        for upload in uploads:
            click.echo(json_line(upload.as_json(now)))
        return EXIT_OK
    if uploads:
        print_table(uploads, now)
    click.echo(summary_line(uploads))
    if client is not None:
        _lifecycle_hint(client, bucket or "")
    return EXIT_OK


def _lifecycle_hint(client: Any, bucket: str) -> None:
    from engine.errors import NxupError
    from engine.stale import lifecycle_status

    try:
        status = lifecycle_status(client, bucket)
    except NxupError as exc:
        click.echo(f"lifecycle: unknown ({printable(str(exc))})")
        return
    hint = "" if status.has_abort_rule else " (`nxup stale --add-lifecycle-rule 7` adds one)"
    click.echo(status.describe() + hint)


def _show_lifecycle(client: Any, bucket: str, *, json_lines: bool) -> int:
    from engine.stale import lifecycle_status

    status = lifecycle_status(client, bucket)
    if json_lines:
        click.echo(json_line({"bucket": bucket, "abort_rule_days": status.abort_days, "rules": len(status.rules)}))
    else:
        click.echo(status.describe())
    return EXIT_OK


def _add_rule(client: Any, bucket: str, days: int, *, yes: bool) -> int:
    from engine.stale import add_abort_rule, lifecycle_status

    status = lifecycle_status(client, bucket)
    question = (
        f"Add a lifecycle rule to bucket {bucket} that aborts every incomplete multipart upload "
        f"{days} day(s) after it starts? ({len(status.rules)} existing rule(s) are kept)"
    )
    if not _confirmed(question, yes=yes):
        click.echo("nothing changed")
        return EXIT_OK
    click.echo(add_abort_rule(client, bucket, days).describe())
    return EXIT_OK


def _confirmed(question: str, *, yes: bool) -> bool:
    if yes:
        return True
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        # No answer at all (no terminal, stdin closed): a usage problem, not a "no".
        raise click.UsageError("needs a confirmation: answer on a terminal or pass --yes") from None


def _abort(
    scanner: AdminScanner | TrackedScanner,
    uploads: list[StaleUpload],
    now: Any,
    *,
    dry_run: bool,
    yes: bool,
    json_lines: bool,
) -> int:
    from engine.stale import abort_question

    if not uploads:
        click.echo("no multipart uploads to abort", err=json_lines)
        return EXIT_OK
    if not dry_run and not _confirmed(abort_question(uploads), yes=yes):
        click.echo("nothing aborted", err=json_lines)
        return EXIT_OK
    report = scanner.abort(uploads, dry_run=dry_run, on_done=lambda r: _print_result(r, now, json_lines=json_lines))
    _print_report(report, json_lines=json_lines)
    return EXIT_FAILED if report.failed else EXIT_OK


def _print_result(result: Any, now: Any, *, json_lines: bool) -> None:
    upload = result.upload
    if json_lines:
        row = upload.as_json(now) | {"result": result.message, "ok": result.ok}
        click.echo(json_line(row))
        return
    click.echo(
        f"{printable(result.message):<12} {printable(upload.key)}"
        f" ({age_text(upload.age(now))} old, {size_text(upload.bytes)})"
    )


def _print_report(report: AbortReport, *, json_lines: bool) -> None:
    from engine.stale import report_line

    click.echo(report_line(report), err=json_lines)
