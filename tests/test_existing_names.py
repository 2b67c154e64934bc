"""Uploading into a folder that already holds documents of the same names (`--existing`), the
include/exclude patterns with the default ignore list, and `--dry-run`: the real `nxup` against
the sandbox, run twice where the second run is the point."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import nxup_env, run_nxup
from nuxeo.client import Nuxeo

from sandbox import Sandbox


def _children(nuxeo: Nuxeo, folder: str) -> dict[str, list[dict[str, Any]]]:
    """The live documents of `folder`, by title."""
    uid = nuxeo.documents.get(path=folder).uid
    answer = nuxeo.client.request("GET", "api/v1/query/NXQL", params={
        "query": f"SELECT * FROM Document WHERE ecm:parentId = '{uid}' AND ecm:isTrashed = 0", "pageSize": 1000,
    }).json()
    by_title: dict[str, list[dict[str, Any]]] = {}
    for entry in answer["entries"]:
        by_title.setdefault(entry["title"], []).append(entry)
    return by_title


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _upload(sandbox: Sandbox, state: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = run_nxup(["upload", *args, "--json"], nxup_env(sandbox.info, state))
    return result.returncode, _events(result.stdout), result.stderr


def _blob_bytes(s3_admin: Any, bucket: str, entry: dict[str, Any]) -> bytes:
    """The bytes of the document's blob, read from S3 where the sandbox keeps it."""
    blob = entry["properties"]["file:content"]
    digest = blob["digest"]
    for page in s3_admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="upload/"):
        for item in page.get("Contents", []):
            body = s3_admin.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            if hashlib.md5(body).hexdigest() == digest and len(body) == int(blob["length"]):
                return body
    raise AssertionError(f"no object holds {entry['path']}'s blob")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha" * 100)
    (root / "b.bin").write_bytes(os.urandom(3000))
    return root


def test_version_skips_the_same_bytes_and_versions_the_changed_file(
        sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tree: Path, tmp_path: Path, s3_admin: Any) -> None:
    code, _, err = _upload(sandbox, tmp_path / "s1", str(tree), "--to", target_folder)
    assert code == 0, err
    (tree / "b.bin").write_bytes(b"changed" * 700)
    code, events, err = _upload(sandbox, tmp_path / "s2", str(tree), "--to", target_folder)
    assert code == 0, err
    skipped = [e for e in events if e["event"] == "skipped"]
    assert [Path(e["path"]).name for e in skipped] == ["a.txt"]
    assert skipped[0]["reason"] == f"same bytes in {target_folder}/docs/a.txt"
    (done,) = [e for e in events if e["event"] == "completed"]
    assert done["version_label"] == "0.1"
    children = _children(nuxeo, f"{target_folder}/docs")
    assert sorted(children) == ["a.txt", "b.bin"] and all(len(docs) == 1 for docs in children.values())
    (b_doc,) = children["b.bin"]
    assert b_doc["uid"] == done["document_uid"] and b_doc["versionLabel"] == "0.1"
    assert _blob_bytes(s3_admin, sandbox.info.bucket, b_doc) == b"changed" * 700
    summary = events[-1]
    assert (summary["done"], summary["skipped"], summary["failed"]) == (1, 1, 0)
    # Skipped files are journaled as such, and sent nothing (no batch, no object key).
    with sqlite3.connect(tmp_path / "s2" / "state.db") as db:
        rows = db.execute("SELECT status, action, batch_id, object_key, note FROM uploads ORDER BY path").fetchall()
    assert rows[0][:4] == ("skipped", "skip", None, None) and "same bytes" in rows[0][4]
    assert rows[1][:2] == ("done", "version")
    # `nxup status` says why a file was skipped, in lines and in JSON.
    env = nxup_env(sandbox.info, tmp_path / "s2")
    shown = run_nxup(["status"], env).stdout
    (line,) = [line for line in shown.splitlines() if "a.txt" in line]
    assert "skipped" in line and line.endswith(f"same bytes in {target_folder}/docs/a.txt")
    rows_json = [json.loads(line) for line in run_nxup(["status", "--json"], env).stdout.splitlines()]
    assert [row["note"] for row in rows_json if row["status"] == "skipped"] == [
        f"same bytes in {target_folder}/docs/a.txt"
    ]


