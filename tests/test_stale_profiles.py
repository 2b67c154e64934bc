"""`nxup stale` with a profile's admin settings (the bucket, the endpoint and an AWS profile's
name, whose keys stay in the AWS files), and keys S3 does not take named as the admin keys."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import run_nxup

from sandbox import Sandbox, SandboxInfo


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    """No admin settings in the environment, and AWS files of the test's own."""
    info: SandboxInfo = sandbox.info
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        f"[nxup-admin]\naws_access_key_id = {info.s3_access_key_id}\n"
        f"aws_secret_access_key = {info.s3_secret_access_key}\n"
        "[wrong]\naws_access_key_id = nobody\naws_secret_access_key = not-the-secret\n")
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    (config / "config").write_text(
        f"[admin]\ns3_bucket = {info.bucket}\ns3_endpoint = {info.s3_endpoint}\ns3_profile = nxup-admin\n"
        f"[wrong-keys]\ns3_bucket = {info.bucket}\ns3_endpoint = {info.s3_endpoint}\ns3_profile = wrong\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NXUP_", "NUXEO_"))}
    return base | {
        "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
        "AWS_CONFIG_FILE": str(aws / "no-config"),
        "NXUP_CONFIG_DIR": str(config),
        "NXUP_STATE_DIR": str(tmp_path / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


def test_a_profile_s_bucket_and_aws_profile_give_admin_access(env: dict[str, str]) -> None:
    listed = run_nxup(["stale", "--profile", "admin", "--prefix", "no-such-prefix/"], env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "0 multipart upload(s)" in listed.stdout
    # --s3-profile on the command line wins over the profile's.
    refused = run_nxup(["stale", "--profile", "admin", "--s3-profile", "wrong", "--prefix", "x/"], env)
    assert refused.returncode == 1


def test_keys_s3_does_not_take_are_the_admin_keys(env: dict[str, str]) -> None:
    result = run_nxup(["stale", "--profile", "wrong-keys"], env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert re.match(r"nxup: S3 rejected the admin keys while listing multipart uploads \(\w+\)$", line), line
    assert "upload credentials" not in line and "not-the-secret" not in result.stdout + result.stderr


def test_the_readme_s_stale_example_sets_what_the_options_read() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Stale multipart uploads"):]
    example = section[section.index("```sh"):section.index("```", section.index("```sh") + 5)]
    exported = re.findall(r"\b(NXUP_\w+)=", example)
    assert exported, example
    from click.testing import CliRunner

    from cli.main import main

    shown = " ".join(CliRunner().invoke(main, ["stale", "-h"]).output.split())
    for variable in exported:
        assert f"env var: {variable}" in shown, variable
