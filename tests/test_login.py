"""`nxup login` and `nxup logout` against the sandbox: the token alone uploads end to end, it is
kept in a 0600 file (no keyring here) and the password nowhere; logout revokes it on the server
and forgets it here, even when the server cannot be reached."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_document_holds, assert_object_is, nxup_env, run_nxup, write
from nuxeo.client import Nuxeo

from cli.token_store import StoredToken, TokenStore
from engine.lifecycle import UploadStatus
from engine.state import StateStore
from sandbox import Sandbox


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    """A user with no login in the environment: the URL, user and password must come from
    the options, the profile or the kept token."""
    base = nxup_env(sandbox.info, tmp_path / "state")
    return {k: v for k, v in base.items() if k not in ("NUXEO_URL", "NUXEO_USER", "NUXEO_PASSWORD")}


def config_dir(env: dict[str, str]) -> Path:
    return Path(env["NXUP_CONFIG_DIR"])


def log_in(sandbox: Sandbox, env: dict[str, str], *, profile: str = "work") -> Any:
    """`nxup login` with the password in NUXEO_PASSWORD (no terminal to prompt on)."""
    info = sandbox.info
    result = run_nxup(["login", "--profile", profile, "--url", info.nuxeo_url, "--user", info.user],
                      env | {"NUXEO_PASSWORD": info.password})
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def kept_token(sandbox: Sandbox, env: dict[str, str]) -> StoredToken:
    stored = TokenStore(config_dir(env)).get(sandbox.info.nuxeo_url.rstrip("/"), sandbox.info.user)
    assert stored is not None
    return stored


def every_byte_under(*paths: Path) -> bytes:
    return b"".join(p.read_bytes() for path in paths for p in sorted(path.rglob("*")) if p.is_file())


def test_the_token_login_kept_uploads_alone_and_the_password_is_kept_nowhere(
        sandbox: Sandbox, env: dict[str, str], nuxeo: Nuxeo, s3_admin: Any, target_folder: str,
        tmp_path: Path) -> None:
    info = sandbox.info
    shown = log_in(sandbox, env)
    assert "logged in to" in shown.stdout and "readable by you only" in shown.stdout
    directory = config_dir(env)
    assert mode(directory) == 0o700
    assert {p.name for p in directory.iterdir()} == {"config", "tokens"}
    assert all(mode(p) == 0o600 for p in directory.iterdir())
    stored = kept_token(sandbox, env)
    assert sandbox.nuxeo.store.tokens.user_of(stored.token) == info.user
    assert "[work]" in (directory / "config").read_text() and stored.token not in (directory / "config").read_text()

    path = tmp_path / "with-token.bin"
    content = write(path, 300_000)
    uploaded = run_nxup(["upload", str(path), "--profile", "work", "--to", target_folder, "--no-tui", "--json"], env)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    events = [json.loads(line) for line in uploaded.stdout.splitlines()]
    (completed,) = [e for e in events if e["event"] == "completed"]
    assert_document_holds(nuxeo, completed["document_uid"], name=path.name, content=content)
    with StateStore.open(tmp_path / "state") as store:
        (record,) = store.recent(limit=5)
        assert record.status is UploadStatus.DONE and record.user == info.user
    assert_object_is(s3_admin, bucket=record.bucket, key=record.object_key, content=content)

    kept = every_byte_under(directory, tmp_path / "state")
    assert info.password.encode() not in kept
    assert stored.token.encode() not in every_byte_under(tmp_path / "state")
    assert info.password not in shown.stdout + shown.stderr and stored.token not in shown.stdout + shown.stderr


def test_logout_revokes_the_token_on_the_server_and_forgets_it(
        sandbox: Sandbox, env: dict[str, str], target_folder: str, tmp_path: Path) -> None:
    log_in(sandbox, env)
    stored = kept_token(sandbox, env)
    result = run_nxup(["logout", "--profile", "work"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "revoked and forgotten" in result.stdout
    assert sandbox.nuxeo.store.tokens.user_of(stored.token) is None
    assert TokenStore(config_dir(env)).get(sandbox.info.nuxeo_url.rstrip("/"), sandbox.info.user) is None
    assert stored.token not in (config_dir(env) / "tokens").read_text()
    # The profile stays; without a token nor a password there is nothing to log in with.
    path = tmp_path / "after-logout.txt"
    write(path, 10)
    refused = run_nxup(["upload", str(path), "--profile", "work", "--to", target_folder, "--no-tui"], env)
    assert refused.returncode == 2 and "no password" in refused.stderr and "nxup login" in refused.stderr
    again = run_nxup(["logout", "--profile", "work"], env)
    assert again.returncode == 0 and "nothing to forget" in again.stdout


def test_logout_forgets_the_token_when_the_server_cannot_be_reached(env: dict[str, str]) -> None:
    gone = "http://127.0.0.1:9/nuxeo"  # the discard port: nothing listens
    TokenStore(config_dir(env)).put(gone, "jdoe", StoredToken("a-token-of-a-server-gone", "device-1"))
    result = run_nxup(["logout", "--url", gone, "--user", "jdoe"], env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"nxup: {gone}: the token could not be revoked") and "forgotten here" in line
    assert TokenStore(config_dir(env)).get(gone, "jdoe") is None
    assert "a-token-of-a-server-gone" not in result.stdout + result.stderr


def test_a_wrong_password_keeps_nothing(sandbox: Sandbox, env: dict[str, str]) -> None:
    info = sandbox.info
    result = run_nxup(["login", "--url", info.nuxeo_url, "--user", info.user], env | {"NUXEO_PASSWORD": "wrong!"})
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "rejected the user name or password" in line
    assert not config_dir(env).exists() or not any(config_dir(env).iterdir())
    assert "wrong!" not in result.stdout + result.stderr


def test_login_needs_a_password_it_can_read(sandbox: Sandbox, env: dict[str, str]) -> None:
    result = run_nxup(["login", "--url", sandbox.info.nuxeo_url, "--user", sandbox.info.user], env)
    assert result.returncode == 2 and "no password" in result.stderr


def test_a_token_revoked_elsewhere_says_to_log_in_again(
        sandbox: Sandbox, env: dict[str, str], target_folder: str, tmp_path: Path) -> None:
    log_in(sandbox, env, profile="default")
    stored = kept_token(sandbox, env)
    assert sandbox.nuxeo.store.tokens.revoke(sandbox.info.user, "nxup", stored.device_id)
    path = tmp_path / "revoked.txt"
    write(path, 10)
    # The profile `default` applies without --profile.
    result = run_nxup(["upload", str(path), "--to", target_folder, "--no-tui"], env)
    assert result.returncode == 1
    assert "run `nxup login` again" in result.stderr, result.stderr


def test_login_again_replaces_and_revokes_the_previous_token(sandbox: Sandbox, env: dict[str, str]) -> None:
    log_in(sandbox, env)
    first = kept_token(sandbox, env)
    log_in(sandbox, env)
    second = kept_token(sandbox, env)
    assert second.token != first.token
    assert sandbox.nuxeo.store.tokens.user_of(first.token) is None
    assert sandbox.nuxeo.store.tokens.user_of(second.token) == sandbox.info.user
    # Tidy: the sandbox is shared by the session.
    assert run_nxup(["logout", "--profile", "work"], env).returncode == 0


def test_the_profile_s_target_is_where_files_go(
        sandbox: Sandbox, env: dict[str, str], nuxeo: Nuxeo, target_folder: str, tmp_path: Path) -> None:
    info = sandbox.info
    config = config_dir(env)
    config.mkdir(mode=0o700)
    (config / "config").write_text(f"[shared]\nurl = {info.nuxeo_url}\nuser = {info.user}\ntarget = {target_folder}\n")
    path = tmp_path / "to-the-profile-s-target.txt"
    write(path, 50)
    result = run_nxup(["upload", str(path), "--no-tui"], env | {"NXUP_PROFILE": "shared",
                                                                 "NUXEO_PASSWORD": info.password})
    assert result.returncode == 0, result.stdout + result.stderr
    assert [doc.title for doc in nuxeo.documents.get_children(path=target_folder)] == [path.name]
    unknown = run_nxup(["upload", str(path), "--profile", "nope", "--no-tui"], env)
    assert unknown.returncode == 2 and "no profile nope" in unknown.stderr
    assert os.fspath(config / "config") in unknown.stderr
