"""`nxup sandbox` and `nxup demo`: the local stand-in servers, and the whole flow run on them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.param_types import RATE
from cli.running import use_tui


@click.command(epilog="""\b
Examples:
  nxup sandbox --json                      # then NUXEO_URL=... nxup upload ... from another terminal
  nxup sandbox --policy permissive --data-dir ~/nxup-sandbox
""")
@click.option("--port", default=0, help="Port of the Nuxeo-compatible server (default: a free one).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the sandbox's data here (default: a throwaway dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the connection details as one JSON line first.")
@click.option(
    "--credential-ttl", default=3600, show_default=True, help="Lifetime of each batch's S3 credentials, in seconds."
)
@click.option(
    "--default-handler-first", is_flag=True, help="List the 'default' upload handler first, as some real servers do."
)
@click.option(
    "--policy",
    type=click.Choice(["stock", "permissive"]),
    default="stock",
    show_default=True,
    help="What batch credentials may do: only PutObject, like a stock Nuxeo server,"
         " or also read, list parts and abort.",
)
@click.option("--batch-ttl", default=72 * 3600.0, show_default=True, help="Lifetime of an upload batch, in seconds.")
@click.option(
    "--handler-name",
    default="s3",
    show_default=True,
    help="Name of the S3 upload handler (some servers use 's3direct').",
)
def sandbox(
    port: int,
    data_dir: Path | None,
    as_json: bool,
    credential_ttl: int,
    default_handler_first: bool,
    policy: str,
    batch_ttl: float,
    handler_name: str,
) -> None:
    """Run the local sandbox (SeaweedFS S3 + a Nuxeo-compatible server) until Ctrl-C."""
    from sandbox.__main__ import serve

    sys.exit(
        serve(
            port=port,
            data_dir=data_dir,
            as_json=as_json,
            credential_ttl_s=credential_ttl,
            default_handler_first=default_handler_first,
            policy=policy,
            batch_ttl_s=batch_ttl,
            handler_name=handler_name,
        )
    )


@click.command(
    epilog="""\b
Examples:
  nxup demo
  nxup demo --files 1000 --large 0 --limit off --no-tui
"""
)
@click.option("--files", type=click.IntRange(min=0), default=40, show_default=True, help="How many small sample files.")
@click.option(
    "--large",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many large sample files (40–200 MiB).",
)
@click.option(
    "--limit",
    type=RATE,
    default="5MiB/s",
    show_default=True,
    help="Bandwidth cap, so that the default files take about 70 s: time to try every key ('off' for none).",
)
@click.option("--no-tui", is_flag=True, help="Plain progress lines instead of the transfer manager.")
@click.option("--json", "json_lines", is_flag=True, help="One JSON event per line.")
def demo(files: int, large: int, limit: int | None, no_tui: bool, json_lines: bool) -> None:
    """Start the sandbox, make sample files and upload them through the real flow."""
    from cli.demo import run_demo

    sys.exit(
        run_demo(
            small_files=files,
            large_files=large,
            limit=limit,
            json_lines=json_lines,
            tui=use_tui(no_tui=no_tui, json_lines=json_lines),
        )
    )
