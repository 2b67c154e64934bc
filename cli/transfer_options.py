"""The options `upload` and `resume` share: where, as whom, and how the transfer runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import click

from cli.output import output_options, remember_json
from cli.param_types import RATE, SIZE, SizeType
from cli.profile_option import profile_option
from cli.startup_cleanup import stale_after_option
from engine.planning import MAX_PART_SIZE, MIN_PART_SIZE

# What a profile fills in for `upload` and `resume` (profile key -> option).
_PROFILE_FILLS = {"url": "url", "user": "user", "target": "target", "stale_after": "stale_after"}


def fail_usage(message: str) -> NoReturn:
    from engine.text import printable

    raise click.UsageError(printable(message))


def transfer_settings(
    workers: int, part_size: int, single_limit: int, checksum: str, verify: bool, limit: int | None
) -> Any:
    """The engine's settings from the options (sizes and the cap already parsed by their types)."""
    from engine.manager import TransferSettings
    from engine.s3 import ChecksumAlgorithm

    algorithm = ChecksumAlgorithm(checksum if checksum == "none" else checksum.upper())
    if not algorithm.available:
        fail_usage(
            f"--checksum {checksum} needs botocore's CRT extension (pip install 'botocore[crt]'); "
            "crc32, sha1 and sha256 need nothing more"
        )
    return TransferSettings(
        workers=workers,
        part_size=part_size,
        single_upload_limit=min(single_limit, 5 * 1024**3),
        checksum=algorithm,
        verify_etag=verify,
        bandwidth_limit=limit,
    )


def transfer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        # The connection: where, as whom (the password or token never on the command line).
        profile_option(_PROFILE_FILLS),
        click.option("--url", envvar="NUXEO_URL", show_envvar=True, help="Nuxeo URL, e.g. https://host/nuxeo."),
        click.option(
            "--user",
            envvar="NUXEO_USER",
            show_envvar=True,
            help="Nuxeo user. The password comes from NUXEO_PASSWORD, the token `nxup login` kept, or a "
            "prompt, never the command line; NUXEO_TOKEN logs in with a token instead.",
        ),
        # How the transfer runs; kept with each upload for `nxup resume`.
        click.option("--no-tui", is_flag=True, help="Plain progress lines instead of the transfer manager."),
        click.option(
            "--json",
            "json_lines",
            is_flag=True,
            callback=remember_json,
            help="One JSON object per event and per error (implies --no-tui).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Parallel uploads (parts and files).",
        ),
        click.option(
            "--part-size",
            type=SizeType(minimum=MIN_PART_SIZE, maximum=MAX_PART_SIZE, bounds="between 5 MiB and 5 GiB"),
            default="20MiB",
            show_default=True,
            help="Multipart part size (grown for huge files).",
        ),
        click.option(
            "--single-limit", type=SIZE, default="20MiB", show_default=True, help="Largest file sent with one PUT."
        ),
        click.option(
            "--checksum",
            type=click.Choice(["crc32", "crc32c", "sha1", "sha256", "none"]),
            default="crc32",
            show_default=True,
            help="Per-part checksum S3 verifies (none for servers that reject it).",
        ),
        click.option(
            "--verify/--no-verify", default=False, help="Check the final ETag against the file (MD5 of part MD5s)."
        ),
        click.option(
            "--limit",
            type=RATE,
            help="Bandwidth cap, e.g. 20M or 20MiB/s (K, M, G are binary, as rclone reads them; default: none).",
        ),
        stale_after_option,
    ]
    for option in reversed(options):
        func = option(func)
    return output_options(func)
