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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from faultproxy import FaultProxy, Flavor
from nuxeo.client import Nuxeo
from nuxeo.exceptions import HTTPError
from nuxeo.models import Batch, Document, FileBlob

from sandbox import AccessPolicy, NuxeoServer, Sandbox, SandboxInfo, SeaweedS3


@dataclasses.dataclass(frozen=True)
class Served:
    """A Nuxeo-compatible server on a sandbox's S3 server, with what tests use of a `Sandbox`."""

    nuxeo: NuxeoServer
    s3: SeaweedS3
    info: SandboxInfo

    @property
    def password(self) -> str:
        return self.info.password


class Sandboxes:
    """The sandboxes of a test session, each started once for its settings and stopped at its
    end. A SeaweedFS start costs seconds, so settings share what they can: one S3 server per
    credential lifetime (the only S3 setting a test changes), and on it one Nuxeo-compatible
    server per set of the server's own settings."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._sandboxes: dict[int, Sandbox] = {}
        self._servers: dict[tuple[Any, ...], Served] = {}

    def sandbox(self, *, credential_ttl_s: int = 3600) -> Sandbox:
        """A whole sandbox (SeaweedFS and a stock server) whose batch credentials last this long."""
        if credential_ttl_s not in self._sandboxes:
            self._sandboxes[credential_ttl_s] = Sandbox(
                credential_ttl_s=credential_ttl_s
            ).start()
        return self._sandboxes[credential_ttl_s]

    def server(self, *, credential_ttl_s: int = 3600, **settings: Any) -> Served:
        """A server with `settings` (see `NuxeoServer`) on the sandbox of that credential
        lifetime: the sandbox's own server when they are its own (a stock server)."""
        base = self.sandbox(credential_ttl_s=credential_ttl_s)
        settings = {k: v for k, v in settings.items() if v != _STOCK_SETTINGS.get(k)}
        if not settings:
            return Served(base.nuxeo, base.s3, base.info)
        key = (credential_ttl_s, *sorted(settings.items()))
        if key not in self._servers:
            server = NuxeoServer(
                s3=base.s3,
                data_dir=self._tmp.mktemp("server"),
                user=base.user,
                password=base.password,
                **settings,
            )
            server.start()
            self._servers[key] = Served(server, base.s3, info_of(base, server))
        return self._servers[key]

    def stop(self) -> None:
        for served in self._servers.values():
            served.nuxeo.stop()
        for sandbox in self._sandboxes.values():
            sandbox.stop()


# The settings of the sandbox's own server (a stock Nuxeo server).
_STOCK_SETTINGS: dict[str, Any] = {
    "policy": AccessPolicy.STOCK,
    "default_handler_first": False,
}


