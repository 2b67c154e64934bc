"""Secrets are never shown or stored: the Nuxeo password (in NUXEO_PASSWORD or in the URL of
NUXEO_URL), a token (NUXEO_TOKEN) and the S3 credentials each batch gets are absent from
stdout and stderr (plain and `--json`), error lines, `nxup status`, the state database and its
WAL (read while nxup runs and after), the transfer manager's screens, and the command line of
nxup and of any process it starts."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from conftest import (
    MIB,
    NXUP,
    assert_document_holds,
    nxup_env,
    run_nxup,
    screen_text,
    submit_add_dialog,
    until,
    write,
)
from nuxeo.client import Nuxeo
from nuxeo.models import Document

from cli.connection import server_connection
from engine.lifecycle import UploadStatus
from engine.server_url import split_login
from sandbox import Sandbox

SIZE = (100, 30)


def url_with_login(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


@pytest.mark.parametrize(
    ("url", "bare", "user", "password"),
    [
        ("https://host/nuxeo", "https://host/nuxeo", None, None),
        ("https://host/nuxeo/", "https://host/nuxeo", None, None),
        ("https://jdoe@host:8443/nuxeo", "https://host:8443/nuxeo", "jdoe", None),
        ("https://jdoe:s%40cr%3At@host/nuxeo", "https://host/nuxeo", "jdoe", "s@cr:t"),
        ("https://jdoe:@host/nuxeo", "https://host/nuxeo", "jdoe", ""),
        ("http://a:b@[::1]:8080/nuxeo?x=1", "http://[::1]:8080/nuxeo?x=1", "a", "b"),
    ],
)
def test_split_login(
    url: str, bare: str, user: str | None, password: str | None
) -> None:
    login = split_login(url)
    assert (login.url, login.user, login.password) == (bare, user, password)
    assert not password or password not in repr(login)


# -- where secrets could leak ----------------------------------------------------------------


@dataclass
class Exposure:
    """Everything nxup showed or stored, by where it was seen."""

    seen: dict[str, bytes] = field(default_factory=dict)

    def add(self, where: str, content: str | bytes) -> None:
        data = (
            content.encode("utf-8", "surrogateescape")
            if isinstance(content, str)
            else content
        )
        self.seen[where] = self.seen.get(where, b"") + data

    def add_run(self, name: str, result: subprocess.CompletedProcess[str]) -> None:
        self.add(f"{name} stdout", result.stdout)
        self.add(f"{name} stderr", result.stderr)

    def add_state(self, name: str, state_dir: Path) -> None:
        if state_dir.exists():
            for path in sorted(state_dir.iterdir()):  # state.db, -wal, -shm
                self.add(f"{name} {path.name}", path.read_bytes())

    def assert_clean(self, secrets: list[str]) -> None:
        forms = {}
        for secret in secrets:
            assert len(secret) >= 8, "a short secret would match by chance"
            forms[secret] = secret
            forms[f"{secret} (in a URL)"] = quote(secret, safe="")
        leaks = [
            (where, name)
            for where, data in self.seen.items()
            for name, form in forms.items()
            if form.encode() in data
        ]
        assert not leaks, leaks


def basic_auth(user: str, password: str) -> str:
    """The form a password takes in an Authorization header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def secrets_of(sandbox: Sandbox, minted: list[Any], *extra: str) -> list[str]:
    assert minted, "no batch credentials were minted: nothing uploaded?"
    info = sandbox.info
    values = [
        info.password,
        basic_auth(info.user, info.password),
        info.s3_secret_access_key,
        *extra,
    ]
    for credentials in minted:
        values += [
            credentials.secret_access_key,
            credentials.session_token,
            credentials.access_key_id,
        ]
    return values


