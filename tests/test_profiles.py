"""Profiles and where tokens are kept, without a server: the precedence command line >
environment > profile > default, the implicit `default` profile, the files' modes, and the
keyring used when it is a real one."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from keyring.backend import KeyringBackend

from cli.main import main
from cli.profile_option import profile_option
from cli.profiles import ProfileError, Profiles
from cli.token_store import StoredToken, TokenStore


@click.command()
@profile_option({"url": "url", "user": "user", "target": "target"})
@click.option("--url", envvar="NUXEO_URL")
@click.option("--user", envvar="NUXEO_USER", default="nobody")
@click.option("--to", "target")
def probe(url: str | None, user: str, target: str | None) -> None:
    click.echo(f"{url} {user} {target}")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NXUP_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("NUXEO_URL", "NUXEO_USER", "NXUP_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    profiles = Profiles.load()
    profiles.set("default", url="https://default.example/nuxeo", user="dee")
    profiles.set("work", url="https://work.example/nuxeo", user="wes", target="/default-domain/workspaces/W")
    profiles.save()
    return tmp_path / "config"


def run(args: list[str], **env: str) -> Any:
    return CliRunner().invoke(probe, args, env=env)


def test_command_line_then_environment_then_profile_then_default(config: Path) -> None:
    assert run(["--profile", "work"]).output.split() == [
        "https://work.example/nuxeo",
        "wes",
        "/default-domain/workspaces/W",
    ]
    assert (
        run(["--profile", "work"], NUXEO_URL="https://env.example/nuxeo").output.split()[0]
        == "https://env.example/nuxeo"
    )
    assert (
        run(
            ["--profile", "work", "--url", "https://cli.example/nuxeo"], NUXEO_URL="https://env.example/nuxeo"
        ).output.split()[0]
        == "https://cli.example/nuxeo"
    )
    assert run([], NXUP_PROFILE="work").output.split()[1] == "wes"
    # Without a profile named, `default` applies; what it lacks keeps the option's default.
    assert run([]).output.split() == ["https://default.example/nuxeo", "dee", "None"]
    (config / "config").unlink()
    assert run([]).output.split() == ["None", "nobody", "None"]


def test_an_unknown_profile_named_is_a_usage_error(config: Path) -> None:
    result = run(["--profile", "home"])
    assert result.exit_code == 2 and "no profile home" in result.output
    assert run([], NXUP_PROFILE="home").exit_code == 2


def test_profiles_hold_no_secret_and_are_private(config: Path) -> None:
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert stat.S_IMODE((config / "config").stat().st_mode) == 0o600
    profiles = Profiles.load()
    with pytest.raises(ProfileError, match="holds no password"):
        profiles.set("work", password="x")
    with pytest.raises(ProfileError, match="one line"):
        profiles.set("work", url="https://a\n[evil]")
    # Keys it does not know (a hand-edited file) are not read.
    (config / "config").write_text("[work]\nurl = https://w\ntoken = abc\n")
    assert Profiles.load().get("work") == {"url": "https://w"}


def test_an_unreadable_profile_file_is_one_line(config: Path) -> None:
    (config / "config").write_text("url = no section\n")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2 and "cannot be read" in result.output and "Traceback" not in result.output


class MemoryKeyring(KeyringBackend):
    """A keyring that works, as the system's would (priority is what keyring checks)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.kept.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.kept[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.kept[(service, username)]


class RefusingKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        from keyring.errors import PasswordSetError

        raise PasswordSetError("locked")


def test_a_real_keyring_keeps_the_token_and_no_file_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    backend = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    store = TokenStore(tmp_path)
    where = store.put("https://n/nuxeo", "jdoe", StoredToken("t-1", "d-1"))
    assert where == "the system keyring (MemoryKeyring)"
    assert not (tmp_path / "tokens").exists()
    assert store.get("https://n/nuxeo", "jdoe") == StoredToken("t-1", "d-1")
    assert store.get("https://n/nuxeo", "other") is None
    assert store.forget("https://n/nuxeo", "jdoe") and backend.kept == {}


def test_a_keyring_that_refuses_leaves_the_token_to_the_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    monkeypatch.setattr(keyring.core, "_keyring_backend", RefusingKeyring())
    store = TokenStore(tmp_path / "config")
    assert store.put("https://n/nuxeo", "jdoe", StoredToken("t-2", "d-2")).endswith("(readable by you only)")
    assert stat.S_IMODE((tmp_path / "config" / "tokens").stat().st_mode) == 0o600
    assert store.get("https://n/nuxeo", "jdoe") == StoredToken("t-2", "d-2")
    assert store.forget("https://n/nuxeo", "jdoe") and store.get("https://n/nuxeo", "jdoe") is None


def test_help_shows_the_environment_variables_and_examples() -> None:
    runner = CliRunner()
    for command, variables in {
        "upload": ("NUXEO_URL", "NUXEO_USER", "NXUP_PROFILE", "NXUP_STALE_AFTER"),
        "resume": ("NUXEO_URL", "NUXEO_USER", "NXUP_PROFILE"),
        "status": ("NXUP_PROFILE",),
        "stale": ("NXUP_S3_BUCKET", "NXUP_S3_ENDPOINT", "NXUP_S3_REGION", "NXUP_S3_PROFILE", "NXUP_PROFILE"),
        "login": ("NUXEO_URL", "NUXEO_USER", "NXUP_PROFILE"),
        "logout": ("NUXEO_URL", "NUXEO_USER", "NXUP_PROFILE"),
        "demo": (),
        "sandbox": (),
    }.items():
        shown = runner.invoke(main, [command, "-h"])
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.output.split())  # as wrapped to the terminal's width
        for variable in variables:
            assert re.search(rf"\[env var: {variable}[;\]]", text), (command, variable)
        assert "Examples:" in shown.output, command
