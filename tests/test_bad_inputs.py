"""Bad inputs, one row each: nxup names the file and the cause on one line, shows no traceback,
does not hang, still uploads the other files of the run, and exits as documented (0 when every
file landed, 1 when some failed, 2 for usage errors).

The rows about paths share one `nxup upload` run over all their paths (a run per row would cost
a second each); the rows that need a run of their own (a file changing under nxup, a wrong
server, a bad option) have one, with a good file next to the bad input where files are read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    assert_document_holds,
    new_target_folder,
    nxup_env,
    run_nxup,
    start_nxup,
)
from nuxeo.client import Nuxeo
from nuxeo.models import Document

from sandbox import Sandbox
from sandbox.ports import free_port

SINGLE_LIMIT = 5 * MIB
# Root reads every file whatever its mode, thanks to two capabilities. As root (as CI runs), the
# run goes without them: they leave the bounding set before nxup is executed, so that its root
# obeys file modes as any user does and the rows about unreadable paths really run. This is what
# `setpriv --bounding-set=-dac_override,-dac_read_search` does, with nothing to install.
_WITHOUT_FILE_CAPABILITIES = """
import ctypes, os, sys
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
libc = ctypes.CDLL(None, use_errno=True)
for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
    if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
        sys.exit(f"cannot drop capability {capability}: {os.strerror(ctypes.get_errno())}")
