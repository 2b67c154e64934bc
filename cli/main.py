"""The `nxup` command.

`nxup upload` and `nxup resume` drive the engine; on a terminal they will open the transfer
manager, and with `--no-tui` (or when not on a terminal) they print plain lines (`-q`, `-v`,
`--debug`, `--log-file`: see cli/output.py), or one JSON object per event and error with
`--json`. Exit codes: 0 when every file landed, 1 when some failed (each named with its reason),
2 for usage errors.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.dry_run import path_filter, run_dry_run, selection_options
from cli.exits import EXIT_FAILED, EXIT_OK
from cli.kept_settings import given_settings, kept_settings
from cli.login import login, logout
from cli.output import json_error, json_requested, output_options, output_settings, remember_json
from cli.profile_option import chosen_profile, profile_option
from cli.stale import cleanup_at_start, stale_after_option

# What a profile fills in for `upload` and `resume` (profile key -> option).
_PROFILE_FILLS = {"url": "url", "user": "user", "target": "target", "stale_after": "stale_after"}


def _fail_usage(message: str) -> None:
    from engine.text import printable

    raise click.UsageError(printable(message))


def _settings(workers: int, part_size: str, single_limit: str, checksum: str, verify: bool, limit: str | None) -> Any:
    from engine.manager import TransferSettings
    from engine.planning import MAX_PART_SIZE, MIN_PART_SIZE
    from engine.s3 import ChecksumAlgorithm
    from engine.units import parse_rate, parse_size

    def parsed(option: str, parse: Callable[[str], Any], text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            _fail_usage(f"{option}: {exc}")

    part = parsed("--part-size", parse_size, part_size)
    single = parsed("--single-limit", parse_size, single_limit)
    rate = parsed("--limit", parse_rate, limit) if limit else None
    if not MIN_PART_SIZE <= part <= MAX_PART_SIZE:
        _fail_usage("--part-size must be between 5 MiB and 5 GiB")
    algorithm = ChecksumAlgorithm(checksum if checksum == "none" else checksum.upper())
    if not algorithm.available:
        _fail_usage(f"--checksum {checksum} needs botocore's CRT extension (pip install 'botocore[crt]'); "
                    "crc32, sha1 and sha256 need nothing more")
    return TransferSettings(
        workers=workers,
        part_size=part,
        single_upload_limit=min(single, 5 * 1024**3),
        checksum=algorithm,
        verify_etag=verify,
        bandwidth_limit=rate,
    )


def _transfer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        # The connection: where, as whom (the password or token never on the command line).
        profile_option(_PROFILE_FILLS),
        click.option("--url", envvar="NUXEO_URL", show_envvar=True, help="Nuxeo URL, e.g. https://host/nuxeo."),
        click.option("--user", envvar="NUXEO_USER", show_envvar=True,
                     help="Nuxeo user. The password comes from NUXEO_PASSWORD, the token `nxup login` kept, or a "
                          "prompt, never the command line; NUXEO_TOKEN logs in with a token instead."),
        # How the transfer runs; kept with each upload for `nxup resume`.
        click.option("--no-tui", is_flag=True, help="Plain progress lines instead of the transfer manager."),
        click.option("--json", "json_lines", is_flag=True, callback=remember_json,
                     help="One JSON object per event and per error (implies --no-tui)."),
        click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
                     help="Parallel uploads (parts and files)."),
        click.option("--part-size", default="20MiB", show_default=True, help="Multipart part size (grown for huge files)."),
        click.option("--single-limit", default="20MiB", show_default=True, help="Largest file sent with one PUT."),
        click.option("--checksum", type=click.Choice(["crc32", "crc32c", "sha1", "sha256", "none"]), default="crc32", show_default=True, help="Per-part checksum S3 verifies (none for servers that reject it)."),
        click.option("--verify/--no-verify", default=False, help="Check the final ETag against the file (MD5 of part MD5s)."),
        click.option("--limit", help="Bandwidth cap, e.g. 20M or 20MiB/s (K, M, G are binary, as rclone reads them; default: none)."),
        stale_after_option,
    ]
    for option in reversed(options):
        func = option(func)
    return output_options(func)


class _Commands(click.Group):
    """The command group, with one guard: any engine error that reaches it (a state database
    that cannot be used, a server that refused, a file too large...) is one line naming the
    cause, from whichever command met it, and an exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from engine.errors import NxupError
        from engine.text import printable

        try:
            return super().invoke(ctx)
        except NxupError as exc:
            if json_requested(ctx):
                click.echo(json_error(str(exc)))
            click.echo(f"nxup: {printable(str(exc))}", err=True)
            sys.exit(EXIT_FAILED)
        except click.ClickException as exc:
            if not json_requested(ctx):
                raise
            # With --json, a usage error is the one JSON object a script reads, and still told.
            click.echo(json_error(exc.format_message()))
            exc.show()
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # `nxup status | head -1`: the reader has what it wanted; no traceback.
            from cli.plain import quiet_closed_stdout

            quiet_closed_stdout()
            sys.exit(EXIT_FAILED)


