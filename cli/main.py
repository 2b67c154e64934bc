"""The `nxup` command.

`nxup upload` and `nxup resume` drive the engine; on a terminal they will open the transfer
manager, and with `--no-tui` (or when not on a terminal) they print plain lines (`-q`, `-v`,
`--debug`, `--log-file`: see cli/output.py), or one JSON object per event and error with
`--json`. Exit codes: 0 when every file landed, 1 when some failed (each named with its reason),
2 for usage errors.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cli.exits import EXIT_FAILED, EXIT_OK
from cli.kept_settings import kept_settings
from cli.login import login, logout
from cli.output import json_error, json_requested
from cli.resume import resume
from cli.running import open_manager, run_tui
from cli.sandbox_commands import demo, sandbox
from cli.stale import stale
from cli.startup_cleanup import cleanup_at_start
from cli.status import status
from cli.upload import upload


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
    from engine.settings import TransferSettings
    from engine.state import StateStore
    from tui.bridge import EventBridge

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(click.get_current_context().get_help())
        return EXIT_OK
    with StateStore.open() as store:
        unfinished = store.unfinished()
    if not unfinished:
        click.echo(
            "no unfinished uploads. Start one with `nxup upload PATH... --to FOLDER --url URL`, or try `nxup demo`."
        )
        return EXIT_OK
    # The most recent server; uploads to other servers wait for `nxup resume --url`.
    latest = max(unfinished, key=lambda r: r.updated_at or 0)
    bridge = EventBridge()
    settings, _ = kept_settings(
        TransferSettings(), [r for r in unfinished if r.server_url == latest.server_url], given=set()
    )
    manager = open_manager(
        server_connection(latest.server_url, latest.user, url_on_command_line=False), settings, bridge, tui=True
    )
    notices = cleanup_at_start(manager, echo=False)
    try:
        return run_tui(
            manager, bridge, lambda: manager.load_unfinished(paused=True), target=latest.target, notices=notices
        )
    finally:
        manager.store.close()


for command in (upload, resume, status, stale, login, logout, sandbox, demo):
    main.add_command(command)

if __name__ == "__main__":
    main()
