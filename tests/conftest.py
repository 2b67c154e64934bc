"""Sandbox fixtures: one real sandbox (SeaweedFS + the Nuxeo-compatible server) per test session."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, Flavor
from nuxeo.client import Nuxeo
from nuxeo.models import Document

from sandbox import AccessPolicy, NuxeoServer, Sandbox, SandboxInfo


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def permissive_server(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NuxeoServer]:
    """A second Nuxeo-compatible server, in permissive mode, on the session sandbox's S3 server."""
    with NuxeoServer(
        s3=sandbox.s3, data_dir=tmp_path_factory.mktemp("permissive"), password=sandbox.password,
        policy=AccessPolicy.PERMISSIVE,
    ) as server:
        yield server


@pytest.fixture(params=list(AccessPolicy), ids=str)
def policy_server(request: pytest.FixtureRequest, sandbox: Sandbox) -> NuxeoServer:
    """The Nuxeo-compatible server in each policy mode, on the same S3 server."""
    if request.param is AccessPolicy.STOCK:
        return sandbox.nuxeo
    return request.getfixturevalue("permissive_server")


@pytest.fixture
def policy_nuxeo(policy_server: NuxeoServer, sandbox: Sandbox) -> Nuxeo:
    """A real `nuxeo` client of `policy_server`."""
    return Nuxeo(host=policy_server.base_url, auth=(policy_server.user, sandbox.password))


def info_of(sandbox: Sandbox, server: NuxeoServer) -> SandboxInfo:
    """How to reach `server`, a Nuxeo-compatible server on the session sandbox's S3 server."""
    return dataclasses.replace(sandbox.info, nuxeo_url=server.base_url, policy=server.policy.value)


@pytest.fixture
def server_info(sandbox: Sandbox) -> SandboxInfo:
    """The server the engine and client fixtures talk to: the session sandbox (stock). A module
    that runs its tests in both policy modes overrides it with `info_of(sandbox, policy_server)`."""
    return sandbox.info


@pytest.fixture
def make_nuxeo(server_info: SandboxInfo) -> Callable[..., Nuxeo]:
    """Build a real `nuxeo` client for a sandbox (`server_info` unless given)."""

    def make(info: SandboxInfo | None = None, **kwargs: Any) -> Nuxeo:
        info = info or server_info
        kwargs.setdefault("auth", (info.user, info.password))
        return Nuxeo(host=info.nuxeo_url, **kwargs)

    return make


@pytest.fixture
def nuxeo(make_nuxeo: Callable[..., Nuxeo]) -> Nuxeo:
    return make_nuxeo()


@pytest.fixture
def s3_admin(sandbox: Sandbox) -> Any:
    return sandbox.s3.admin_client()


# -- end-to-end helpers for the engine and the CLI ---------------------------------------------

WORKSPACES = "/default-domain/workspaces"


class EventLog:
    """An engine event sink that keeps every event with its arrival time and lets a test wait
    for one (events come from engine threads)."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, Any]] = []
        self._changed = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._changed:
            self.entries.append((time.monotonic(), event))
            self._changed.notify_all()

    @property
    def events(self) -> list[Any]:
        with self._changed:
            return [event for _, event in self.entries]

    def of(self, kind: type, file_id: int | None = None) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind) and (file_id is None or e.file_id == file_id)]

    def wait_for(self, kind: type, *, file_id: int | None = None, timeout: float = 30.0,
                 where: Callable[[Any], bool] = lambda e: True) -> tuple[float, Any]:
        """The first (arrival time, event) of this kind (and file) that satisfies `where`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, event in self.entries:
                    if isinstance(event, kind) and (file_id is None or event.file_id == file_id) and where(event):
                        return arrived, event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kinds = [type(e).__name__ for _, e in self.entries]
                    raise AssertionError(f"no {kind.__name__} event within {timeout} s; got {kinds}")
                self._changed.wait(remaining)


def paused_after_first_part(manager: Any, events: EventLog, path: Path, target: str) -> int:
    """Queue `path` on `manager`, and pause it once S3 acknowledged its first part; its id."""
    from engine.events import FilePaused, PartCompleted

    (file_id,) = manager.add([path], target).file_ids
    events.wait_for(PartCompleted, file_id=file_id)
    manager.pause(file_id)
    events.wait_for(FilePaused, file_id=file_id)
    return int(file_id)


def write(path: Path, size: int) -> bytes:
    """A file of `size` random bytes (its folders made); returns the content."""
    content = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return content


async def until(pilot: Any, condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """`poll` for Pilot tests: waits on the app's own loop, so the app keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def poll(condition: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Wait until `condition()` is truthy and return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def new_target_folder(client: Nuxeo) -> str:
    """A fresh Folder under the workspaces, so tests never see each other's documents."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    folder = client.documents.create(
        Document(name=name, type="Folder", properties={"dc:title": name}), parent_path=WORKSPACES
    )
    return str(folder.path)


