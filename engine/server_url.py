"""A Nuxeo URL as typed (it may carry `user:password@`) and as it may be shown or stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class UrlLogin:
    url: str  # without user or password, and without a trailing slash
    user: str | None
    password: str | None = field(repr=False)


def split_login(url: str) -> UrlLogin:
    """The URL without its user and password, and those two (percent-decoded)."""
    parts = urlsplit(url.strip())
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return UrlLogin(url=url.strip().rstrip("/"), user=None, password=None)
    user, colon, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host)).rstrip("/")
    return UrlLogin(url=bare, user=unquote(user) or None, password=unquote(password) if colon else None)


def bare_url(url: str) -> str:
    """The URL as it may be shown or stored."""
    return split_login(url).url