os.execv(sys.argv[1], sys.argv[1:])
"""
DROP_FILE_CAPABILITIES = (
    [sys.executable, "-c", _WITHOUT_FILE_CAPABILITIES] if os.geteuid() == 0 else []
)


def file_modes_unenforced(scratch: Path) -> str | None:
    """None when a file of mode 000 is unreadable to nxup's runs here; else why it is not."""
    locked = scratch / "mode-000"
    put(locked, b"x")
    locked.chmod(0)
    probe = subprocess.run(
        [
            *DROP_FILE_CAPABILITIES,
            sys.executable,
            "-c",
            "import sys; open(sys.argv[1]).close()",
            str(locked),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "PermissionError" in probe.stderr:
        return None
    return (
        probe.stderr.strip().splitlines()[-1]
        if probe.returncode
        else "a file of mode 000 is readable"
    )


@dataclass(frozen=True)
class Refused:
    """One `failed` line names `shown` (as printed: control characters and bad bytes escaped)
    and says `cause`."""

    shown: str
    cause: str


@dataclass(frozen=True)
class Lands:
    """Exactly one document titled `title` in `folder` (under the target) holds `content`."""

    title: str
    content: bytes
    folder: str = ""


@dataclass(frozen=True)
class Shows:
    """Some line of the output holds `text`."""

    text: str


@dataclass(frozen=True)
class Holds:
    """The documents in `folder` are titled exactly `titles`."""

    folder: str
    titles: frozenset[str]


Expectation = Refused | Lands | Shows | Holds


@dataclass
class Case:
    args: list[str]
    expect: list[Expectation]
    cwd: Path | None = None  # the run's working directory (one case at most)
    needs_permissions: bool = (
        False  # an unreadable file or folder: root must obey file modes
    )


CASES: dict[str, Callable[[Path], Case]] = {}


def case(name: str) -> Callable[[Callable[[Path], Case]], Callable[[Path], Case]]:
    def register(make: Callable[[Path], Case]) -> Callable[[Path], Case]:
        CASES[name] = make
        return make

    return register


def put(path: Path | bytes, content: bytes) -> bytes:
    """Write a file (a bytes path for names that are not UTF-8); returns the content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    return content


def landed_file(name: str, content: bytes = b"") -> Callable[[Path], Case]:
    """A file named `name`, given directly, that must land under its name."""

    def make(here: Path) -> Case:
        data = put(here / name, content or name.encode("utf-8", "replace"))
        return Case([str(here / name)], [Lands(name, data)])

    return make


# -- paths that do not name an uploadable file ------------------------------------------------


@case("missing path")
def _(here: Path) -> Case:
    return Case(
        [str(here / "missing.txt")],
        [Refused(f"{here}/missing.txt", "no such file or directory")],
    )


@case("empty path string")
def _(here: Path) -> Case:
    return Case([""], [Refused('""', "an empty path")])


@case("fifo")
def _(here: Path) -> Case:
    os.mkfifo(here / "pipe")
    return Case(
        [str(here / "pipe")], [Refused(f"{here}/pipe", "not a regular file (a FIFO)")]
    )


@case("socket")
def _(here: Path) -> Case:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(here / "sock"))
    listener.close()  # the socket file stays
    return Case(
        [str(here / "sock")], [Refused(f"{here}/sock", "not a regular file (a socket)")]
    )


@case("device")
def _(here: Path) -> Case:
    return Case(["/dev/null"], [Refused("/dev/null", "not a regular file (a device)")])


@case("symlink loop")
def _(here: Path) -> Case:
    (here / "loop").symlink_to(here / "loop")
    return Case(
        [str(here / "loop")],
        [Refused(f"{here}/loop", "too many levels of symbolic links (a symlink loop)")],
    )


@case("dangling symlink")
def _(here: Path) -> Case:
    (here / "dangling").symlink_to(here / "gone")
    return Case(
        [str(here / "dangling")],
        [Refused(f"{here}/dangling", "no such file or directory")],
    )


@case("path over 4096 bytes")
def _(here: Path) -> Case:
    path = str(here) + "/" + "d" * 200 + ("/" + "d" * 200) * 20 + "/f.txt"
    assert len(path.encode()) > 4096
    return Case([path], [Refused(path, "file name too long")])


@case("unreadable file")
def _(here: Path) -> Case:
    put(here / "secret.txt", b"x")
    (here / "secret.txt").chmod(0)
    return Case(
        [str(here / "secret.txt")],
        [Refused(f"{here}/secret.txt", "permission denied")],
        needs_permissions=True,
    )


@case("unreadable folder")
def _(here: Path) -> Case:
    folder = here / "locked-parent"
    (folder / "locked").mkdir(parents=True)
    put(folder / "locked" / "inside.txt", b"never read")
    (folder / "locked").chmod(0)
    ok = put(folder / "ok.txt", b"next to a locked folder")
    return Case(
        [str(folder)],
        [
            Refused(f"{folder}/locked", "permission denied"),
            Holds("locked-parent", frozenset({"ok.txt"})),
            Lands("ok.txt", ok, folder="locked-parent"),
        ],
        needs_permissions=True,
    )


# -- names that are not UTF-8 -------------------------------------------------------------------


@case("file name not UTF-8")
def _(here: Path) -> Case:
    put(os.fsencode(here) + b"/caf\xe9.txt", b"latin-1 name")
    return Case(
        [os.fsdecode(os.fsencode(here) + b"/caf\xe9.txt")],
        [Refused(f"{here}/caf\\xe9.txt", "the file name is not valid UTF-8")],
    )


@case("folder with names not UTF-8")
def _(here: Path) -> Case:
    folder = here / "mixed"
    folder.mkdir()
    put(os.fsencode(folder) + b"/caf\xe9.txt", b"skipped")
    os.mkdir(os.fsencode(folder) + b"/dir\xff")
    put(os.fsencode(folder) + b"/dir\xff/inner.txt", b"skipped with its folder")
    fine = put(folder / "fine.txt", b"fine")
    return Case(
        [str(folder)],
        [
            Refused(f"{folder}/caf\\xe9.txt", "the file name is not valid UTF-8"),
            Refused(
                f"{folder}/dir\\xff",
                "the folder name is not valid UTF-8: its files are skipped",
            ),
            Holds("mixed", frozenset({"fine.txt"})),
            Lands("fine.txt", fine, folder="mixed"),
        ],
    )


@case("folder above not UTF-8")
def _(here: Path) -> Case:
    os.mkdir(os.fsencode(here) + b"/bad\xfe")
    put(os.fsencode(here) + b"/bad\xfe/inner.txt", b"x")
    return Case(
        [os.fsdecode(os.fsencode(here) + b"/bad\xfe/inner.txt")],
        [Refused(f"{here}/bad\\xfe/inner.txt", "the path is not valid UTF-8")],
    )


# -- paths spelled oddly ---------------------------------------------------------------------


@case("..")
def _(here: Path) -> Case:
    (here / "cwd").mkdir()
    up = put(here / "up.txt", b"one level up")
    return Case([".."], [Lands("up.txt", up, folder=here.name)], cwd=here / "cwd")


@case("path with .. segments")
def _(here: Path) -> Case:
    (here / "sub").mkdir()
    data = put(here / "seg.txt", b"through sub/..")
    return Case([f"{here}/sub/../seg.txt"], [Lands("seg.txt", data)])


@case(".. after a symbolic link")
def _(here: Path) -> Case:
    """`link/..` is the parent of the link's target, as for every other program."""
    (here / "deep" / "inner").mkdir(parents=True)
    physical = put(here / "deep" / "phys.txt", b"the file the system names")
    put(here / "phys.txt", b"the file a textual clean-up of the path would name")
    (here / "link").symlink_to(here / "deep" / "inner")
    return Case([f"{here}/link/../phys.txt"], [Lands("phys.txt", physical)])


@case(".. after a missing folder")
def _(here: Path) -> Case:
    put(here / "there.txt", b"x")
    return Case(
        [f"{here}/nope/../there.txt"],
        [Refused(f"{here}/nope/../there.txt", "no such file or directory")],
    )


@case("folder with trailing slashes")
def _(here: Path) -> Case:
    (here / "trail").mkdir()
    data = put(here / "trail" / "t.txt", b"in trail")
    return Case([f"{here}/trail///"], [Lands("t.txt", data, folder="trail")])


@case("symlink to a folder, given")
def _(here: Path) -> Case:
    (here / "real-dir").mkdir()
    data = put(here / "real-dir" / "l.txt", b"through the link")
    (here / "via-link").symlink_to(here / "real-dir")
    return Case([str(here / "via-link")], [Lands("l.txt", data, folder="via-link")])


@case("symlink to a folder, inside a folder")
def _(here: Path) -> Case:
    (here / "elsewhere").mkdir()
    put(here / "elsewhere" / "not-walked.txt", b"x")
    walked = here / "walked"
    walked.mkdir()
    (walked / "linked").symlink_to(here / "elsewhere")
    data = put(walked / "w.txt", b"walked")
    return Case(
        [str(walked)],
        [
            Refused(f"{walked}/linked", "a symbolic link to a folder (not followed)"),
            Holds("walked", frozenset({"w.txt"})),
            Lands("w.txt", data, folder="walked"),
        ],
    )


@case("same path twice")
def _(here: Path) -> Case:
    data = put(here / "twice.txt", b"named three times")
    spelled = [str(here / "twice.txt"), str(here / "twice.txt"), f"{here}/./twice.txt"]
    return Case(spelled, [Lands("twice.txt", data)])


@case("same folder twice")
def _(here: Path) -> Case:
    (here / "again").mkdir()
    data = put(here / "again" / "a.txt", b"walked twice")
    return Case(
        [str(here / "again"), f"{here}/again/"],
        [Holds("again", frozenset({"a.txt"})), Lands("a.txt", data, folder="again")],
    )


# -- sizes ---------------------------------------------------------------------------------


@case("empty file")
def _(here: Path) -> Case:
    put(here / "empty.txt", b"")
    return Case([str(here / "empty.txt")], [Lands("empty.txt", b"")])


@case("exactly the single-upload limit")
def _(here: Path) -> Case:
    data = put(here / "limit.bin", os.urandom(SINGLE_LIMIT))
    return Case(
        [str(here / "limit.bin")],
        [
            Lands("limit.bin", data),
            Shows(f"started   {here}/limit.bin (5.0 MiB, single upload)"),
        ],
    )


@case("one byte over the single-upload limit")
def _(here: Path) -> Case:
    data = put(here / "over.bin", os.urandom(SINGLE_LIMIT + 1))
    return Case(
        [str(here / "over.bin")],
        [
            Lands("over.bin", data),
            Shows(f"started   {here}/over.bin (5.0 MiB, 2 parts of 5.0 MiB)"),
        ],
    )


# -- names a user may well have ------------------------------------------------------------

case("spaces and quotes")(landed_file('it\'s a "quoted"  name .txt'))
case("% # ? & = +")(landed_file("100% #1 ?&=+.txt"))
case("unicode")(landed_file("été 日本語 ñ.txt"))
case("emoji")(landed_file("🎉📦 party.txt"))
case("name of 255 bytes")(landed_file("n" * 251 + ".txt"))
case("name of 255 bytes in two-byte characters")(landed_file("é" * 125 + "x.txt"))
case("markup")(landed_file("x[a=b:c]y [bold]b[red].txt"))


@case("markup across a folder and its file")
def _(here: Path) -> Case:
    (here / "a[").mkdir()
    data = put(here / "a[" / "]z.txt", b"the path holds [/]")
    return Case([str(here / "a[")], [Lands("]z.txt", data, folder="a[")])


@case("RTL marks")
def _(here: Path) -> Case:
    name = "\u200fabc\u202etxt.exe"
    data = put(here / name, b"right to left")
    return Case(
        [str(here / name)],
        [Lands(name, data), Shows(f"{here}/\\u200fabc\\u202etxt.exe")],
    )


@case("newline in the name")
def _(here: Path) -> Case:
    data = put(here / "new\nline.txt", b"two lines in a name")
    return Case(
        [str(here / "new\nline.txt")],
        [Lands("new\nline.txt", data), Shows(f"{here}/new\\nline.txt")],
    )


@case("terminal escapes in the name")
def _(here: Path) -> Case:
    name = "\x1b[31mred\x07bell\rcr\x9b2J.txt"
    data = put(here / name, b"escapes")
    return Case(
        [str(here / name)],
        [Lands(name, data), Shows(f"{here}/\\x1b[31mred\\x07bell\\rcr\\x9b2J.txt")],
    )


# -- the shared run --------------------------------------------------------------------------


@dataclass
class SharedRun:
    result: Any
    cases: dict[str, Case]
    client: Nuxeo
    target: str
    elapsed_s: float
    # Why file modes do not bind nxup here (the rows about unreadable paths then skip).
    unenforced: str | None
    _children: dict[str, list[Any]] = field(default_factory=dict)

    def children(self, folder: str) -> list[Any]:
        if folder not in self._children:
            path = f"{self.target}/{folder}" if folder else self.target
            self._children[folder] = list(self.client.documents.get_children(path=path))
        return self._children[folder]

    @property
    def failed_lines(self) -> list[str]:
        return [
            line
            for line in self.result.stdout.splitlines()
            if line.startswith("failed")
        ]


@pytest.fixture(scope="module")
def shared_run(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> SharedRun:
    root = tmp_path_factory.mktemp("bad-inputs")
    unenforced = file_modes_unenforced(root)
    cases: dict[str, Case] = {}
    for index, (name, make) in enumerate(CASES.items()):
        here = root / f"c{index:02d}"
        here.mkdir()
        made = make(here)
        if made.needs_permissions and unenforced:
            continue
        cases[name] = made
    client = Nuxeo(
        host=sandbox.info.nuxeo_url, auth=(sandbox.info.user, sandbox.info.password)
    )
    target = new_target_folder(client)
    (cwd,) = [c.cwd for c in cases.values() if c.cwd is not None]
    args = [arg for c in cases.values() for arg in c.args]
    began = time.monotonic()
    result = run_nxup(
        [
            "upload",
            *args,
            "--to",
            target,
            "--no-tui",
            "--verbose",  # a line per file: what each name looks like on screen
            "--part-size",
            "5MiB",
            "--single-limit",
            "5MiB",
        ],
        nxup_env(sandbox.info, root / "state"),
        cwd=cwd,
        prefix=[] if unenforced else DROP_FILE_CAPABILITIES,
    )
    return SharedRun(
        result, cases, client, target, time.monotonic() - began, unenforced
    )


def test_shared_run_exits_1_in_time_with_one_line_per_failure(
    shared_run: SharedRun,
) -> None:
    result = shared_run.result
    assert result.returncode == 1, result.stdout + result.stderr
    assert shared_run.elapsed_s < 30, "a FIFO, a device or a folder made nxup hang"
    refused = [
        e for c in shared_run.cases.values() for e in c.expect if isinstance(e, Refused)
    ]
    assert len(shared_run.failed_lines) == len(refused), shared_run.failed_lines
    done = [line for line in result.stdout.splitlines() if line.startswith("done")]
    summary = result.stdout.splitlines()[-1]
    assert (
        summary.startswith(f"{len(done)} uploaded (")
        and f", {len(refused)} failed," in summary
    ), summary
    assert result.stderr == ""


def test_file_modes_bind_nxup_even_as_root_with_nothing_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows about unreadable paths run as root too (as CI runs), with no `setpriv` to find."""
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run there
    unenforced = file_modes_unenforced(tmp_path)
    if unenforced and unenforced.startswith("cannot drop capability"):
        pytest.skip(f"this system keeps root from dropping a capability: {unenforced}")
    assert unenforced is None


@pytest.mark.parametrize("name", list(CASES))
def test_row(shared_run: SharedRun, name: str) -> None:
    if name not in shared_run.cases:
        pytest.skip(
            f"file modes do not bind nxup here ({shared_run.unenforced}): it would read this path"
        )
    for expected in shared_run.cases[name].expect:
        if isinstance(expected, Refused):
            lines = [
                line
                for line in shared_run.failed_lines
                if f"] {expected.shown}: " in line
            ]
            assert len(lines) == 1, (expected, shared_run.failed_lines)
            assert (
                lines[0].split(f"] {expected.shown}: ", 1)[1].startswith(expected.cause)
            ), lines[0]
        elif isinstance(expected, Lands):
            documents = [
                d
                for d in shared_run.children(expected.folder)
                if d.title == expected.title
            ]
            assert len(documents) == 1, [
                d.title for d in shared_run.children(expected.folder)
            ]
            assert_document_holds(
                shared_run.client,
                documents[0].uid,
                name=expected.title,
                content=expected.content,
            )
        elif isinstance(expected, Shows):
            assert any(
                expected.text in line for line in shared_run.result.stdout.splitlines()
            ), expected.text
        else:
            assert {
                d.title for d in shared_run.children(expected.folder)
            } == expected.titles


# -- rows with a run of their own ------------------------------------------------------------


def event_of(events: list[dict[str, Any]], kind: str, path: Path) -> dict[str, Any]:
    (event,) = [e for e in events if e["event"] == kind and e.get("path") == str(path)]
    return event


def slow_upload(path: Path, good: Path, target: str) -> list[str]:
    """One multipart file sent slowly (5 MiB parts, one worker, 8 MiB/s) and a good file."""
    return [
        "upload",
        str(path),
        str(good),
        "--to",
        target,
        "--workers",
        "1",
        "--part-size",
        "5MiB",
        "--single-limit",
        "5MiB",
        "--limit",
        "8MiB/s",
    ]


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "good.txt"
    return path, put(path, b"a good file in the same run")


def assert_good_landed(
    nuxeo: Nuxeo, events: list[dict[str, Any]], good: tuple[Path, bytes]
) -> None:
    path, content = good
    assert_document_holds(
        nuxeo,
        event_of(events, "completed", path)["document_uid"],
        name=path.name,
        content=content,
    )


def test_row_file_that_grows_while_read(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    good: tuple[Path, bytes],
) -> None:
    path = tmp_path / "growing.log"
    put(path, os.urandom(10 * MIB + 11))
    child = start_nxup(
        slow_upload(path, good[0], target_folder),
        nxup_env(sandbox.info, tmp_path / "state"),
    )
    child.wait_for(lambda e: e["event"] == "part_completed")
    with path.open("ab") as grown:
        grown.write(os.urandom(3 * MIB))
    assert child.finish() == 0
    events = child.events
    assert any(e["event"] == "notice" and "changed" in e["message"] for e in events), (
        events
    )
    completed = event_of(events, "completed", path)
    assert_document_holds(
        nuxeo, completed["document_uid"], name=path.name, content=path.read_bytes()
    )
    assert_good_landed(nuxeo, events, good)


def test_row_file_that_shrinks_while_read(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    good: tuple[Path, bytes],
) -> None:
    path = tmp_path / "shrinking.bin"
    put(path, os.urandom(10 * MIB + 11))
    child = start_nxup(
        slow_upload(path, good[0], target_folder),
        nxup_env(sandbox.info, tmp_path / "state"),
    )
    child.wait_for(lambda e: e["event"] == "part_completed")
    os.truncate(path, 6_000_000)
    assert child.finish() == 0
    events = child.events
    # As one that grows: started over, and the document holds what the file holds now.
    assert any(e["event"] == "notice" and "changed" in e["message"] for e in events), (
        events
    )
    completed = event_of(events, "completed", path)
    assert_document_holds(
        nuxeo, completed["document_uid"], name=path.name, content=path.read_bytes()
    )
    assert_good_landed(nuxeo, events, good)


def test_row_file_deleted_after_being_queued(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    good: tuple[Path, bytes],
) -> None:
    # One worker admits two files at a time: the third is opened once one of them is done.
    first, second, doomed = (
        tmp_path / "first.bin",
        tmp_path / "second.bin",
        tmp_path / "doomed.txt",
    )
    put(first, os.urandom(6 * MIB))
    put(second, os.urandom(6 * MIB))
    put(doomed, b"deleted before nxup opens it")
    child = start_nxup(
        slow_upload(first, second, target_folder) + [str(doomed), str(good[0])],
        nxup_env(sandbox.info, tmp_path / "state"),
    )
    child.wait_for(lambda e: e["event"] == "queued" and e["path"] == str(doomed))
    doomed.unlink()
    assert child.finish() == 1
    events = child.events
    assert event_of(events, "failed", doomed)["reason"] == "no such file or directory"
    for path in (first, second):
        completed = event_of(events, "completed", path)
        assert_document_holds(
            nuxeo, completed["document_uid"], name=path.name, content=path.read_bytes()
        )
    assert_good_landed(nuxeo, events, good)


def test_row_folder_of_2000_files(
    sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(2000):
        put(folder / f"f{index:04d}.txt", str(index).encode())
    began = time.monotonic()
    result = run_nxup(
        ["upload", str(folder), "--to", target_folder, "--no-tui", "--workers", "16"],
        nxup_env(sandbox.info, tmp_path / "state"),
        timeout=120,
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert result.stdout.splitlines()[-1].startswith("2000 uploaded ("), result.stdout[
        -300:
    ]
    documents = {
        d.title: d for d in nuxeo.documents.get_children(path=f"{target_folder}/many")
    }
    assert set(documents) == {f"f{index:04d}.txt" for index in range(2000)}
    for index in (0, 1234, 1999):
        name = f"f{index:04d}.txt"
        assert_document_holds(
            nuxeo, documents[name].uid, name=name, content=str(index).encode()
        )
    # No file waits on another: about 15 s here. The bound only catches a stall (a request per
    # file held for seconds); how fast small files go is the benchmark's figure.
    assert elapsed < 90


def test_row_working_folder_removed(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    good: tuple[Path, bytes],
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    # nxup starts in a folder removed under it: relative paths name nothing, absolute ones do.
    in_removed_folder = ["sh", "-c", 'cd "$0" && rmdir "$0" && exec "$@"', str(gone)]
    result = run_nxup(
        ["upload", "x.txt", str(good[0]), "--to", target_folder, "--no-tui"],
        nxup_env(sandbox.info, tmp_path / "state"),
        prefix=in_removed_folder,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (failed,) = [
        line for line in result.stdout.splitlines() if line.startswith("failed")
    ]
    assert failed.endswith("] x.txt: no such file or directory"), failed
    (document,) = nuxeo.documents.get_children(path=target_folder)
    assert_document_holds(nuxeo, document.uid, name=good[0].name, content=good[1])


def one_error_line(result: Any) -> str:
    assert result.stdout == ""
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    return line


def test_row_target_folder_that_does_not_exist(
    sandbox: Sandbox, tmp_path: Path, good: tuple[Path, bytes]
) -> None:
    result = run_nxup(
        [
            "upload",
            str(good[0]),
            "--to",
            "/default-domain/workspaces/nowhere",
            "--no-tui",
        ],
        nxup_env(sandbox.info, tmp_path / "state"),
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.endswith(
        ": the target folder /default-domain/workspaces/nowhere does not exist on Nuxeo"
    ), line


def test_row_target_that_is_a_file_document(
    sandbox: Sandbox,
    nuxeo: Nuxeo,
    target_folder: str,
    tmp_path: Path,
    good: tuple[Path, bytes],
) -> None:
    document = nuxeo.documents.create(
        Document(name="a-file", type="File", properties={"dc:title": "a-file"}),
        parent_path=target_folder,
    )
    result = run_nxup(
        ["upload", str(good[0]), "--to", document.path, "--no-tui"],
        nxup_env(sandbox.info, tmp_path / "state"),
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.endswith(
        f"the target {document.path} is a File document, not a folder"
    ), line
    assert [d.title for d in nuxeo.documents.get_children(path=target_folder)] == [
        "a-file"
    ]


def test_row_wrong_password(
    sandbox: Sandbox, tmp_path: Path, good: tuple[Path, bytes]
) -> None:
    result = run_nxup(
        ["upload", str(good[0]), "--to", "/default-domain/workspaces", "--no-tui"],
        nxup_env(sandbox.info, tmp_path / "state", password="not-the-password"),
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert (
        line
        == f"nxup: {sandbox.info.nuxeo_url}: Nuxeo rejected the user name or password (401)"
    ), line


def test_row_unreachable_server(
    sandbox: Sandbox, tmp_path: Path, good: tuple[Path, bytes]
) -> None:
    """With the login in the URL: the line names the server by its bare URL."""
    env = nxup_env(sandbox.info, tmp_path / "state")
    del env["NUXEO_PASSWORD"]
    bare = f"http://127.0.0.1:{free_port()}/nuxeo"
    env["NUXEO_URL"] = bare.replace(
        "http://", f"http://{sandbox.info.user}:pw-in-the-url@"
    )
    began = time.monotonic()
    result = run_nxup(
        ["upload", str(good[0]), "--to", "/default-domain/workspaces", "--no-tui"],
        env,
        timeout=30,
    )
    # A refused connection is tried again once, then one line: about 2 s here, most of it the
    # interpreter starting. The bound catches a hang or a retry loop on a loaded machine.
    assert time.monotonic() - began < 15
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"nxup: {bare}: cannot reach the Nuxeo server"), line
    assert "pw-in-the-url" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--part-size", "1MiB", "Invalid value for '--part-size': must be between 5 MiB and 5 GiB"),
        ("--part-size", "6GiB", "Invalid value for '--part-size': must be between 5 MiB and 5 GiB"),
        ("--part-size", "big", "Invalid value for '--part-size': not a size: 'big'"),
        ("--single-limit", "-1", "Invalid value for '--single-limit': not a size: '-1'"),
        ("--limit", "fast", "Invalid value for '--limit': not a size: 'fast'"),
        ("--limit", "\x1b[31m", "Invalid value for '--limit': not a size: '\\x1b[31m'"),
        ("--workers", "0", "0 is not in the range 1<=x<=64"),
        ("--workers", "65", "65 is not in the range 1<=x<=64"),
        ("--workers", "x", "'x' is not a valid integer"),
        ("--checksum", "md5", "'md5' is not one of"),
        # botocore needs its CRT extension for CRC32C, which the install does not carry.
        ("--checksum", "crc32c", "--checksum crc32c needs botocore's CRT extension"),
        (
            "--to",
            os.fsdecode(b"/default-domain/caf\xe9"),
            "--to /default-domain/caf\\xe9: not a Nuxeo folder path",
        ),
    ],
    ids=lambda value: (
        str(value).encode("unicode_escape", "backslashreplace").decode()[:30]
    ),
)
def test_row_bad_option(
    sandbox: Sandbox,
    tmp_path: Path,
    good: tuple[Path, bytes],
    option: str,
    value: str,
    message: str,
) -> None:
    args = [
        "upload",
        str(good[0]),
        "--to",
        "/default-domain/workspaces",
        "--no-tui",
        option,
        value,
    ]
    result = run_nxup(args, nxup_env(sandbox.info, tmp_path / "state"))
    assert result.returncode == 2, result.stdout + result.stderr
    (error,) = [
        line for line in result.stderr.splitlines() if line.startswith("Error:")
    ]
    assert message in error, error
    assert "\x1b" not in result.stderr
    assert not (tmp_path / "state").exists(), (
        "a usage error must stop nxup before it starts"
    )
