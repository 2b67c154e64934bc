"""`nxup resume`."""

from __future__ import annotations

import sys

import click

from cli.exits import EXIT_OK
from cli.kept_settings import given_settings, kept_settings
from cli.profile_option import chosen_profile
from cli.running import run_transfers, use_tui
from cli.transfer_options import transfer_options, transfer_settings

_RESUME_EXAMPLES = """\b
Examples:
  nxup resume                              # every server's unfinished uploads, with their settings
  nxup resume --no-tui --limit off         # headless, lifting the cap they were added with
  nxup resume --profile work               # only the profile's server
"""



@click.command(epilog=_RESUME_EXAMPLES)
@transfer_options
def resume(url: str | None, user: str | None, no_tui: bool, json_lines: bool, workers: int,
           part_size: int, single_limit: int, checksum: str, verify: bool, limit: int | None) -> None:
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
    command_settings = transfer_settings(workers, part_size, single_limit, checksum, verify, limit)
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
        code = max(code, run_transfers(
            connection, settings, tui=tui, json_lines=json_lines,
            target=unfinished[0].target, start=lambda manager: manager.load_unfinished(),
        ))
    sys.exit(code)
