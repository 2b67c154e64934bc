"""Deciding a taken name locally (engine/existing) and the patterns (engine/inputs): no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import nxup_env, run_nxup

from engine.existing import Action, ExistingDocument, ExistingPolicy, FolderListing, NameTaken, decide
from engine.inputs import IgnoredPath, LocalFile, PathFilter, expand
from sandbox import Sandbox


def _doc(title: str, *, length: int = 5, digest: str = "d1", name: str | None = None) -> ExistingDocument:
    return ExistingDocument(uid=f"u-{title}", title=title, path=f"/t/{name or title}", type="File", holds_files=True,
                            length=length, digest=digest, digest_algorithm="MD5")


def _decide(listing: FolderListing, policy: ExistingPolicy, digest: str = "d1") -> Action:
    return decide(listing, title="a.txt", path="/x/a.txt", size=5, policy=policy,
                  digest=lambda _path, _algorithm: digest).action


@pytest.mark.parametrize(("policy", "same", "different"), [
    (ExistingPolicy.VERSION, Action.SKIP, Action.VERSION),
    (ExistingPolicy.SKIP, Action.SKIP, Action.SKIP),
    (ExistingPolicy.RENAME, Action.RENAME, Action.RENAME),
])
def test_each_policy_on_the_same_and_different_bytes(policy: ExistingPolicy, same: Action, different: Action) -> None:
    listing = FolderListing.of("/t", [_doc("a.txt")])
    assert _decide(listing, policy) is same
    assert _decide(listing, policy, digest="other") is different
    assert _decide(FolderListing.of("/t", []), policy) is Action.CREATE


def test_fail_raises_only_for_different_bytes() -> None:
    listing = FolderListing.of("/t", [_doc("a.txt")])
    assert _decide(listing, ExistingPolicy.FAIL) is Action.SKIP
    with pytest.raises(NameTaken, match=r"^exists in /t \(different bytes\)$"):
        _decide(listing, ExistingPolicy.FAIL, digest="other")


def test_the_file_is_not_read_when_no_document_has_its_length() -> None:
    listing = FolderListing.of("/t", [_doc("a.txt", length=6)])

    def never(_path: str, _algorithm: str) -> str:
        raise AssertionError("read")

    assert decide(listing, title="a.txt", path="/x", size=5, policy=ExistingPolicy.VERSION, digest=never).action \
        is Action.VERSION


def test_a_version_goes_to_the_document_named_after_its_title() -> None:
    listing = FolderListing.of("/t", [_doc("a.txt", name="a.txt.1796035907015", digest="x"), _doc("a.txt", digest="y")])
    decision = decide(listing, title="a.txt", path="/x", size=5, policy=ExistingPolicy.VERSION,
                      digest=lambda _p, _a: "z")
    assert decision.document is not None and decision.document.path == "/t/a.txt"


def test_free_titles_count_the_folder_and_this_run() -> None:
    listing = FolderListing.of("/t", [_doc("a.txt"), _doc("a (2).txt")])
    listing.reserved.add("a (3).txt")
    assert listing.free_title("a.txt") == "a (4).txt"
    assert listing.free_title(".bashrc") == ".bashrc (2)"


def test_patterns_prune_folders_and_spare_files_named_on_the_command_line(tmp_path: Path) -> None:
    for relative in ("keep.txt", ".hidden", "skip.log", "out/x.txt", "deep/a/.DS_Store"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    patterns = PathFilter(exclude=["*.log", "out/"])
    items = list(expand([tmp_path, tmp_path / ".hidden"], "/t", patterns))
    sent = sorted(str(i.path.relative_to(tmp_path)) for i in items if isinstance(i, LocalFile))
    ignored = sorted(Path(i.path).relative_to(tmp_path).as_posix() for i in items if isinstance(i, IgnoredPath))
    assert sent == [".hidden", "keep.txt"]  # .hidden named on its own
    assert ignored == [".hidden", "deep/a/.DS_Store", "out", "skip.log"]


def test_a_bad_existing_value_is_a_usage_error(sandbox: Sandbox, tmp_path: Path) -> None:
    result = run_nxup(["upload", str(tmp_path), "--to", "/t", "--existing", "overwrite"],
                      nxup_env(sandbox.info, tmp_path / "state"))
    assert result.returncode == 2 and "--existing" in result.stderr