def command_lines(pid: int) -> dict[int, bytes]:
    """The command lines of `pid` and of every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, found = {pid}, True
    while found:
        found = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                found = True
    lines = {}
    for member in family:
        try:
            lines[member] = Path(f"/proc/{member}/cmdline").read_bytes()
        except OSError:
            pass
    return lines


def watched_run(
    args: list[str],
    env: dict[str, str],
    state_dir: Path,
    exposure: Exposure,
    name: str,
    *,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run nxup to its end; while it runs, record its command lines (and its children's) and
    the state database as it is written."""
    child = subprocess.Popen(
        [NXUP, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    done = threading.Event()
    samples = [0]

    def watch() -> None:
        while not done.is_set():
            for pid, line in command_lines(child.pid).items():
                exposure.add(f"{name} cmdline of {pid}", line)
            try:
                exposure.add_state(f"{name} (running)", state_dir)
            except OSError:  # a file went away between listing and reading
                pass
            samples[0] += 1
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    finally:
        done.set()
        watcher.join(timeout=5)
    assert samples[0] >= 3, "the run ended before it could be watched"
    result = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    assert "Traceback" not in stdout + stderr, stdout + stderr
    exposure.add_run(name, result)
    exposure.add_state(name, state_dir)
    return result


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes]:
    """A multipart file sent slowly enough to be watched, and a small one."""
    return {
        "slow.bin": write(tmp_path / "in" / "slow.bin", 6 * MIB),
        "small.txt": write(tmp_path / "in" / "small.txt", 999),
    }


def upload_args(tmp_path: Path, target: str, *more: str) -> list[str]:
    return [
        "upload",
        str(tmp_path / "in" / "slow.bin"),
        str(tmp_path / "in" / "small.txt"),
        str(tmp_path / "in" / "missing.txt"),
        "--to",
        target,
        "--part-size",
        "5MiB",
        "--single-limit",
        "5MiB",
        "--limit",
        "6MiB/s",
        *more,
    ]


def assert_folder_holds(nuxeo: Nuxeo, target: str, files: dict[str, bytes]) -> None:
    documents = {d.title: d for d in nuxeo.documents.get_children(path=target)}
    for name, content in files.items():
        assert_document_holds(nuxeo, documents[name].uid, name=name, content=content)


def status_of(
    env: dict[str, str], exposure: Exposure, name: str
) -> list[dict[str, Any]]:
    plain = run_nxup(["status"], env)
    as_json = run_nxup(["status", "--json"], env)
    exposure.add_run(f"{name} status", plain)
    exposure.add_run(f"{name} status --json", as_json)
    return [json.loads(line) for line in as_json.stdout.splitlines()]


# -- runs ------------------------------------------------------------------------------------


def test_password_in_the_url_is_used_never_shown_stored_or_passed_on(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    files: dict[str, bytes],
    minted: list[Any],
) -> None:
    info = sandbox.info
    state = tmp_path / "state"
    env = nxup_env(info, state)
    del env["NUXEO_PASSWORD"], env["NUXEO_USER"]
    env["NUXEO_URL"] = url_with_login(info.nuxeo_url, info.user, info.password)
    exposure = Exposure()

    result = watched_run(
        upload_args(tmp_path, target_folder, "--no-tui"), env, state, exposure, "plain"
    )
    assert result.returncode == 1  # the missing file
    assert_folder_holds(nuxeo, target_folder, files)
    rows = status_of(env, exposure, "url")
    assert {row["server_url"] for row in rows} == {info.nuxeo_url}
    exposure.assert_clean(secrets_of(sandbox, minted))


def test_password_and_token_from_the_environment_never_shown_or_stored(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    files: dict[str, bytes],
    minted: list[Any],
) -> None:
    info = sandbox.info
    exposure = Exposure()
    env = nxup_env(info, tmp_path / "state")
    result = watched_run(
        upload_args(tmp_path, target_folder, "--json"),
        env,
        tmp_path / "state",
        exposure,
        "json",
    )
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1])["done"] == 2
    status_of(env, exposure, "password")

    token = requests.get(
        f"{info.nuxeo_url}/authentication/token",
        params={
            "applicationName": "nxup-tests",
            "deviceId": uuid.uuid4().hex,
            "permission": "rw",
        },
        auth=(info.user, info.password),
        timeout=10,
    ).text
    assert len(token) >= 16
    token_state = tmp_path / "token-state"
    token_env = nxup_env(info, token_state)
    del token_env["NUXEO_PASSWORD"]
    token_env["NUXEO_TOKEN"] = token
    folder = nuxeo.documents.create(
        Document(name="by-token", type="Folder", properties={"dc:title": "by-token"}),
        parent_path=target_folder,
    ).path
    by_token = watched_run(
        upload_args(tmp_path, folder, "--json"),
        token_env,
        token_state,
        exposure,
        "token",
    )
    assert json.loads(by_token.stdout.splitlines()[-1])["done"] == 2
    assert_folder_holds(nuxeo, folder, files)
    status_of(token_env, exposure, "token")
    exposure.assert_clean(secrets_of(sandbox, minted, token))