@pytest.fixture(scope="session", autouse=True)
def _private_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands run in this process read profiles and tokens from a dir of the session's own,
    and never from a keyring: the user's are none of the tests' business."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NXUP_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
        patch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        patch.delenv("NXUP_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxes]:
    running = Sandboxes(tmp_path_factory)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def sandbox(sandboxes: Sandboxes) -> Sandbox:
    return sandboxes.sandbox()


@pytest.fixture(scope="session")
def permissive_server(sandboxes: Sandboxes) -> NuxeoServer:
    """A second Nuxeo-compatible server, in permissive mode, on the session sandbox's S3 server."""
    return sandboxes.server(policy=AccessPolicy.PERMISSIVE).nuxeo


@pytest.fixture(params=list(AccessPolicy), ids=str)
def policy_server(request: pytest.FixtureRequest, sandbox: Sandbox) -> NuxeoServer:
    """The Nuxeo-compatible server in each policy mode, on the same S3 server."""
    if request.param is AccessPolicy.STOCK:
        return sandbox.nuxeo
    return request.getfixturevalue("permissive_server")


@pytest.fixture
def policy_nuxeo(policy_server: NuxeoServer, sandbox: Sandbox) -> Nuxeo:
    """A real `nuxeo` client of `policy_server`."""
    return Nuxeo(
        host=policy_server.base_url, auth=(policy_server.user, sandbox.password)
    )


def info_of(sandbox: Sandbox, server: NuxeoServer) -> SandboxInfo:
    """How to reach `server`, a Nuxeo-compatible server on the session sandbox's S3 server."""
    return dataclasses.replace(
        sandbox.info, nuxeo_url=server.base_url, policy=server.policy.value
    )


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
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (file_id is None or e.file_id == file_id)
        ]

    def wait_for(
        self,
        kind: type,
        *,
        file_id: int | None = None,
        timeout: float = 30.0,
        where: Callable[[Any], bool] = lambda e: True,
    ) -> tuple[float, Any]:
        """The first (arrival time, event) of this kind (and file) that satisfies `where`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, event in self.entries:
                    if (
                        isinstance(event, kind)
                        and (file_id is None or event.file_id == file_id)
                        and where(event)
                    ):
                        return arrived, event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kinds = [type(e).__name__ for _, e in self.entries]
                    raise AssertionError(
                        f"no {kind.__name__} event within {timeout} s; got {kinds}"
                    )
                self._changed.wait(remaining)


def paused_after_first_part(
    manager: Any, events: EventLog, path: Path, target: str
) -> int:
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


async def until(
    pilot: Any,
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    what: str = "condition",
) -> Any:
    """`poll` for Pilot tests: waits on the app's own loop, so the app keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def poll(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Wait until `condition()` is truthy and return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def new_folder(client: Nuxeo) -> Document:
    """A fresh Folder under the workspaces, so tests never see each other's documents."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    return client.documents.create(
        Document(name=name, type="Folder", properties={"dc:title": name}),
        parent_path=WORKSPACES,
    )


def new_target_folder(client: Nuxeo) -> str:
    """The path of a fresh Folder under the workspaces."""
    return str(new_folder(client).path)


@pytest.fixture
def target_folder(nuxeo: Nuxeo) -> str:
    return new_target_folder(nuxeo)


def write_file(directory: Path, name: str, size: int) -> Path:
    """A file of `size` random bytes named `name` in `directory`; returns its path."""
    path = directory / name
    write(path, size)
    return path


def new_file_doc(client: Nuxeo, parent: Document, title: str = "target") -> Document:
    """An empty File document in `parent`."""
    doc = Document(name=title, type="File", properties={"dc:title": title})
    return client.documents.create(doc, parent_path=parent.path)


def object_key(batch: Batch) -> str:
    """The S3 key of a batch's first file, as a client of the server computes it."""
    return f"{batch.extraInfo['baseKey']}{batch.key}"


def batch_s3_client(
    extra_info: dict[str, Any], *, endpoint: str | None = None, max_attempts: int = 1
) -> Any:
    """boto3 signed with a batch's temporary credentials (a `Batch`'s extraInfo, or the JSON
    answer's), the way an uploader builds it; one attempt unless told, so that a test sees
    S3's answer as given."""
    return boto3.session.Session().client(
        "s3",
        aws_access_key_id=extra_info["awsSecretKeyId"],
        aws_secret_access_key=extra_info["awsSecretAccessKey"],
        aws_session_token=extra_info["awsSessionToken"],
        endpoint_url=endpoint or extra_info["endpoint"],
        region_name=extra_info["region"],
        config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": max_attempts}
        ),
    )


def put_small(batch: Batch, key: str | None = None) -> dict[str, Any]:
    """Seven bytes at the batch's key (or `key`), with the batch's own credentials."""
    return batch_s3_client(batch.extraInfo).put_object(
        Bucket=batch.extraInfo["bucket"],
        Key=key or object_key(batch),
        Body=b"payload",
        ContentType="text/plain",
    )


def batch_exists(client: Nuxeo, batch_id: str) -> bool:
    try:
        client.client.request("GET", f"api/v1/upload/{batch_id}")
    except HTTPError as exc:
        assert exc.status == 404
        return False
    return True


def uploaded_batch(client: Nuxeo, path: Path) -> Batch:
    """A batch holding `path`, uploaded and completed by the `nuxeo` client's own uploader."""
    batch = client.uploads.batch(handler="s3")
    batch.upload(FileBlob(str(path)))
    batch.complete()
    return batch


def assert_document_holds(
    client: Nuxeo, doc_uid: str, *, name: str, content: bytes
) -> Any:
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


def assert_object_is(
    s3: Any, *, bucket: str, key: str, content: bytes
) -> dict[str, Any]:
    """The S3 object holds exactly `content`; returns its GetObject answer (ETag...)."""
    answer = s3.get_object(Bucket=bucket, Key=key)
    assert answer["Body"].read() == content
    return answer


def multipart_uploads(
    s3: Any, *, bucket: str, prefix: str = ""
) -> list[dict[str, Any]]:
    """Multipart uploads S3 still holds under `prefix` (none must be left after a test)."""
    answer = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return list(answer.get("Uploads", []))


@dataclasses.dataclass(frozen=True)
class Landed:
    record: Any  # the journal's record of the upload
    object: dict[str, Any]  # S3's GetObject answer (ETag, ContentType...)