@pytest.fixture
def target_folder(nuxeo: Nuxeo) -> str:
    return new_target_folder(nuxeo)


def assert_document_holds(client: Nuxeo, doc_uid: str, *, name: str, content: bytes) -> Any:
    """The document exists, is titled after the file, and its blob is exactly `content`."""
    document = client.documents.get(uid=doc_uid)
    blob = document.properties["file:content"]
    assert blob is not None, f"document {document.path} has no blob"
    assert document.title == name
    assert blob["name"] == name
    assert int(blob["length"]) == len(content)
    assert blob["digestAlgorithm"] == "MD5"
    assert blob["digest"] == hashlib.md5(content).hexdigest()
    return document


def assert_object_is(s3: Any, *, bucket: str, key: str, content: bytes) -> dict[str, Any]:
    """The S3 object holds exactly `content`; returns its GetObject answer (ETag...)."""
    answer = s3.get_object(Bucket=bucket, Key=key)
    assert answer["Body"].read() == content
    return answer


def multipart_uploads(s3: Any, *, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    """Multipart uploads S3 still holds under `prefix` (none must be left after a test)."""
    answer = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return list(answer.get("Uploads", []))


def batch_may_abort(info: SandboxInfo) -> bool:
    """Stock batch credentials may not abort a multipart upload; permissive ones may."""
    return info.policy == AccessPolicy.PERMISSIVE.value


def assert_aborted_or_left_for_cleanup(s3: Any, info: SandboxInfo, record: Any, notices: list[str]) -> None:
    """An upload nxup gave up is aborted where the batch credentials allow it; elsewhere it is
    left to the server's clean-up, the user is told so, and the journal still names it (for
    `nxup stale`). The admin keys then remove it, so no test leaves one behind."""
    left = multipart_uploads(s3, bucket=record.bucket, prefix=record.object_key)
    if batch_may_abort(info):
        assert left == []
        return
    assert [u["UploadId"] for u in left] == [record.upload_id]
    assert any("nxup stale" in notice and "clean-up" in notice for notice in notices), notices
    s3.abort_multipart_upload(Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id)


def nxup_env(info: SandboxInfo, state_dir: Path, *, password: str | None = None) -> dict[str, str]:
    """The environment of an `nxup` child process: the sandbox's server and a private state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUXEO_", "NXUP_"))}
    env.update(
        NUXEO_URL=info.nuxeo_url,
        NUXEO_USER=info.user,
        NUXEO_PASSWORD=info.password if password is None else password,
        NXUP_STATE_DIR=str(state_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


NXUP = str(Path(sys.executable).with_name("nxup"))


MIB = 1024 * 1024


@pytest.fixture
def make_manager(server_info: SandboxInfo, tmp_path: Path) -> Iterator[Callable[..., tuple[Any, EventLog]]]:
    """Start a TransferManager on a sandbox (`server_info` unless given), with its own state
    dir; returns (manager, events). Every manager is shut down after the test."""
    from engine.manager import TransferManager, TransferSettings
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore

    started: list[Any] = []

    def make(*, info: SandboxInfo | None = None, state_dir: Path | None = None, **settings: Any) -> tuple[Any, EventLog]:
        info = info or server_info
        settings.setdefault("workers", 4)
        settings.setdefault("part_size", 5 * MIB)
        settings.setdefault("single_upload_limit", 5 * MIB)
        settings.setdefault("progress_interval_s", 0.05)
        store = StateStore.open(state_dir or tmp_path / f"state-{len(started)}")
        events = EventLog()
        manager = TransferManager(
            ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password),
            store=store, sink=events, settings=TransferSettings(**settings),
        ).start()
        started.append(manager)
        return manager, events

    yield make
    for manager in started:
        manager.shutdown(timeout=10)
        manager.store.close()


class JsonLines:
    """Reads an `nxup --json` child's stdout on a thread, so a test can wait for an event (and
    kill the child at that moment) with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            return [json.loads(line) for line in self.lines]

    def wait_for(self, where: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    event = json.loads(line)
                    if where(event):
                        return event
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    raise AssertionError(f"no such event (ended={self._ended}); got {self.lines[-5:]}")
                self._changed.wait(remaining)

    def finish(self, *, timeout: float = 60.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


def start_nxup(args: list[str], env: dict[str, str]) -> JsonLines:
    """Start `nxup args --json` and read its events as they come."""
    child = subprocess.Popen([NXUP, *args, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
    return JsonLines(child)


# One worker, 5 MiB parts, a cap: slow enough to act on the upload mid-way.
SLOW_UPLOAD = ["--no-tui", "--workers", "1", "--part-size", "5MiB", "--single-limit", "5MiB", "--limit", "8MiB/s"]


def start_slow_upload(info: SandboxInfo, state_dir: Path, path: Path, target: str) -> JsonLines:
    """A real `nxup upload` child sending `path` slowly, with its JSON events."""
    return start_nxup(["upload", str(path), "--to", target, *SLOW_UPLOAD], nxup_env(info, state_dir))


def kill_after_first_part(output: JsonLines) -> None:
    """SIGKILL the child once S3 acknowledged (and the journal recorded) its first part."""
    import signal

    try:
        output.wait_for(lambda event: event["event"] == "part_completed")
    finally:
        output.process.send_signal(signal.SIGKILL)
    output.finish()


def run_nxup(args: list[str], env: dict[str, str], *, timeout: float = 60.0, cwd: Path | None = None,
             prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run `nxup args` (after `prefix`, e.g. a command that drops privileges) to its end."""
    result = subprocess.run([*prefix, NXUP, *args], env=env, check=False, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.fixture
def minted(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every set of temporary credentials the sandbox hands to a batch while the test runs."""
    issued: list[Any] = []
    mint = sandbox.s3.mint_credentials

    def recording(**kwargs: Any) -> Any:
        credentials = mint(**kwargs)
        issued.append(credentials)
        return credentials

    monkeypatch.setattr(sandbox.s3, "mint_credentials", recording)
    return issued


# -- the transfer manager (Textual app) --------------------------------------------------------

def make_app(sandbox: Sandbox, state_dir: Path, *, start: Callable[[Any], Any] | None,
             connection: Any = None, notices: list[str] | None = None, **settings: Any) -> Any:
    """The app on a real engine (the sandbox's server unless `connection` is given), labelled
    with the connection's URL as `nxup` labels it, showing start-up `notices`."""
    from engine.manager import TransferManager, TransferSettings
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore
    from tui.app import NxupApp
    from tui.bridge import EventBridge

    info = sandbox.info
    settings.setdefault("workers", 4)
    settings.setdefault("part_size", 5 * MIB)
    settings.setdefault("single_upload_limit", 5 * MIB)
    connection = connection or ServerConnection(url=info.nuxeo_url, user=info.user, password=info.password)
    bridge = EventBridge()
    manager = TransferManager(connection, store=StateStore.open(state_dir), sink=bridge,
                              settings=TransferSettings(**settings))
    return NxupApp(manager, bridge, start=(lambda: start(manager)) if start else None,
                   server_label=connection.url, notices=notices)


async def submit_add_dialog(pilot: Any) -> None:
    """Submit the add dialog with its values as set (enter in the target field)."""
    await pilot.pause()
    pilot.app.screen.query_one("#target").focus()
    await pilot.press("enter")
    await pilot.pause()


_SVG_TEXT = re.compile(r'<text [^>]*clip-path="url\(#[\w-]+-line-(\d+)\)"[^>]*>([^<]*)</text>')


def screen_text(app: Any) -> str:
    """What the app shows right now, line by line, from its SVG screenshot."""
    lines: dict[int, list[str]] = {}
    for number, fragment in _SVG_TEXT.findall(app.export_screenshot()):
        lines.setdefault(int(number), []).append(html.unescape(fragment).replace("\xa0", " "))
    return "\n".join("".join(lines[n]).rstrip("\n") for n in sorted(lines))


# -- stale multipart uploads -------------------------------------------------------------------

def kill_upload_after_first_part(info: SandboxInfo, state_dir: Path, path: Path, target: str) -> Any:
    """Run `nxup upload` on `path` (15 MiB), SIGKILL it once S3 acknowledged its first part, and
    return the state database's record: a real orphan that nxup tracks and can resume."""
    from engine.state import StateStore

    path.write_bytes(os.urandom(15 * MIB + 11))
    kill_after_first_part(start_slow_upload(info, state_dir, path, target))
    with StateStore.open(state_dir) as store:
        (record,) = store.unfinished()
    assert record.upload_id and record.object_key
    return record


def stale_prefix() -> str:
    """A fresh key prefix, so tests never see each other's orphans."""
    return f"stale-{uuid.uuid4().hex[:10]}/"


# -- fault proxies ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Proxies:
    s3: FaultProxy
    nuxeo: FaultProxy
    info: SandboxInfo  # the sandbox's details, with the Nuxeo proxy as the server's URL


@pytest.fixture
def proxies(sandbox: Sandbox) -> Iterator[Proxies]:
    """Fault proxies in front of S3 and of the Nuxeo server, without faults until a test sets
    their policies."""
    s3_proxy = FaultProxy(sandbox.s3.endpoint.removeprefix("http://"), flavor=Flavor.S3)
    nuxeo_proxy = FaultProxy(f"127.0.0.1:{sandbox.nuxeo.port}", flavor=Flavor.NUXEO)
    sandbox.nuxeo.advertised_s3_endpoint = s3_proxy.url
    yield Proxies(s3_proxy, nuxeo_proxy, dataclasses.replace(sandbox.info, nuxeo_url=nuxeo_proxy.url + "/nuxeo"))
    sandbox.nuxeo.advertised_s3_endpoint = None
    s3_proxy.close()
    nuxeo_proxy.close()
