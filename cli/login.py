"""`nxup login` and `nxup logout`: a Nuxeo token instead of a password.

`nxup login` asks for the password once (or reads NUXEO_PASSWORD), gets a token for this device
from the server, keeps the token (`token_store`) and writes the server URL and user to the
profile; the password is never kept. Later commands log in with the token. `nxup logout`
revokes the token on the server when it can be reached, and forgets it here in every case.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid

import click

from cli.connection import checked_url, url_on_command_line
from cli.exits import EXIT_FAILED, EXIT_OK
from cli.profile_option import chosen_profile, profile_option
from engine.text import printable

_FILLS = {"url": "url", "user": "user"}

_LOGIN_EXAMPLES = """\b
Examples:
  nxup login --url https://nuxeo.example.com/nuxeo --user jdoe     # the profile `default`
  nxup login --profile work --url https://nuxeo.work.example/nuxeo --user jdoe
  nxup upload ~/scans --to /default-domain/workspaces/Projects --profile work
  NUXEO_PASSWORD=... nxup login --profile ci --url https://nuxeo.example.com/nuxeo --user robot
"""

_LOGOUT_EXAMPLES = """\b
Examples:
  nxup logout                   # the profile `default`
  nxup logout --profile work
"""


def _server_and_user(url: str | None, user: str | None) -> tuple[str, str]:
    if not url:
        raise click.UsageError("no server: give --url or set NUXEO_URL (or use a profile that has a url)")
    login = checked_url(url, url_on_command_line=url_on_command_line())
    user = user or login.user
    if not user:
        raise click.UsageError("no user: give --user or set NUXEO_USER (or use a profile that has a user)")
    return login.url, user


def _password(user: str, url: str) -> str:
    """The password, from NUXEO_PASSWORD, the URL in NUXEO_URL, or asked once on a terminal."""
    from engine.server_url import split_login

    password = os.environ.get("NUXEO_PASSWORD")
    if password is not None:
        return password
    login = split_login(url)
    if login.password is not None and login.user in (None, user):
        return login.password
    if sys.stdin.isatty():
        return str(click.prompt(f"Password for {user}", hide_input=True))
    raise click.UsageError("no password: answer the prompt on a terminal or set NUXEO_PASSWORD "
                           "(passwords are never taken from the command line)")


@click.command(epilog=_LOGIN_EXAMPLES)
@profile_option(_FILLS, may_be_new=True)
@click.option("--url", envvar="NUXEO_URL", show_envvar=True, help="Nuxeo URL, e.g. https://host/nuxeo.")
@click.option("--user", envvar="NUXEO_USER", show_envvar=True, help="Nuxeo user.")
def login(url: str | None, user: str | None) -> None:
    """Log in once: get a Nuxeo token for this device and keep it (the system keyring, else a
    file only you can read), and write the server and user to the profile. The password is asked
    once (or read from NUXEO_PASSWORD) and never kept."""
    from cli.profiles import ProfileError, Profiles
    from cli.token_store import StoredToken, TokenStore
    from engine.errors import NxupError
    from engine.nuxeo_batch import ServerConnection
    from engine.nuxeo_token import acquire_token, revoke_token

    server, user = _server_and_user(url, user)
    profile = chosen_profile()
    connection = ServerConnection(url=server, user=user, password=_password(user, url or ""))
    device_id = str(uuid.uuid4())
    try:
        token = acquire_token(connection, device_id=device_id, device=socket.gethostname())
    except NxupError as exc:
        click.echo(f"nxup: {printable(server)}: {printable(str(exc))}", err=True)
        sys.exit(EXIT_FAILED)
    store = TokenStore()
    previous = store.get(server, user)
    where = store.put(server, user, StoredToken(token, device_id))
    try:
        profiles = Profiles.load()
        profiles.set(profile.name, url=server, user=user)
        profiles.save()
    except (ProfileError, OSError) as exc:
        click.echo(f"nxup: the profile {printable(profile.name)} was not written: {printable(str(exc))}", err=True)
        sys.exit(EXIT_FAILED)
    if previous is not None and previous.device_id and previous.device_id != device_id:
        try:  # the token it replaces is of no more use to anyone
            revoke_token(connection, device_id=previous.device_id)
        except NxupError:
            pass
    click.echo(f"logged in to {printable(server)} as {printable(user)}; the token is kept in {printable(where)}, "
               f"the profile {printable(profile.name)} in {printable(str(profiles.path))}")
    sys.exit(EXIT_OK)


@click.command(epilog=_LOGOUT_EXAMPLES)
@profile_option(_FILLS)
@click.option("--url", envvar="NUXEO_URL", show_envvar=True, help="Nuxeo URL, e.g. https://host/nuxeo.")
@click.option("--user", envvar="NUXEO_USER", show_envvar=True, help="Nuxeo user.")
def logout(url: str | None, user: str | None) -> None:
    """Revoke the token `nxup login` kept (on the server, when it can be reached) and forget it
    here in any case. The profile stays. Exit 1 when the server could not revoke it."""
    from cli.token_store import TokenStore
    from engine.errors import AuthenticationError, NxupError
    from engine.nuxeo_batch import ServerConnection
    from engine.nuxeo_token import revoke_token

    server, user = _server_and_user(url, user)
    store = TokenStore()
    stored = store.get(server, user)
    if stored is None:
        click.echo(f"no token kept for {printable(user)} on {printable(server)}: nothing to forget")
        sys.exit(EXIT_OK)
    problem = None
    try:
        revoke_token(ServerConnection(url=server, user=user, token=stored.token), device_id=stored.device_id)
    except AuthenticationError:
        pass  # the server no longer takes it: revoked already, or expired
    except NxupError as exc:
        problem = str(exc)
    store.forget(server, user)
    if problem is not None:
        click.echo(f"nxup: {printable(server)}: the token could not be revoked on the server ({printable(problem)}); "
                   "it is forgotten here, and stays valid there until revoked (Nuxeo's user menu lists "
                   "authorized applications)", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"logged out of {printable(server)} as {printable(user)}: the token is revoked and forgotten")
    sys.exit(EXIT_OK)


__all__ = ["login", "logout"]