def test_skip_never_touches_an_existing_name(
    sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tree: Path, tmp_path: Path
) -> None:
    assert _upload(sandbox, tmp_path / "s1", str(tree), "--to", target_folder)[0] == 0
    (tree / "b.bin").write_bytes(b"changed")
    (tree / "c.txt").write_bytes(b"new")
    code, events, err = _upload(sandbox, tmp_path / "s2", str(tree), "--to", target_folder, "--existing", "skip")
    assert code == 0, err
    assert sorted(Path(e["path"]).name for e in events if e["event"] == "skipped") == ["a.txt", "b.bin"]
    assert [Path(e["path"]).name for e in events if e["event"] == "completed"] == ["c.txt"]
    children = _children(nuxeo, f"{target_folder}/docs")
    assert children["b.bin"][0]["properties"]["file:content"]["length"] == "3000"
    assert children["b.bin"][0]["versionLabel"] == "0.0"


def test_rename_makes_a_new_document_under_a_free_title(
    sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tree: Path, tmp_path: Path, s3_admin: Any
) -> None:
    for run in range(3):
        code, events, err = _upload(
            sandbox, tmp_path / f"s{run}", str(tree / "a.txt"), "--to", target_folder, "--existing", "rename"
        )
        assert code == 0, err
    children = _children(nuxeo, target_folder)
    assert sorted(children) == ["a (2).txt", "a (3).txt", "a.txt"]
    renamed = children["a (3).txt"][0]
    assert renamed["path"] == f"{target_folder}/a (3).txt"
    assert _blob_bytes(s3_admin, sandbox.info.bucket, renamed) == b"alpha" * 100


def test_fail_names_the_file_and_the_others_go_on(
    sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tree: Path, tmp_path: Path
) -> None:
    assert _upload(sandbox, tmp_path / "s1", str(tree), "--to", target_folder)[0] == 0
    (tree / "b.bin").write_bytes(b"changed")
    (tree / "c.txt").write_bytes(b"new")
    code, events, _ = _upload(sandbox, tmp_path / "s2", str(tree), "--to", target_folder, "--existing", "fail")
    assert code == 1
    (failed,) = [e for e in events if e["event"] == "failed"]
    assert Path(failed["path"]).name == "b.bin"
    assert failed["reason"] == f"exists in {target_folder}/docs (different bytes)"
    assert [Path(e["path"]).name for e in events if e["event"] == "skipped"] == ["a.txt"]
    assert [Path(e["path"]).name for e in events if e["event"] == "completed"] == ["c.txt"]
    assert len(_children(nuxeo, f"{target_folder}/docs")["b.bin"]) == 1


def test_default_ignore_list_and_patterns(sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tmp_path: Path) -> None:
    root = tmp_path / "site"
    for relative in (
        "index.html",
        "about.html",
        "notes.txt",
        ".DS_Store",
        "Thumbs.db",
        "draft.tmp",
        "Icon\r",
        ".git/objects/ab/cdef",
        "build/out.html",
        "sub/page.html",
        "sub/~$lock.docx",
    ):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(relative.encode())
    code, events, err = _upload(
        sandbox, tmp_path / "s1", str(root), "--to", target_folder, "--exclude", "build/", "--include", "*.html"
    )
    assert code == 0, err
    sent = sorted(Path(e["path"]).relative_to(root).as_posix() for e in events if e["event"] == "completed")
    assert sent == ["about.html", "index.html", "sub/page.html"]
    ignored = sorted(Path(e["path"]).relative_to(root).as_posix() for e in events if e["event"] == "ignored")
    assert ignored == [".DS_Store", ".git", "Icon\r", "Thumbs.db", "build", "draft.tmp", "notes.txt", "sub/~$lock.docx"]
    assert events[-1]["ignored"] == 8
    assert sorted(_children(nuxeo, f"{target_folder}/site")) == ["about.html", "index.html", "sub"]
    # Plain output counts them; --no-default-excludes sends the hidden and system files.
    result = run_nxup(
        [
            "upload",
            str(root),
            "--to",
            target_folder,
            "--no-tui",
            "--no-default-excludes",
            "--exclude",
            ".git/",
            "--existing",
            "skip",
        ],
        nxup_env(sandbox.info, tmp_path / "s2"),
    )
    assert result.returncode == 0, result.stderr
    assert "1 ignored by patterns" in result.stdout and "3 skipped" in result.stdout
    assert ".DS_Store" in _children(nuxeo, f"{target_folder}/site")