@click.group(cls=_Commands, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nxup")
@click.pass_context
def main(ctx: click.Context) -> None:
    """nxup: upload files to Nuxeo directly to S3, with pause, resume and cancel.

    Without a command, opens the transfer manager on the unfinished uploads, ready to resume."""
    if ctx.invoked_subcommand is None:
        sys.exit(_open_unfinished())


def _open_unfinished() -> int:
    from cli.connection import server_connection
    from engine.state import StateStore
    from tui.bridge import EventBridge

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(click.get_current_context().get_help())
        return EXIT_OK
    with StateStore.open() as store:
        unfinished = store.unfinished()
    if not unfinished:
        click.echo("no unfinished uploads. Start one with `nxup upload PATH... --to FOLDER --url URL`, or try `nxup demo`.")
        return EXIT_OK
    # The most recent server; uploads to other servers wait for `nxup resume --url`.
    latest = max(unfinished, key=lambda r: r.updated_at or 0)
    bridge = EventBridge()
    settings, _ = kept_settings(_settings(8, "20MiB", "20MiB", "crc32", False, None),
                                [r for r in unfinished if r.server_url == latest.server_url], given=set())
    manager = _open_manager(server_connection(latest.server_url, latest.user, url_on_command_line=False),
                            settings, bridge)
    notices = cleanup_at_start(manager, echo=False)
    try:
        return run_tui(manager, bridge, lambda: manager.load_unfinished(paused=True), target=latest.target,
                       notices=notices)
    finally:
        manager.store.close()


def _run_headless(manager: Any, reporter: Any, start: Callable[[], None], *, abort_on_interrupt: bool = False) -> int:
    """Run until every file is done, failed or cancelled; Ctrl-C or SIGTERM pauses cleanly
    (or, with `abort_on_interrupt`, cancels what is unfinished)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    began = time.monotonic()
    try:
        manager.start()
        start()
        while not stop.is_set() and not manager.wait(timeout=0.2):
            reporter.tick()
        interrupted = stop.is_set()
        if interrupted and abort_on_interrupt:
            manager.cancel_all()
            manager.wait(timeout=30)
    finally:
        manager.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reporter.summary(elapsed_s=time.monotonic() - began)
    if interrupted:
        click.echo("interrupted: unfinished files are paused; `nxup resume` continues them", err=True)
        return EXIT_FAILED
    tally = reporter.tally
    return EXIT_FAILED if tally.failed or tally.paused else EXIT_OK


def use_tui(*, no_tui: bool, json_lines: bool) -> bool:
    return not (no_tui or json_lines) and sys.stdin.isatty() and sys.stdout.isatty()


def run_tui(manager: Any, bridge: Any, start: Callable[[], Any] | None, *, target: str,
            abort_on_quit: bool = False, notices: list[str] | None = None, stale_source: Any = None) -> int:
    """Run the transfer manager; quitting pauses what is in flight so it can be resumed
    (or aborts it, with `abort_on_quit`). `notices` are shown in the app (start-up cleanup)."""
    from engine.stale import StaleSource
    from tui.app import NxupApp

    app = NxupApp(manager, bridge, start=start, target=target, server_label=manager.connection.url,
                  abort_on_quit=abort_on_quit, notices=notices or [],
                  stale_source=stale_source or StaleSource.from_env())
    try:
        code = app.run()
    finally:
        manager.shutdown()
    # The same end as a headless run: nothing that failed or is left over goes unsaid.
    lines, report_code = app.exit_report()
    for line in lines:
        click.echo(line, err=line.startswith("nxup:"))
    return max(int(code or 0), report_code)


def _open_manager(connection: Any, settings: Any, reporter: Any) -> Any:
    from engine.manager import TransferManager
    from engine.state import StateStore

    store = StateStore.open()
    return TransferManager(connection, store=store, sink=reporter, settings=settings)


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

_RESUME_EXAMPLES = """\b
Examples:
  nxup resume                              # every server's unfinished uploads, with their settings
  nxup resume --no-tui --limit off         # headless, lifting the cap they were added with
  nxup resume --profile work               # only the profile's server
"""


@main.command(epilog=_UPLOAD_EXAMPLES)
# A click.Path for completion only: nxup checks each path itself, names a bad one and goes on.
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False, path_type=str))
@click.option("--to", "target", required=True, help="Nuxeo folder path that receives the files (or the profile's target).")
@selection_options
@_transfer_options
def upload(paths: tuple[str, ...], target: str, existing: str, includes: tuple[str, ...], excludes: tuple[str, ...],
           no_default_excludes: bool, dry_run: bool, url: str | None, user: str | None, no_tui: bool,
           json_lines: bool, workers: int, part_size: str, single_limit: str, checksum: str,
           verify: bool, limit: str | None) -> None:
    """Upload files and folders (mirrored as Folder documents) to a Nuxeo folder."""

    from cli.connection import server_connection, url_on_command_line
    from engine.existing import ExistingPolicy

    if not url:
        _fail_usage("no server: give --url or set NUXEO_URL")
    _check_target(target)
    settings = _settings(workers, part_size, single_limit, checksum, verify, limit)
    patterns = path_filter(includes, excludes, no_default_excludes)
    connection = server_connection(url, user, url_on_command_line=url_on_command_line())
    if dry_run:
        sys.exit(run_dry_run(connection, paths, target, existing=existing, patterns=patterns, json_lines=json_lines))
    tui = use_tui(no_tui=no_tui, json_lines=json_lines)
    sys.exit(_run_transfers(connection, settings, tui=tui, json_lines=json_lines, target=target,
                            start=lambda manager: manager.add(paths, target, existing=ExistingPolicy(existing),
                                                              patterns=patterns)))


def _check_target(target: str) -> None:
    """A Nuxeo path is Unicode text: bytes that are not UTF-8, or control characters, in it
    can only be a mistake."""
    import unicodedata

    from engine.inputs import is_utf8
    from engine.text import printable

    if not is_utf8(target) or any(unicodedata.category(char) == "Cc" for char in target):
        _fail_usage(f"--to {printable(target)}: not a Nuxeo folder path (control characters or bytes that are not UTF-8)")


def _run_transfers(connection: Any, settings: Any, *, tui: bool, json_lines: bool, target: str,
                   start: Callable[[Any], Any]) -> int:
    """Open a manager on one server, clean up obsolete uploads, then run `start(manager)` in
    the transfer manager or headless. Returns the exit code."""
    from cli.logs import configure_logging
    from cli.plain import Reporter
    from engine.errors import NxupError
    from engine.text import printable
    from tui.bridge import EventBridge

    output = output_settings()
    sink: Any = EventBridge() if tui else Reporter(
        json_lines=json_lines, detail=output.detail, live=not json_lines and sys.stdout.isatty(),
        overall_every_s=output.stats_every_s)
    configure_logging(output, screen=not tui, json_emit=sink.emit_json if json_lines else None)
    manager = _open_manager(connection, settings, sink)
    notices = cleanup_at_start(manager, echo=not tui)
    try:
        if tui:
            return run_tui(manager, sink, lambda: start(manager), target=target, notices=notices)
        return _run_headless(manager, sink, lambda: start(manager))
    except NxupError as exc:
        from cli.connection import refused_login_hint
        from engine.errors import AuthenticationError

        reason = f"{connection.url}: {exc}"
        if not tui:
            sink.fatal(reason)
        hint = refused_login_hint(connection) if isinstance(exc, AuthenticationError) else ""
        click.echo(f"nxup: {printable(reason)}{hint}", err=True)
        return EXIT_FAILED
    finally:
        manager.store.close()


@main.command(epilog=_RESUME_EXAMPLES)
@_transfer_options
def resume(url: str | None, user: str | None, no_tui: bool, json_lines: bool, workers: int,
           part_size: str, single_limit: str, checksum: str, verify: bool, limit: str | None) -> None:
    """Finish every unfinished upload (after a crash, a quit or a failure)."""
    from click.core import ParameterSource

    from cli.connection import server_connection, url_on_command_line
    from engine.server_url import split_login
    from engine.state import StateStore

    ctx = click.get_current_context()
    if not chosen_profile(ctx).named:
        # The implicit `default` profile names one server and user: resume goes on with every
        # server's uploads, each as the user who added them.
        url = None if ctx.get_parameter_source("url") is ParameterSource.DEFAULT_MAP else url
        user = None if ctx.get_parameter_source("user") is ParameterSource.DEFAULT_MAP else user
    with StateStore.open() as store:
        unfinished = store.unfinished()
    if not unfinished:
        click.echo("nothing to resume")
        sys.exit(EXIT_OK)
    # (URL as given, user): the stored URLs are bare; the user's own URL may carry a login.
    servers = sorted({(r.server_url, r.user) for r in unfinished}, key=str)
    if url:
        stored_user = dict(servers).get(split_login(url).url)
        servers = [(url, user or split_login(url).user or stored_user)]
    command_settings = _settings(workers, part_size, single_limit, checksum, verify, limit)
    connections = [server_connection(server_url, user or server_user,
                                     url_on_command_line=bool(url) and url_on_command_line())
                   for server_url, server_user in servers]
    tui = use_tui(no_tui=no_tui, json_lines=json_lines)
    given = given_settings(ctx)
    code = EXIT_OK
    for connection in connections:
        # Each upload goes on with the settings it was added with, unless given again.
        settings, notices = kept_settings(
            command_settings, [r for r in unfinished if r.server_url == connection.url], given=given)
        for notice in notices:
            click.echo(f"nxup: {notice}", err=True)
        code = max(code, _run_transfers(
            connection, settings, tui=tui, json_lines=json_lines,
            target=unfinished[0].target, start=lambda manager: manager.load_unfinished(),
        ))
    sys.exit(code)


@main.command(epilog="""\b
Examples:
  nxup sandbox --json                      # then NUXEO_URL=... nxup upload ... from another terminal
  nxup sandbox --policy permissive --data-dir ~/nxup-sandbox
""")
@click.option("--port", default=0, help="Port of the Nuxeo-compatible server (default: a free one).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep the sandbox's data here (default: a throwaway dir).")
@click.option("--json", "as_json", is_flag=True, help="Print the connection details as one JSON line first.")
@click.option("--credential-ttl", default=3600, show_default=True, help="Lifetime of each batch's S3 credentials, in seconds.")
@click.option("--default-handler-first", is_flag=True, help="List the 'default' upload handler first, as some real servers do.")
@click.option("--policy", type=click.Choice(["stock", "permissive"]), default="stock", show_default=True,
              help="What batch credentials may do: only PutObject, like a stock Nuxeo server, or also read, list parts and abort.")
@click.option("--batch-ttl", default=72 * 3600.0, show_default=True, help="Lifetime of an upload batch, in seconds.")
@click.option("--handler-name", default="s3", show_default=True, help="Name of the S3 upload handler (some servers use 's3direct').")
def sandbox(port: int, data_dir: Path | None, as_json: bool, credential_ttl: int, default_handler_first: bool,
            policy: str, batch_ttl: float, handler_name: str) -> None:
    """Run the local sandbox (SeaweedFS S3 + a Nuxeo-compatible server) until Ctrl-C."""
    from sandbox.__main__ import serve

    sys.exit(serve(port=port, data_dir=data_dir, as_json=as_json, credential_ttl_s=credential_ttl,
                   default_handler_first=default_handler_first, policy=policy, batch_ttl_s=batch_ttl,
                   handler_name=handler_name))


@main.command(epilog="""\b
Examples:
  nxup demo
  nxup demo --files 1000 --large 0 --limit off --no-tui
""")
@click.option("--files", type=click.IntRange(min=0), default=40, show_default=True, help="How many small sample files.")
@click.option("--large", type=click.IntRange(min=0), default=3, show_default=True,
              help="How many large sample files (40–200 MiB).")
@click.option("--limit", default="5MiB/s", show_default=True,
              help="Bandwidth cap, so that the default files take about 70 s: time to try every key ('off' for none).")
@click.option("--no-tui", is_flag=True, help="Plain progress lines instead of the transfer manager.")
@click.option("--json", "json_lines", is_flag=True, help="One JSON event per line.")
def demo(files: int, large: int, limit: str, no_tui: bool, json_lines: bool) -> None:
    """Start the sandbox, make sample files and upload them through the real flow."""
    from cli.demo import run_demo

    sys.exit(run_demo(small_files=files, large_files=large, limit=limit, json_lines=json_lines,
                      tui=use_tui(no_tui=no_tui, json_lines=json_lines)))


from cli.stale import stale  # noqa: E402
from cli.status import status  # noqa: E402

main.add_command(stale)
main.add_command(status)
main.add_command(login)
main.add_command(logout)

if __name__ == "__main__":
    main()
