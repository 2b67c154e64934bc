"""The transfer settings an upload keeps: `nxup resume` and `nxup` alone go on with the ones the
upload was added with (workers, part size, single-PUT limit, checksum, --verify, the cap), except
those given again on the command line or in the environment."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from engine.records import UploadRecord
    from engine.settings import TransferSettings

# The command's option name -> the setting it sets.
OPTION_SETTINGS = {
    "workers": "workers",
    "part_size": "part_size",
    "single_limit": "single_upload_limit",
    "checksum": "checksum",
    "verify": "verify_etag",
    "limit": "bandwidth_limit",
}
_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def given_settings(ctx: click.Context | None) -> set[str]:
    """The settings the current command was given (not left to their defaults)."""
    if ctx is None:
        return set()
    return {setting for option, setting in OPTION_SETTINGS.items() if ctx.get_parameter_source(option) in _GIVEN}


def kept_settings(command: TransferSettings, records: list[UploadRecord], *,
                  given: set[str]) -> tuple[TransferSettings, list[str]]:
    """The settings to resume `records` with, and what to tell the user about them: those of the
    newest upload, except the ones in `given`, which are the command's."""
    kept_texts = [r.transfer_settings for r in records if r.transfer_settings]
    if not kept_texts:
        return command, []
    newest = max((r for r in records if r.transfer_settings), key=lambda r: r.id or 0)
    kept = command.with_journal(newest.transfer_settings)
    settings = replace(kept, **{name: getattr(command, name) for name in given})
    notices = []
    changed = [name for name in OPTION_SETTINGS.values() if getattr(settings, name) != getattr(command, name)]
    if changed:
        described = ", ".join(setting_text(settings, name) for name in changed)
        notices.append(f"resuming with the settings the uploads were added with: {described}")
    if len(set(kept_texts)) > 1:
        notices.append("these uploads were added with different settings: all go on with the newest one's "
                       "(give --workers, --limit... to choose)")
    return settings, notices


def setting_text(settings: TransferSettings, name: str) -> str:
    """One setting as the option that sets it reads: `--workers 3`, `--limit 2 MiB/s`."""
    from engine.text import size_text, speed_text

    value = getattr(settings, name)
    option = "--" + next(option for option, setting in OPTION_SETTINGS.items() if setting == name).replace("_", "-")
    if name == "verify_etag":
        return option if value else "--no-verify"
    if name == "bandwidth_limit":
        return f"{option} {speed_text(value).replace(' ', '') if value else 'off'}"
    if name in ("part_size", "single_upload_limit"):
        return f"{option} {size_text(value).replace(' ', '')}"
    if name == "checksum":
        return f"{option} {value.value.lower()}"
    return f"{option} {value}"


__all__ = ["OPTION_SETTINGS", "given_settings", "kept_settings", "setting_text"]