def test_debug_log_file_keeps_no_secret(
    sandbox: Sandbox,
    target_folder: str,
    tmp_path: Path,
    files: dict[str, bytes],
    minted: list[Any],
) -> None:
    """`--debug --log-file`: the HTTP libraries log every request and answer (the batch's
    credentials, the signing headers), all masked, in the file and on stderr alike; with a
    password, then with a token."""
    info = sandbox.info
    exposure = Exposure()
    log_file = tmp_path / "debug.log"
    env = nxup_env(info, tmp_path / "state")
    result = watched_run(upload_args(tmp_path, target_folder, "--no-tui", "--debug", "--log-file", str(log_file)),
                         env, tmp_path / "state", exposure, "debug")
    assert result.returncode == 1 and "2 uploaded" in result.stdout
    token = requests.get(
        f"{info.nuxeo_url}/authentication/token",
        params={"applicationName": "nxup-tests", "deviceId": uuid.uuid4().hex, "permission": "rw"},
        auth=(info.user, info.password),
        timeout=10,
    ).text
    token_env = nxup_env(info, tmp_path / "token-state")
    del token_env["NUXEO_PASSWORD"]
    token_env["NUXEO_TOKEN"] = token
    by_token = watched_run(upload_args(tmp_path, target_folder, "--no-tui", "--debug", "--log-file", str(log_file)),
                           token_env, tmp_path / "token-state", exposure, "debug with a token")
    assert by_token.returncode == 1
    logged = log_file.read_text()
    exposure.add("log file", logged)
    # What a leak would be in: the requests, their signing, the answers carrying credentials.
    for expected in ("botocore.auth", "UploadPart", "awsSessionToken", "x-amz-security-token", "Authorization"):
        assert expected in logged, expected
    exposure.assert_clean(secrets_of(sandbox, minted, token))
    signatures = re.findall(r"(?i)signature(?:=|:\s*)(?!\[redacted\])[0-9a-f]{16,}", logged + result.stderr)
    assert not signatures, signatures[:3]


def test_error_lines_keep_no_password(sandbox: Sandbox, tmp_path: Path) -> None:
    """(An unreachable server with the login in its URL is a row of test_bad_inputs.py.)"""
    info = sandbox.info
    path = tmp_path / "a.txt"
    write(path, 10)
    wrong = f"not-the-pw-{uuid.uuid4().hex[:8]}"
    exposure = Exposure()

    def run_with_url(
        url: str, *args: str, from_argv: bool = False
    ) -> subprocess.CompletedProcess[str]:
        env = nxup_env(info, tmp_path / "state")
        del env["NUXEO_PASSWORD"], env["NUXEO_USER"]
        command = [
            "upload",
            str(path),
            "--to",
            "/default-domain/workspaces",
            "--no-tui",
            *args,
        ]
        if from_argv:
            del env["NUXEO_URL"]
            command += ["--url", url]
        else:
            env["NUXEO_URL"] = url
        result = run_nxup(command, env, timeout=30)
        exposure.add_run(url, result)
        return result

    refused = run_with_url(url_with_login(info.nuxeo_url, info.user, wrong))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"nxup: {info.nuxeo_url}: Nuxeo rejected the user name or password (401)"
    ]

    on_argv = run_with_url(
        url_with_login(info.nuxeo_url, info.user, wrong), from_argv=True
    )
    assert on_argv.returncode == 2
    assert (
        "--url holds a password" in on_argv.stderr
        and "NUXEO_PASSWORD" in on_argv.stderr
    )
    exposure.add_state("errors", tmp_path / "state")
    exposure.assert_clean([wrong, basic_auth(info.user, wrong)])