def assert_landed(
    manager: Any,
    events: EventLog,
    client: Nuxeo,
    s3: Any,
    file: int | Path,
    *,
    content: bytes,
    name: str | None = None,
) -> Landed:
    """The upload of `file` (its id, or the path it was queued from) completed once and is done
    in the journal; S3 holds exactly `content` under its key, its document (titled `name`, by
    default the file's own name) holds it as its blob, and no multipart upload is left there."""
    from engine.events import FileCompleted, FileFailed
    from engine.lifecycle import UploadStatus

    completed = [
        e
        for e in events.of(FileCompleted)
        if (e.path == str(file) if isinstance(file, Path) else e.file_id == file)
    ]
    assert len(completed) == 1, f"{file} completed {len(completed)} times"
    (done,) = completed
    failed = events.of(FileFailed, done.file_id)
    assert not failed, [e.reason for e in failed]
    record = manager.store.get(done.file_id)
    assert record.status is UploadStatus.DONE
    answer = assert_object_is(
        s3, bucket=record.bucket, key=record.object_key, content=content
    )
    assert_document_holds(
        client, done.document_uid, name=name or Path(done.path).name, content=content
    )
    assert multipart_uploads(s3, bucket=record.bucket, prefix=record.object_key) == []
    return Landed(record, answer)


def batch_may_abort(info: SandboxInfo) -> bool:
    """Stock batch credentials may not abort a multipart upload; permissive ones may."""
    return info.policy == AccessPolicy.PERMISSIVE.value


def assert_aborted_or_left_for_cleanup(
    s3: Any, info: SandboxInfo, record: Any, notices: list[str]
) -> None:
    """An upload nxup gave up is aborted where the batch credentials allow it; elsewhere it is
    left to the server's clean-up, the user is told so, and the journal still names it (for
    `nxup stale`). The admin keys then remove it, so no test leaves one behind."""
    left = multipart_uploads(s3, bucket=record.bucket, prefix=record.object_key)
    if batch_may_abort(info):
        assert left == []
        return
    assert [u["UploadId"] for u in left] == [record.upload_id]
    assert any("nxup stale" in notice and "clean-up" in notice for notice in notices), (
        notices
    )
    s3.abort_multipart_upload(
        Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id
    )


