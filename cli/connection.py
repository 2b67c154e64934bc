"""Who nxup is on a Nuxeo server: the bare URL, the user, and a password or token.

A password comes from NUXEO_TOKEN or NUXEO_PASSWORD, else from the URL in NUXEO_URL
(`https://user:password@host/nuxeo`), else the token `nxup login` kept for that server and user,
else from a prompt on a terminal; never from the command line, where other users of the machine
can read it. The user comes from --user or NUXEO_USER (or the profile), else from the URL. Only
the bare URL, without user or password, is ever shown or stored.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import click

from engine.nuxeo_batch import ServerConnection
from engine.server_url import UrlLogin, split_login

# The user a token logs in as is the token's; this only labels it.
TOKEN_USER = "(token)"


def checked_url(url: str, *, url_on_command_line: bool) -> UrlLogin:
    """`url` (--url, NUXEO_URL or a profile's) split from its login, once it looks like a server
    URL and carries no password on the command line."""
    login = split_login(url)
    if urlsplit(login.url).scheme not in ("http", "https") or not urlsplit(login.url).hostname:
        # Not echoed: a URL that does not parse may still hold a password.
        raise click.UsageError("the server URL must look like https://host/nuxeo")
    if login.password is not None and url_on_command_line:
        raise click.UsageError(
            "--url holds a password, which other users of this machine can read on the command line: "
            "set NUXEO_PASSWORD (or give the URL in NUXEO_URL)"
        )
    return login


def server_connection(url: str, user: str | None, *, url_on_command_line: bool) -> ServerConnection:
    """The connection for `url` (--url or NUXEO_URL) and `user` (--user or NUXEO_USER)."""
    login = checked_url(url, url_on_command_line=url_on_command_line)
    user = user or login.user
    if not user:
        if not os.environ.get("NUXEO_TOKEN"):
            # No silent default: a password typed for the wrong account locks real accounts.
            raise click.UsageError("no user: give --user or set NUXEO_USER (or NUXEO_TOKEN to log in with a token)")
        user = TOKEN_USER
    # The URL's password goes with the URL's user only.
    url_password = login.password if user == login.user else None
    password, token = password_or_token(user, url_password, url=login.url)
    return ServerConnection(url=login.url, user=user, password=password, token=token)


def password_or_token(user: str, url_password: str | None = None, *,
                      url: str | None = None) -> tuple[str | None, str | None]:
    """(password, token): from NUXEO_TOKEN, NUXEO_PASSWORD, the URL, the token `nxup login` kept
    for (url, user), or a prompt on a terminal."""
    token = os.environ.get("NUXEO_TOKEN")
    if token:
        return None, token
    password = os.environ.get("NUXEO_PASSWORD")
    if password is not None:
        return password, None
    if url_password is not None:
        return url_password, None
    if url is not None and user != TOKEN_USER:
        from cli.token_store import TokenStore

        stored = TokenStore().get(url, user)
        if stored is not None:
            return None, stored.token
    if sys.stdin.isatty():
        return click.prompt(f"Password for {user}", hide_input=True), None
    raise click.UsageError(
        "no password: set NUXEO_PASSWORD or NUXEO_TOKEN, or run `nxup login` once "
        "(passwords are never taken from the command line)"
    )


def refused_login_hint(connection: ServerConnection) -> str:
    """What to do when the server refuses a token `nxup login` kept (revoked or expired)."""
    if connection.token and not os.environ.get("NUXEO_TOKEN"):
        return f" (the token `nxup login` kept for {connection.user} was refused: run `nxup login` again)"
    return ""


def url_on_command_line(parameter: str = "url") -> bool:
    """Whether the current command got `parameter` from argv (rather than the environment)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source is click.core.ParameterSource.COMMANDLINE