def test_screens_keep_no_secret(
    sandbox: Sandbox,
    make_app: Any,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    minted: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app gets its connection as `nxup` makes it, from a URL holding the password."""
    info = sandbox.info
    monkeypatch.delenv("NUXEO_PASSWORD", raising=False)
    monkeypatch.delenv("NUXEO_TOKEN", raising=False)
    connection = server_connection(
        url_with_login(info.nuxeo_url, info.user, info.password),
        None,
        url_on_command_line=False,
    )
    assert connection.url == info.nuxeo_url and connection.password == info.password
    content = write(tmp_path / "screen.bin", 6 * MIB)
    app = make_app(
        sandbox,
        tmp_path / "state",
        connection=connection,
        bandwidth_limit=4 * MIB,
        start=lambda m: m.add(
            [tmp_path / "screen.bin", tmp_path / "missing.bin"], target_folder
        ),
    )
    exposure = Exposure()

    async def scenario() -> int:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            file_id = await until(
                pilot,
                lambda: next(
                    (
                        r.file_id
                        for r in app.model.rows.values()
                        if r.file_id > 0 and r.sent > 0
                    ),
                    None,
                ),
                what="upload",
            )
            exposure.add("transfers", screen_text(app))
            assert f"nxup — {info.nuxeo_url} · cap" in screen_text(app)
            # Each screen once it shows what it is for.
            shown = {
                "parts": lambda: str(
                    app.screen.query_one("#parts-title").render()
                ).startswith("screen.bin · "),
                "stale": lambda: not app.screen.loading,  # type: ignore[attr-defined]
                "log": lambda: "failed:" in screen_text(app),  # the line of missing.bin
                "help": lambda: "bandwidth cap" in screen_text(app),
            }
            for key, screen in (
                ("enter", "parts"),
                ("s", "stale"),
                ("l", "log"),
                ("question_mark", "help"),
            ):
                app.transfers.files.select_file(file_id)  # type: ignore[union-attr]
                await pilot.press(key)
                await until(
                    pilot, shown[screen], timeout=10, what=f"the {screen} screen"
                )
                exposure.add(screen, screen_text(app))
                await pilot.press("escape")
            await pilot.press("a")
            app.screen.query_one("#path").value = str(tmp_path / "screen.bin")  # type: ignore[attr-defined]
            app.screen.query_one("#target").value = "/default-domain/nowhere"  # type: ignore[attr-defined]
            await submit_add_dialog(pilot)
            await until(
                pilot,
                lambda: any(line.startswith("error:") for line in app.model.log),
                what="the error",
            )
            await until(
                pilot,
                lambda: "the target folder /default-domain/nowhere" in screen_text(app),
                timeout=10,
                what="the error's notification",
            )
            exposure.add("error", screen_text(app))
            app.manager.set_bandwidth_limit(None)
            await until(
                pilot,
                lambda: app.model.rows[file_id].status is UploadStatus.DONE,
                timeout=60,
                what="done",
            )
            exposure.add("done", screen_text(app))
            await pilot.press("q")
            return file_id

    file_id = asyncio.run(scenario())
    assert (
        "the target folder /default-domain/nowhere" in exposure.seen["error"].decode()
    )
    record = app.manager.store.get(file_id)
    assert record is not None and record.server_url == info.nuxeo_url
    assert_document_holds(
        nuxeo, record.doc_uid or "", name="screen.bin", content=content
    )
    exposure.add_state("app", tmp_path / "state")
    exposure.assert_clean(secrets_of(sandbox, minted))
