"""The start-up cleanup that `nxup upload`, `nxup resume` and `nxup` run before they start:
nxup's own multipart uploads left unresumed longer than `--stale-after` are aborted."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import click

from cli.param_types import AGE
from engine.text import printable

STALE_AFTER_ENV = "NXUP_STALE_AFTER"
_STALE_AFTER_META = "nxup.stale_after"


def parse_age_option(text: str | None, name: str) -> timedelta | None:
    from engine.stale import parse_age

    if not text:
        return None
    try:
        return parse_age(text)
    except ValueError as exc:
        raise click.UsageError(f"{name}: {exc}") from exc


def _remember_stale_after(ctx: click.Context, _param: click.Parameter, value: timedelta | None) -> None:
    ctx.meta[_STALE_AFTER_META] = value or None  # 0 = never


stale_after_option = click.option(
    "--stale-after",
    envvar=STALE_AFTER_ENV,
    show_envvar=True,
    default="7d",  # engine.stale.DEFAULT_STALE_AFTER, as it is typed
    show_default=True,
    type=AGE,
    expose_value=False,
    callback=_remember_stale_after,
    is_eager=True,
    metavar="AGE",
    help="Abort nxup's own multipart uploads left unresumed this long at start-up; 0 = never.",
)


def _stale_after() -> timedelta | None:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and _STALE_AFTER_META in ctx.meta:
        return ctx.meta[_STALE_AFTER_META]
    if os.environ.get(STALE_AFTER_ENV):
        return parse_age_option(os.environ[STALE_AFTER_ENV], STALE_AFTER_ENV)
    from engine.stale import DEFAULT_STALE_AFTER

    return DEFAULT_STALE_AFTER


def _admin_from_env() -> Any | None:
    """Admin keys for uploads whose batch expired, only when the admin asked for them."""
    from engine.errors import NxupError
    from engine.stale import S3AdminConfig

    config = S3AdminConfig.from_env()
    if config is None:
        return None
    try:
        return config.client()
    except NxupError:
        return None


def cleanup_at_start(manager: Any, *, echo: bool = True) -> list[str]:
    """Abort nxup's obsolete multipart uploads before the manager starts; returns one notice
    per upload (also written to stderr with `echo`, since stdout may carry JSON events).
    A failure here never stops the upload itself."""
    from engine.errors import NxupError
    from engine.stale import abort_obsolete

    try:
        entries = abort_obsolete(manager.store, max_age=_stale_after(), batches=manager.nuxeo, admin=_admin_from_env())
        notices = [entry.notice() for entry in entries]
    except NxupError as exc:
        notices = [f"start-up cleanup skipped: {exc}"]
    notices = [printable(notice) for notice in notices]
    if echo:
        for notice in notices:
            click.echo(f"nxup: {notice}", err=True)
    return notices
