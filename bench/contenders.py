"""The contenders: how each one is launched on a run's files.

Every contender is a command of its own, started by `bench.measure`. Keys and passwords go in
its environment, never in its arguments; the tools' own configuration files are kept out of the
way (the AWS CLI and rclone read only what the run gives them).

Concurrency is 8 requests in flight wherever a tool lets it be set and its default is lower
(nxup's default, boto3's pool, rclone's `--transfers`/`--s3-upload-concurrency`); boto3's
`upload_file` and the AWS CLI keep their defaults (10 threads, 8 MiB parts).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NXUP = str(BIN / "nxup")
AWS = str(BIN / "aws")
TARGET = "/default-domain/workspaces"
# Variables of the tools' own that must not leak in from the caller's environment.
_FOREIGN = ("AWS_", "NUXEO_", "NXUP_", "RCLONE_")


@dataclass(frozen=True)
class Destination:
    """Where one run sends its files, and with what."""

    path: Path  # the staged file or folder
    files: int
    nuxeo_url: str
    user: str
    password: str
    s3_endpoint: str
    bucket: str
    region: str
    access_key: str
    secret_key: str
    prefix: str  # key prefix for the tools that write to S3 themselves
    state_dir: Path
    scratch: Path  # the run's own directory (output, empty config files)

    def key_of(self, relative: str) -> str:
        return f"{self.prefix}/{relative}"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Contender:
    name: str
    slug: str
    via_nuxeo: bool  # goes through the Nuxeo server (its documents are checked)
    launch: Callable[[Destination], dict[str, Any]]
    missing: Callable[[], str | None] = field(
        default=lambda: None
    )  # why it cannot run here


# -- nxup --------------------------------------------------------------------------------------
def _nxup_env(to: Destination) -> dict[str, str]:
    return clean_env(
        NUXEO_URL=to.nuxeo_url,
        NUXEO_USER=to.user,
        NUXEO_PASSWORD=to.password,
        NXUP_STATE_DIR=str(to.state_dir),
    )


def nxup_headless(workers: int = 8) -> Contender:
    extra = [] if workers == 8 else ["--workers", str(workers)]

    def launch(to: Destination) -> dict[str, Any]:
        return {
            "argv": [
                NXUP,
                "upload",
                str(to.path),
                "--to",
                TARGET,
                "--no-tui",
                "--json",
                *extra,
            ],
            "env": _nxup_env(to),
            "stdout": str(to.scratch / "events.jsonl"),
        }

    name = "nxup" if workers == 8 else f"nxup w{workers}"
    return Contender(name, name.replace(" ", "-"), True, launch)


def _nxup_tui(to: Destination) -> dict[str, Any]:
    return {
        "argv": [NXUP, "upload", str(to.path), "--to", TARGET],
        "env": {**_nxup_env(to), "TERM": "xterm-256color"},
        "tty": True,
        "state_db": str(to.state_dir / "state.db"),
        "expect_files": to.files,
    }


# -- S3 tools ----------------------------------------------------------------------------------
def _aws_env(to: Destination) -> dict[str, str]:
    return clean_env(
        AWS_ACCESS_KEY_ID=to.access_key,
        AWS_SECRET_ACCESS_KEY=to.secret_key,
        AWS_DEFAULT_REGION=to.region,
        AWS_CONFIG_FILE=str(to.scratch / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(to.scratch / "aws-credentials"),
    )


def _boto3(mode: str) -> Callable[[Destination], dict[str, Any]]:
    def launch(to: Destination) -> dict[str, Any]:
        return {
            "argv": [
                sys.executable,
                "-m",
                "bench.boto3_upload",
                mode,
                str(to.path),
                to.bucket,
                to.prefix,
            ],
            "env": {
                **_aws_env(to),
                "AWS_ENDPOINT_URL": to.s3_endpoint,
                "PYTHONPATH": str(ROOT),
            },
        }

    return launch


def _aws_cli(to: Destination) -> dict[str, Any]:
    (to.scratch / "aws-config").write_text(
        "[default]\ns3 =\n  addressing_style = path\n"
    )
    if to.path.is_dir():
        source, destination, recursive = (
            str(to.path),
            f"s3://{to.bucket}/{to.prefix}/",
            ["--recursive"],
        )
    else:
        source, destination, recursive = (
            str(to.path),
            f"s3://{to.bucket}/{to.key_of(to.path.name)}",
            [],
        )
    return {
        "argv": [
            AWS,
            "s3",
            "cp",
            source,
            destination,
            *recursive,
            "--endpoint-url",
            to.s3_endpoint,
            "--only-show-errors",
        ],
        "env": _aws_env(to),
    }


def _aws_missing() -> str | None:
    return None if Path(AWS).exists() else "not installed; pip install -e '.[bench]'"


def _rclone(to: Destination) -> dict[str, Any]:
    env = clean_env(
        RCLONE_CONFIG=str(
            to.scratch / "rclone.conf"
        ),  # none: the remote is all in the environment
        RCLONE_CONFIG_BENCH_TYPE="s3",
        RCLONE_CONFIG_BENCH_PROVIDER="SeaweedFS",
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=to.access_key,
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=to.secret_key,
        RCLONE_CONFIG_BENCH_ENDPOINT=to.s3_endpoint,
        RCLONE_CONFIG_BENCH_REGION=to.region,
        RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET="true",
    )
    if to.path.is_dir():
        command, destination = "copy", f"bench:{to.bucket}/{to.prefix}"
    else:
        command, destination = "copyto", f"bench:{to.bucket}/{to.key_of(to.path.name)}"
    rclone = shutil.which("rclone") or "rclone"
    return {
        "argv": [
            rclone,
            command,
            str(to.path),
            destination,
            "--transfers",
            "8",
            "--s3-upload-concurrency",
            "8",
        ],
        "env": env,
    }


def _rclone_missing() -> str | None:
    return None if shutil.which("rclone") else "not installed; apt-get install rclone"


def contenders(workers: list[int]) -> list[Contender]:
    """Every contender, nxup first (the one the others are compared with)."""
    return [
        nxup_headless(),
        Contender("nxup TUI", "nxup-tui", True, _nxup_tui),
        Contender("boto3 threads", "boto3-threads", False, _boto3("threads")),
        Contender(
            "boto3 upload_file", "boto3-upload-file", False, _boto3("upload_file")
        ),
        Contender("aws s3 cp", "aws-cli", False, _aws_cli, _aws_missing),
        Contender("rclone", "rclone", False, _rclone, _rclone_missing),
        *(nxup_headless(n) for n in workers if n != 8),
    ]