def nxup_env(
    info: SandboxInfo, state_dir: Path, *, password: str | None = None
) -> dict[str, str]:
    """The environment of an `nxup` child process: the sandbox's server, a private state dir and
    a private config dir next to it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUXEO_", "NXUP_"))}
    env.update(
        NUXEO_URL=info.nuxeo_url,
        NUXEO_USER=info.user,
        NUXEO_PASSWORD=info.password if password is None else password,
        NXUP_STATE_DIR=str(state_dir),
        # Profiles and tokens of the test's own, in a file: never the user's, nor a keyring.
        NXUP_CONFIG_DIR=str(state_dir.with_name(state_dir.name + "-config")),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        PYTHONUNBUFFERED="1",
    )
    return env


NXUP = str(Path(sys.executable).with_name("nxup"))


MIB = 1024 * 1024


@pytest.fixture
def make_manager(
    server_info: SandboxInfo, tmp_path: Path
) -> Iterator[Callable[..., tuple[Any, EventLog]]]:
    """Start a TransferManager on a sandbox (`server_info` unless given), with its own state
    dir; returns (manager, events). Every manager is shut down after the test."""
    from engine.manager import TransferManager, TransferSettings
    from engine.nuxeo_batch import ServerConnection
    from engine.state import StateStore

    started: list[Any] = []

    def make(
        *,
        info: SandboxInfo | None = None,
        state_dir: Path | None = None,
        **settings: Any,
    ) -> tuple[Any, EventLog]:
        info = info or server_info
        settings.setdefault("workers", 4)
        settings.setdefault("part_size", 5 * MIB)
        settings.setdefault("single_upload_limit", 5 * MIB)
        settings.setdefault("progress_interval_s", 0.05)
        store = StateStore.open(state_dir or tmp_path / f"state-{len(started)}")
        events = EventLog()
        manager = TransferManager(
            ServerConnection(
                url=info.nuxeo_url, user=info.user, password=info.password
            ),
            store=store,
            sink=events,
            settings=TransferSettings(**settings),
        ).start()
        started.append(manager)
        return manager, events

    yield make
    for manager in started:
        manager.shutdown(timeout=10)
        manager.store.close()


class JsonLines:
    """Reads an `nxup --json` child's stdout on a thread, so a test can wait for an event (and
    kill the child at that moment) with a timeout; its stderr is read on another, so that the
    child never blocks on a full pipe and a test can read it once the child ended."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        _children.append(self)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _read_stderr(self) -> None:
        if self.process.stderr is not None:
            for line in self.process.stderr:
                self._stderr.append(line)

    @property
    def stderr(self) -> str:
        """What the child wrote to stderr (all of it once `finish` returned)."""
        return "".join(self._stderr)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._changed:
            return [json.loads(line) for line in self.lines]

    def wait_for(
        self, where: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    event = json.loads(line)
                    if where(event):
                        return event
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    raise AssertionError(
                        f"no such event (ended={self._ended}); got {self.lines[-5:]}"
                    )
                self._changed.wait(remaining)

    def finish(self, *, timeout: float = 60.0) -> int:
        """Wait for the child's end; its exit code. Its output is then read whole."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        self._stderr_reader.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return code

    def kill(self) -> None:
        """SIGKILL the child if it still runs, and collect it."""
        if self.process.poll() is None:
            self.process.kill()
        self.finish(timeout=10)


_children: list[JsonLines] = []


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test() -> Iterator[None]:
    """An nxup child a failed test left running is killed, its pipes closed."""
    yield
    while _children:
        _children.pop().kill()


def start_nxup(args: list[str], env: dict[str, str]) -> JsonLines:
    """Start `nxup args --json` and read its events as they come."""
    child = subprocess.Popen(
        [NXUP, *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    return JsonLines(child)


# One worker, 5 MiB parts, a cap: slow enough to act on the upload mid-way.
SLOW_UPLOAD = [
    "--no-tui",
    "--workers",
    "1",
    "--part-size",
    "5MiB",
    "--single-limit",
    "5MiB",
    "--limit",
    "8MiB/s",
]


def start_slow_upload(
    info: SandboxInfo, state_dir: Path, path: Path, target: str
) -> JsonLines:
    """A real `nxup upload` child sending `path` slowly, with its JSON events."""
    return start_nxup(
        ["upload", str(path), "--to", target, *SLOW_UPLOAD], nxup_env(info, state_dir)
    )


def kill_after_first_part(output: JsonLines) -> None:
    """SIGKILL the child once S3 acknowledged (and the journal recorded) its first part."""
    import signal

    try:
        output.wait_for(lambda event: event["event"] == "part_completed")
    finally:
        output.process.send_signal(signal.SIGKILL)
    output.finish()


def run_nxup(
    args: list[str],
    env: dict[str, str],
    *,
    timeout: float = 60.0,
    cwd: Path | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `nxup args` (after `prefix`, e.g. a command that drops privileges) to its end."""
    result = subprocess.run(
        [*prefix, NXUP, *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    assert "Traceback" not in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
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


class AppEngines:
    """Builds the app on a real engine (`make`), and shuts down, after the test (`close`), the
    engines the apps left running: a failed assertion ends an app without `q`, and its uploads
    would go on into later tests. Every state store is closed."""

    def __init__(self) -> None:
        self.engines: list[tuple[Any, list[str]]] = []

    def make(
        self,
        sandbox: Sandbox,
        state_dir: Path,
        *,
        start: Callable[[Any], Any] | None,
        connection: Any = None,
        info: SandboxInfo | None = None,
        notices: list[str] | None = None,
        stale_source: Any = None,
        **settings: Any,
    ) -> Any:
        """The app on the sandbox's server (unless `connection` or `info` is given), labelled with
        the connection's URL as `nxup` labels it, showing start-up `notices`, with the stale
        uploads of `stale_source`; `start(manager)` runs once the engine started."""
        from engine.manager import TransferManager, TransferSettings
        from engine.nuxeo_batch import ServerConnection
        from engine.state import StateStore
        from tui.app import NxupApp
        from tui.bridge import EventBridge

        info = info or sandbox.info
        settings.setdefault("workers", 4)
        settings.setdefault("part_size", 5 * MIB)
        settings.setdefault("single_upload_limit", 5 * MIB)
        connection = connection or ServerConnection(
            url=info.nuxeo_url, user=info.user, password=info.password
        )
        bridge = EventBridge()
        manager = TransferManager(
            connection,
            store=StateStore.open(state_dir),
            sink=bridge,
            settings=TransferSettings(**settings),
        )
        self.engines.append((manager, _watch_lifecycle(manager)))
        return NxupApp(
            manager,
            bridge,
            start=(lambda: start(manager)) if start else None,
            server_label=connection.url,
            notices=notices,
            stale_source=stale_source,
        )

    def close(self) -> None:
        while self.engines:
            manager, lifecycle = self.engines.pop()
            try:
                if lifecycle == ["started"]:
                    manager.shutdown(timeout=10)
            finally:
                manager.store.close()


def _watch_lifecycle(manager: Any) -> list[str]:
    """What happened to `manager`: "started", then "shut down" (its own methods, wrapped)."""
    lifecycle: list[str] = []
    start, shutdown = manager.start, manager.shutdown

    def started() -> Any:
        lifecycle.append("started")
        return start()

    def shut_down(**kwargs: Any) -> None:
        lifecycle.append("shut down")
        shutdown(**kwargs)

    manager.start, manager.shutdown = started, shut_down
    return lifecycle


@pytest.fixture
def make_app() -> Iterator[Callable[..., Any]]:
    """`AppEngines.make`, every engine shut down and store closed after the test."""
    engines = AppEngines()
    try:
        yield engines.make
    finally:
        engines.close()


async def submit_add_dialog(pilot: Any) -> None:
    """Submit the add dialog with its values as set (enter in the target field)."""
    await pilot.pause()
    pilot.app.screen.query_one("#target").focus()
    await pilot.press("enter")
    await pilot.pause()


_SVG_TEXT = re.compile(
    r'<text [^>]*clip-path="url\(#[\w-]+-line-(\d+)\)"[^>]*>([^<]*)</text>'
)


def screen_text(app: Any) -> str:
    """What the app shows right now, line by line, from its SVG screenshot."""
    lines: dict[int, list[str]] = {}
    for number, fragment in _SVG_TEXT.findall(app.export_screenshot()):
        lines.setdefault(int(number), []).append(
            html.unescape(fragment).replace("\xa0", " ")
        )
    return "\n".join("".join(lines[n]).rstrip("\n") for n in sorted(lines))


# -- stale multipart uploads -------------------------------------------------------------------


def kill_upload_after_first_part(
    info: SandboxInfo, state_dir: Path, path: Path, target: str
) -> Any:
    """Run `nxup upload` on `path` (15 MiB), SIGKILL it once S3 acknowledged its first part, and
    return the state database's record: a real orphan that nxup tracks and can resume."""
    from engine.state import StateStore

    path.write_bytes(os.urandom(15 * MIB + 11))
    kill_after_first_part(start_slow_upload(info, state_dir, path, target))
    with StateStore.open(state_dir) as store:
        (record,) = store.unfinished()
    assert record.upload_id and record.object_key
    return record


def make_orphans(
    s3: Any, bucket: str, prefix: str, count: int, *, parts: int = 0, workers: int = 8
) -> list[tuple[str, str]]:
    """`count` multipart uploads under `prefix`; upload i gets `parts` parts of (i+1) KiB each."""

    def create(index: int) -> tuple[str, str]:
        key = f"{prefix}file-{index:05d}.bin"
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        for number in range(1, parts + 1):
            s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=b"x" * 1024 * (index + 1),
            )
        return key, upload_id

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(create, range(count)))


def open_ids(s3: Any, bucket: str, prefix: str) -> set[str]:
    """The ids of the multipart uploads S3 holds under `prefix`."""
    from engine.stale import iter_upload_pages

    return {
        u["UploadId"] for page in iter_upload_pages(s3, bucket, prefix) for u in page
    }


@pytest.fixture
def restore_lifecycle(s3_admin: Any, sandbox: Sandbox) -> Iterator[None]:
    """Lifecycle rules are bucket-wide: put back what was there."""
    from engine.stale import lifecycle_status

    bucket = sandbox.info.bucket
    before = lifecycle_status(s3_admin, bucket).rules
    yield
    if before:
        s3_admin.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": before}
        )
    else:
        s3_admin.delete_bucket_lifecycle(Bucket=bucket)


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
def proxied_server(sandbox: Sandbox) -> NuxeoServer:
    """The Nuxeo server behind `proxies`: the session sandbox's (stock). A module that runs its
    proxied tests in both policy modes overrides it with `policy_server`."""
    return sandbox.nuxeo


@pytest.fixture
def proxies(sandbox: Sandbox, proxied_server: NuxeoServer) -> Iterator[Proxies]:
    """Fault proxies in front of S3 and of the Nuxeo server, without faults until a test sets
    their policies."""
    s3_proxy = FaultProxy(sandbox.s3.endpoint.removeprefix("http://"), flavor=Flavor.S3)
    nuxeo_proxy = FaultProxy(f"127.0.0.1:{proxied_server.port}", flavor=Flavor.NUXEO)
    proxied_server.advertised_s3_endpoint = s3_proxy.url
    yield Proxies(
        s3_proxy,
        nuxeo_proxy,
        dataclasses.replace(info_of(sandbox, proxied_server), nuxeo_url=nuxeo_proxy.url + "/nuxeo"),
    )
    proxied_server.advertised_s3_endpoint = None
    s3_proxy.close()
    nuxeo_proxy.close()
