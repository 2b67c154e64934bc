"""Who nxup is on a Nuxeo server: the bare URL, the user, and a password or token.

A password comes from NUXEO_TOKEN or NUXEO_PASSWORD, else from the URL in NUXEO_URL
(`https://user:password@host/nuxeo`), else from a prompt on a terminal; never from the command
line, where other users of the machine can read it. The user comes from --user or NUXEO_USER,
else from the URL. Only the bare URL, without user or password, is ever shown or stored.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import click

from engine.nuxeo_batch import ServerConnection
from engine.server_url import split_login

# The user a token logs in as is the token's; this only labels it.
TOKEN_USER = "(token)"


def server_connection(url: str, user: str | None, *, url_on_command_line: bool) -> ServerConnection:
    """The connection for `url` (--url or NUXEO_URL) and `user` (--user or NUXEO_USER)."""
    login = split_login(url)
    if urlsplit(login.url).scheme not in ("http", "https") or not urlsplit(login.url).hostname:
        # Not echoed: a URL that does not parse may still hold a password.
        raise click.UsageError("the server URL must look like https://host/nuxeo")
    if login.password is not None and url_on_command_line:
        raise click.UsageError(
            "--url holds a password, which other users of this machine can read on the command line: "
            "set NUXEO_PASSWORD (or give the URL in NUXEO_URL)"
        )
    user = user or login.user
    if not user:
        if not os.environ.get("NUXEO_TOKEN"):
            # No silent default: a password typed for the wrong account locks real accounts.
            raise click.UsageError("no user: give --user or set NUXEO_USER (or NUXEO_TOKEN to log in with a token)")
        user = TOKEN_USER
    # The URL's password goes with the URL's user only.
    url_password = login.password if user == login.user else None
    password, token = password_or_token(user, url_password)
    return ServerConnection(url=login.url, user=user, password=password, token=token)


def password_or_token(user: str, url_password: str | None = None) -> tuple[str | None, str | None]:
    """(password, token): from NUXEO_TOKEN, NUXEO_PASSWORD, the URL, or a prompt on a terminal."""
    token = os.environ.get("NUXEO_TOKEN")
    if token:
        return None, token
    password = os.environ.get("NUXEO_PASSWORD")
    if password is not None:
        return password, None
    if url_password is not None:
        return url_password, None
    if sys.stdin.isatty():
        return click.prompt(f"Password for {user}", hide_input=True), None
    raise click.UsageError(
        "no password: set NUXEO_PASSWORD or NUXEO_TOKEN (passwords are never taken from the command line)"
    )


def url_on_command_line(parameter: str = "url") -> bool:
    """Whether the current command got `parameter` from argv (rather than the environment)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source is click.core.ParameterSource.COMMANDLINE
