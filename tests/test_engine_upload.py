"""End-to-end uploads through the engine and the sandbox: single PUTs, multipart uploads, the
single-upload boundary, many files, mirrored folders, empty files and odd names."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    EventLog,
    Sandboxes,
    Served,
    assert_landed,
    new_target_folder,
    write,
)
from nuxeo.client import Nuxeo

from engine.events import FileCompleted, FileFailed, FileStarted, PartCompleted
from sandbox import Sandbox


def upload_and_wait(
    manager: Any,
    events: EventLog,
    paths: list[Path],
    target: str,
    *,
    timeout: float = 60,
) -> None:
    manager.add(paths, target)
    assert manager.wait(timeout=timeout), "uploads did not finish"
    assert not events.of(FileFailed), [e.reason for e in events.of(FileFailed)]


def test_single_upload(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager()
    path = tmp_path / "report.pdf"
    content = write(path, 1 * MIB + 123)
    upload_and_wait(manager, events, [path], target_folder)
    (started,) = events.of(FileStarted)
    assert not started.multipart and started.part_count == 1
    answer = assert_landed(
        manager, events, nuxeo, s3_admin, path, content=content
    ).object
    assert "-" not in answer["ETag"]
    assert answer["ContentType"] == "application/pdf"


def test_multipart_upload_with_a_shorter_last_part(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager()
    path = tmp_path / "big.bin"
    content = write(path, 12 * MIB + 4321)
    upload_and_wait(manager, events, [path], target_folder)
    (started,) = events.of(FileStarted)
    assert (
        started.multipart and started.part_count == 3 and started.part_size == 5 * MIB
    )
    sizes = {e.number: e.size for e in events.of(PartCompleted)}
    assert sizes == {1: 5 * MIB, 2: 5 * MIB, 3: 2 * MIB + 4321}
    assert len(events.of(PartCompleted)) == 3  # each part sent once
    answer = assert_landed(
        manager, events, nuxeo, s3_admin, path, content=content
    ).object
    assert answer["ETag"].strip('"').endswith("-3")


def test_single_upload_limit_is_inclusive(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager(single_upload_limit=5 * MIB)
    at_limit, above = tmp_path / "at-limit.bin", tmp_path / "above-limit.bin"
    contents = {at_limit: write(at_limit, 5 * MIB), above: write(above, 5 * MIB + 1)}
    upload_and_wait(manager, events, [at_limit, above], target_folder)
    started = {e.path: e for e in events.of(FileStarted)}
    assert not started[str(at_limit)].multipart
    assert started[str(above)].multipart and started[str(above)].part_count == 2
    etags = {
        p: assert_landed(manager, events, nuxeo, s3_admin, p, content=c)
        .object["ETag"]
        .strip('"')
        for p, c in contents.items()
    }
    assert "-" not in etags[at_limit]
    assert etags[above].endswith("-2")


def test_many_small_files_all_land(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager(workers=8)
    contents = {
        tmp_path / f"file-{i:02d}.txt": write(
            tmp_path / f"file-{i:02d}.txt", 100 + 97 * i
        )
        for i in range(60)
    }
    upload_and_wait(manager, events, list(contents), target_folder, timeout=120)
    assert len(events.of(FileCompleted)) == 60
    for path, content in contents.items():
        assert_landed(manager, events, nuxeo, s3_admin, path, content=content)
    children = nuxeo.documents.get_children(path=target_folder)
    assert sorted(child.title for child in children) == sorted(p.name for p in contents)


def test_folders_are_mirrored_as_folder_documents(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager()
    root = tmp_path / "photos"
    contents = {
        root / "top.txt": write(root / "top.txt", 10),
        root / "2024" / "jan.jpg": write(root / "2024" / "jan.jpg", 2000),
        root / "2024" / "summer" / "beach.jpg": write(
            root / "2024" / "summer" / "beach.jpg", 3000
        ),
    }
    (root / "empty-dir").mkdir()
    upload_and_wait(manager, events, [root], target_folder)
    for path, content in contents.items():
        assert_landed(manager, events, nuxeo, s3_admin, path, content=content)
    for relative in ("photos", "photos/2024", "photos/2024/summer"):
        folder = nuxeo.documents.get(path=f"{target_folder}/{relative}")
        assert folder.type == "Folder"
    by_path = {e.path: e for e in events.of(FileCompleted)}
    beach = nuxeo.documents.get(
        uid=by_path[str(root / "2024" / "summer" / "beach.jpg")].document_uid
    )
    assert beach.path == f"{target_folder}/photos/2024/summer/beach.jpg"
    top = nuxeo.documents.get(uid=by_path[str(root / "top.txt")].document_uid)
    assert top.path == f"{target_folder}/photos/top.txt"


def test_empty_file_uploads_as_an_empty_blob(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
) -> None:
    manager, events = make_manager()
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    upload_and_wait(manager, events, [path], target_folder)
    (started,) = events.of(FileStarted)
    assert not started.multipart and started.size == 0
    assert_landed(manager, events, nuxeo, s3_admin, path, content=b"")


@pytest.mark.parametrize(
    "name",
    ["été 日本語 ñ.txt", "with  two spaces .bin", "new\nline.txt", "#hash%25?.md"],
)
def test_odd_names_keep_their_title(
    make_manager: Callable[..., tuple[Any, EventLog]],
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    s3_admin: Any,
    target_folder: str,
    tmp_path: Path,
    name: str,
) -> None:
    manager, events = make_manager()
    path = tmp_path / name
    content = write(path, 777)
    upload_and_wait(manager, events, [path], target_folder)
    assert_landed(manager, events, nuxeo, s3_admin, path, content=content)


@pytest.fixture
def handler_default_first(sandboxes: Sandboxes) -> Served:
    """A server that lists the default upload handler before the S3 one."""
    return sandboxes.server(default_handler_first=True)


def test_server_listing_default_handler_first_still_gets_s3(
    make_manager: Callable[..., tuple[Any, EventLog]],
    make_nuxeo: Callable[..., Nuxeo],
    handler_default_first: Served,
    tmp_path: Path,
) -> None:
    info = handler_default_first.info
    client = make_nuxeo(info)
    handlers = client.client.request("GET", "api/v1/upload/handlers").json()["handlers"]
    assert handlers[0]["name"] == "default"
    manager, events = make_manager(info=info)
    target = new_target_folder(client)
    path = tmp_path / "via-s3.bin"
    content = write(path, 6 * MIB)
    upload_and_wait(manager, events, [path], target)
    assert events.of(FileStarted)[0].multipart
    s3 = handler_default_first.s3.admin_client()
    assert_landed(manager, events, client, s3, path, content=content)
    assert manager.store.get(events.of(FileCompleted)[0].file_id).handler == "s3"


def test_engine_imports_without_textual() -> None:
    code = "import engine.manager, sys; assert 'textual' not in sys.modules, 'textual was imported'"
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
