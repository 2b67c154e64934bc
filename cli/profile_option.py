"""`--profile NAME` (or NXUP_PROFILE): a command's settings from a named profile, with the
precedence `aws` and `rclone` users expect: the command line, then the environment, then the
profile, then nxup's default. Without either, the profile `default` applies when it exists.

The profile fills the command's options through click's `default_map`, which click consults
after the command line and the option's environment variable. The admin's S3 settings go to
the environment variables the start-up cleanup and the stale screen read, where unset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from click.core import ParameterSource

from cli.profiles import DEFAULT_PROFILE, PROFILE_ENV, ProfileError, Profiles

PROFILE_META = "nxup.profile"
# The profile's S3 keys and the environment variables nxup reads them from.
_ADMIN_ENVIRONMENT = {
    "s3_bucket": "NXUP_S3_BUCKET",
    "s3_endpoint": "NXUP_S3_ENDPOINT",
    "s3_region": "NXUP_S3_REGION",
    "s3_profile": "NXUP_S3_PROFILE",
}


@dataclass(frozen=True, slots=True)
class ChosenProfile:
    name: str
    named: bool  # given with --profile or NXUP_PROFILE, not the implicit `default`
    values: dict[str, str] = field(default_factory=dict)  # empty for a profile not made yet
    exists: bool = False


def chosen_profile(ctx: click.Context | None = None) -> ChosenProfile:
    ctx = ctx or click.get_current_context()
    return ctx.meta.get(PROFILE_META) or ChosenProfile(DEFAULT_PROFILE, named=False)


def profile_option(fills: dict[str, str], *, may_be_new: bool = False) -> Callable[[Any], Any]:
    """The `--profile` option of a command whose options named by `fills` (profile key ->
    option name) take the profile's values as their defaults. `may_be_new`: the profile may
    not exist yet (`nxup login` makes it)."""

    def choose(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        named = ctx.get_parameter_source(param.name or "profile") in (ParameterSource.COMMANDLINE,
                                                                      ParameterSource.ENVIRONMENT)
        name = value if named and value else DEFAULT_PROFILE
        try:
            profiles = Profiles.load()
        except ProfileError as exc:
            raise click.UsageError(str(exc)) from exc
        values = profiles.get(name)
        if values is None and named and not may_be_new:
            raise click.BadParameter(
                f"no profile {name} in {profiles.path} (`nxup login --profile {name} --url URL --user USER` makes one)",
                ctx=ctx, param=param)
        chosen = ChosenProfile(name, named=named, values=values or {}, exists=values is not None)
        ctx.meta[PROFILE_META] = chosen
        defaults = {option: chosen.values[key] for key, option in fills.items() if key in chosen.values}
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        for key, variable in _ADMIN_ENVIRONMENT.items():
            if key in chosen.values and not os.environ.get(variable):
                os.environ[variable] = chosen.values[key]

    return click.option(
        "--profile", envvar=PROFILE_ENV, show_envvar=True, metavar="NAME", is_eager=True, expose_value=False,
        callback=choose, shell_complete=_profile_names,
        help=f"Settings from this profile of nxup's config file (default: the profile {DEFAULT_PROFILE}, "
             "if there is one); options and environment variables win over it.",
    )


def _profile_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        return [name for name in Profiles.load().names() if name.startswith(incomplete)]
    except ProfileError:
        return []


__all__ = ["PROFILE_META", "ChosenProfile", "chosen_profile", "profile_option"]