def test_dry_run_prints_the_plan_and_sends_nothing(
    sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tree: Path, tmp_path: Path, s3_admin: Any
) -> None:
    assert _upload(sandbox, tmp_path / "s1", str(tree), "--to", target_folder)[0] == 0
    (tree / "b.bin").write_bytes(b"changed")
    (tree / "c.txt").write_bytes(b"x" * 1024)
    (tree / ".DS_Store").write_bytes(b"junk")
    objects_before = s3_admin.list_objects_v2(Bucket=sandbox.info.bucket, Prefix="upload/").get("KeyCount", 0)
    state = tmp_path / "dry"
    result = run_nxup(["upload", str(tree), "--to", target_folder, "--dry-run"], nxup_env(sandbox.info, state))
    assert result.returncode == 0, result.stderr
    where = f"{target_folder}/docs"
    lines = result.stdout.splitlines()
    assert f"skip {tree}/a.txt: same bytes in {where}/a.txt" in lines
    assert f"new version of {tree}/b.bin (7 B) → {where}/b.bin" in lines
    assert f"upload {tree}/c.txt (1.0 KiB) → {where}/c.txt" in lines
    assert any(line.startswith(f"ignore {tree}/.DS_Store: ") for line in lines)
    assert lines[-1].startswith("dry run: 2 to send") and "nothing was sent" in lines[-1]
    renamed = run_nxup(
        ["upload", str(tree), "--to", target_folder, "--dry-run", "--json", "--existing", "rename"],
        nxup_env(sandbox.info, state),
    )
    planned = {Path(e["path"]).name: e for e in _events(renamed.stdout) if e["event"] == "dry_run"}
    assert planned["a.txt"]["action"] == "rename" and planned["a.txt"]["destination"] == f"{where}/a (2).txt"
    failing = run_nxup(
        ["upload", str(tree), "--to", target_folder, "--dry-run", "--existing", "fail"], nxup_env(sandbox.info, state)
    )
    assert failing.returncode == 1
    assert f"fail {tree}/b.bin: exists in {where} (different bytes)" in failing.stdout.splitlines()
    # Nothing sent, nothing journaled, no batch: S3 holds what it held, the folder is unchanged.
    assert s3_admin.list_objects_v2(Bucket=sandbox.info.bucket, Prefix="upload/").get("KeyCount", 0) == objects_before
    assert sorted(_children(nuxeo, where)) == ["a.txt", "b.bin"]
    if (state / "state.db").exists():
        with sqlite3.connect(state / "state.db") as db:
            assert db.execute("SELECT count(*) FROM uploads").fetchone()[0] == 0


@pytest.mark.parametrize("kind", ["LOSE_REPLY", "RESET_RESPONSE"])
def test_a_version_whose_answer_is_lost_is_made_once(
    proxies: Any, nuxeo: Nuxeo, target_folder: str, tmp_path: Path, s3_admin: Any, kind: str
) -> None:
    """The server made the version but its answer was lost: the HTTP layer sends the PUT again
    (its changeToken makes the server refuse the repeat), and nxup finds its bytes in the
    document: one new version, not two."""
    from faultproxy import Fault, FaultKind, ScriptedFaults

    path = tmp_path / "a.txt"
    path.write_bytes(b"first")
    env = nxup_env(proxies.info, tmp_path / "state")
    assert run_nxup(["upload", str(path), "--to", target_folder, "--no-tui"], env).returncode == 0
    path.write_bytes(b"second version")
    fault = FaultKind[kind]
    proxies.nuxeo.policy = ScriptedFaults([(lambda h: h.method == "PUT" and "/api/v1/id/" in h.path, Fault(fault))])
    result = run_nxup(["upload", str(path), "--to", target_folder, "--json"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert proxies.nuxeo.counts[fault] == 1
    (doc,) = _children(nuxeo, target_folder)["a.txt"]
    assert doc["versionLabel"] == "0.1"
    assert _blob_bytes(s3_admin, proxies.info.bucket, doc) == b"second version"
