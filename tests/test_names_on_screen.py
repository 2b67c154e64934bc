"""File names, reasons and notices are shown as they are, never acted on: markup in a name is
text on every screen of the transfer manager, and control characters (terminal escapes,
newlines, bells), bidirectional controls and bytes that are not UTF-8 are shown escaped in the
app, in plain lines, in `nxup status` and in errors. `--json` keeps the exact names, escaped
by JSON, with no raw control character on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MIB,
    assert_document_holds,
    new_target_folder,
    nxup_env,
    run_nxup,
    screen_text,
    submit_add_dialog,
    until,
    write,
)
from nuxeo.client import Nuxeo

from engine.lifecycle import UploadStatus
from engine.text import json_line, printable
from sandbox import Sandbox
from tui.screens.add_files import AddFilesScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.parts import PartsScreen
from tui.screens.stale import StaleScreen

SIZE = (100, 30)
# What must never reach a terminal raw: C0 controls but the newline ending a line, DEL, C1.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name.txt", "plain name.txt"),
        ("été 日本語 🎉.txt", "été 日本語 🎉.txt"),
        ("x[a=b:c]y [bold]b[/].txt", "x[a=b:c]y [bold]b[/].txt"),
        ("new\nline\r\ttab", "new\\nline\\r\\ttab"),
        ("\x1b[31mred\x07\x00\x7f", "\\x1b[31mred\\x07\\x00\\x7f"),
        ("c1 \x9b2J \x85", "c1 \\x9b2J \\x85"),
        (
            "\u202eexe.txt \u200f \u2066 \u2028",
            "\\u202eexe.txt \\u200f \\u2066 \\u2028",
        ),
        (os.fsdecode(b"caf\xe9 \xff.txt"), "caf\\xe9 \\xff.txt"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_json_line_keeps_the_exact_name_without_raw_controls() -> None:
    name = os.fsdecode(b"caf\xe9") + "\x1b[31m\x9b\u202e\u2028é\n"
    line = json_line({"path": name})
    assert (
        not RAW_CONTROL.search(line) and "\u202e" not in line and "\u2028" not in line
    )
    assert "é" in line  # readable text stays readable
    assert json.loads(line) == {"path": name}
    assert os.fsencode(json.loads(line)["path"]).startswith(b"caf\xe9")


# -- the transfer manager --------------------------------------------------------------------


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def unwrapped(text: str) -> str:
    """Text without its white space: lines wrapped at the screen's width compare whole."""
    return re.sub(r"\s+", "", text)


def make_names(root: Path) -> dict[str, Path]:
    """Files whose names look like markup or hold control characters, and paths that fail."""
    folder = root / "in"
    paths = {
        "markup": folder / "x[a=b:c]y.txt",
        "bold": folder / "[bold]",
        "closing": folder / "a[" / "]z.txt",  # the path holds "[/]"
        "escape": folder / "\x1b[31mred\x07.txt",
        "newline": folder / "new\nline.txt",
        "big": folder / "[bold]big[red].bin",
    }
    for key, path in paths.items():
        write(path, 12 * MIB if key == "big" else 100 + len(key))
    not_utf8 = os.fsencode(folder) + b"/caf\xe9.txt"
    with open(not_utf8, "wb") as file:
        file.write(b"x")
    paths["not-utf8"] = Path(os.fsdecode(not_utf8))
    paths["missing"] = folder / "[" / "]gone[red].txt"  # the path holds "[/]"
    return paths


NOTICE = "aborted the obsolete multipart upload of /old/[bold]x[/] (\x1b[2Jgone)"


def test_markup_and_control_characters_in_names_on_every_screen(
    sandbox: Sandbox, make_app: Any, nuxeo: Nuxeo, tmp_path: Path
) -> None:
    folder = new_target_folder(nuxeo)
    paths = make_names(tmp_path)
    given = [p for k, p in paths.items() if k not in ("closing",)] + [
        paths["closing"].parent
    ]
    app = make_app(
        sandbox,
        tmp_path / "state",
        bandwidth_limit=3 * MIB,
        notices=[printable(NOTICE)],
        start=lambda m: m.add(given, folder),
    )
    rows_by_key: dict[str, int] = {}

    def row_of(key: str) -> Any:
        return app.model.rows[rows_by_key[key]]

    def settled() -> bool:
        rows = {r.path: r for r in app.model.rows.values()}
        if len(rows) < len(paths):
            return False
        rows_by_key.update({k: rows[str(p)].file_id for k, p in paths.items()})
        small = [row_of(k) for k in paths if k != "big"]
        return (
            all(r.status in (UploadStatus.DONE, UploadStatus.FAILED) for r in small)
            and row_of("big").sent > 0
        )

    async def scenario() -> None:
        # Notifications on: a toast reads its text as markup unless told otherwise.
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(
                pilot,
                settled,
                what="every small file settled and the big one uploading",
            )
            names = (
                "x[a=b:c]y.txt",
                "[bold]",
                "]z.txt",
                "\\x1b[31mred\\x07.txt",
                "new\\nline.txt",
                "caf\\xe9.txt",
                "]gone[red].txt",
                "[bold]big[red].bin",
                "(\\x1b[2Jgone)",
            )
            # The list is drawn a moment after the rows change.
            await until(pilot, lambda: all(shown in screen_text(app) for shown in names), what="every name")
            text = screen_text(app)
            assert not RAW_CONTROL.search(text.replace("\n", ""))
            files = app.transfers.files  # type: ignore[union-attr]

            # The detail line of each row: the full name, and the reason of a failed one.
            expected_detail = {
                "markup": "x[a=b:c]y.txt → ",
                "closing": "]z.txt → ",
                "escape": "\\x1b[31mred\\x07.txt → ",
                "not-utf8": "caf\\xe9.txt: the file name is not valid UTF-8",
                "missing": "]gone[red].txt: no such file or directory",
            }
            detail = app.screen.query_one("#detail")
            for key, start in expected_detail.items():
                files.select_file(rows_by_key[key])
                await until(
                    pilot,
                    lambda start=start: str(detail.render()).startswith(start),
                    timeout=5,
                    what=f"the detail of {key} to start with {start!r}",
                )

            # The parts of the big file, then a cancel question naming it (answered no).
            files.select_file(rows_by_key["big"])
            await pilot.press("enter")
            assert isinstance(app.screen, PartsScreen)
            title = app.screen.query_one("#parts-title")
            await until(
                pilot,
                lambda: str(title.render()).startswith("[bold]big[red].bin · "),
                timeout=5,
                what="the parts title",
            )
            await pilot.press("c")
            assert isinstance(app.screen, ConfirmScreen)
            assert "Cancel [bold]big[red].bin? Its multipart upload" in screen_text(app)
            await pilot.press("n")
            await pilot.press("escape")

            # Stale uploads: the big file's multipart upload is nxup's, named in its row.
            await pilot.press("s")
            assert isinstance(app.screen, StaleScreen)
            await until(
                pilot, lambda: app.screen.table.row_count > 0, what="the stale list"
            )  # type: ignore[attr-defined]
            # The whole name in its row (100 columns leave it room), markup shown as text.
            await until(
                pilot,
                lambda: "● [bold]big[red].bin" in screen_text(app),
                timeout=5,
                what="the big file's row",
            )
            detail = str(app.screen.query_one("#stale-detail").render())
            assert f" · {paths['big']} (" in detail, detail
            await pilot.press("escape")

            app.clear_notifications()  # toasts would cover the log's lines
            await pilot.press("l")
            assert isinstance(app.screen, LogScreen)
            expected_log = [
                f"failed: {tmp_path}/in/caf\\xe9.txt: the file name is not valid UTF-8 (rename it to upload it)",
                f"failed: {tmp_path}/in/[/]gone[red].txt: no such file or directory",
                f"done: {tmp_path}/in/\\x1b[31mred\\x07.txt -> {folder}/\\x1b[31mred\\x07.txt",
                printable(NOTICE),
            ]
            log = unwrapped(screen_text(app))
            for line in expected_log:
                assert line in app.model.log, (line, app.model.log)
                assert unwrapped(line) in log, (line, log)
            await pilot.press("escape")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")

            # The add dialog: a missing path that looks like markup, then a target that does
            # not exist, whose error is a notification.
            await pilot.press("a")
            assert isinstance(app.screen, AddFilesScreen)
            app.screen.query_one("#path").value = "/nope/[/]x\x1b"  # type: ignore[attr-defined]
            await submit_add_dialog(pilot)
            assert (
                str(app.screen.query_one("#problem").render())
                == "/nope/[/]x\\x1b: no such file or directory"
            )
            app.screen.query_one("#path").value = str(paths["markup"])  # type: ignore[attr-defined]
            app.screen.query_one("#target").value = "/default-domain/[bold]nope[/]"  # type: ignore[attr-defined]
            await submit_add_dialog(pilot)
            await until(
                pilot,
                lambda: (
                    "error: the target folder /default-domain/[bold]nope[/] does not exist"
                    in " ".join(app.model.log)
                ),
                what="the error",
            )
            await until(
                pilot,
                lambda: (
                    "/default-domain/[bold]nope[/] does not exist"
                    in screen_text(app).replace("\n", " ")
                ),
                timeout=5,
                what="the error's notification",
            )

            app.manager.set_bandwidth_limit(None)
            await until(
                pilot,
                lambda: row_of("big").status is UploadStatus.DONE,
                timeout=60,
                what="the big file",
            )
            await pilot.press("q")

    run(scenario())
    for key in ("markup", "bold", "escape", "newline", "big"):
        record = app.manager.store.get(rows_by_key[key])
        assert record is not None and record.doc_uid
        assert_document_holds(
            nuxeo, record.doc_uid, name=paths[key].name, content=paths[key].read_bytes()
        )


# -- plain lines, JSON lines, status and errors ------------------------------------------------


def test_plain_json_and_status_show_control_characters_escaped(
    sandbox: Sandbox, nuxeo: Nuxeo, target_folder: str, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    names = [
        "\x1b[31mred\x07.txt",
        "carriage\rreturn.txt",
        "new\nline.txt",
        "c1\x9b2J.txt",
        "\u202eexe.txt",
        "line\u2028sep.txt",
    ]
    contents = {
        name: write(folder / name, 10 + index) for index, name in enumerate(names)
    }
    with open(os.fsencode(folder) + b"/caf\xe9.txt", "wb") as file:
        file.write(b"x")
    env = nxup_env(sandbox.info, tmp_path / "state")

    plain = run_nxup(["upload", str(folder), "--to", target_folder, "--no-tui", "-v"], env)
    assert plain.returncode == 1
    assert not RAW_CONTROL.search(plain.stdout + plain.stderr)
    for name in names:
        assert any(
            line.startswith("done") and f"{folder}/{printable(name)} (" in line
            for line in plain.stdout.splitlines()
        ), (name, plain.stdout)
    (failed,) = [
        line for line in plain.stdout.splitlines() if line.startswith("failed")
    ]
    assert failed.endswith(
        f"] {folder}/caf\\xe9.txt: the file name is not valid UTF-8 (rename it to upload it)"
    )
    landed = {
        d.title: d for d in nuxeo.documents.get_children(path=f"{target_folder}/in")
    }
    for name, content in contents.items():
        assert_document_holds(nuxeo, landed[name].uid, name=name, content=content)

    as_json = run_nxup(["upload", str(folder), "--to", target_folder, "--json"], env)
    assert not RAW_CONTROL.search(as_json.stdout) and "\u202e" not in as_json.stdout
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    # The second run finds the same bytes in place (skipped); the bad name fails again.
    paths = {e["path"] for e in events if e["event"] in ("skipped", "failed")}
    assert paths == {str(folder / name) for name in names} | {
        os.fsdecode(os.fsencode(folder) + b"/caf\xe9.txt")
    }

    status = run_nxup(["status"], env)
    assert not RAW_CONTROL.search(status.stdout)
    assert f"{folder}/\\x1b[31mred\\x07.txt (" in status.stdout
    status_json = run_nxup(["status", "--json"], env)
    assert not RAW_CONTROL.search(status_json.stdout)
    assert str(folder / "new\nline.txt") in {
        json.loads(line)["path"] for line in status_json.stdout.splitlines()
    }


def test_errors_show_control_characters_escaped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "a.txt"
    write(path, 10)
    env = nxup_env(sandbox.info, tmp_path / "state")
    missing = run_nxup(
        [
            "upload",
            str(path),
            "--to",
            "/default-domain/workspaces/nope\u202e",
            "--no-tui",
        ],
        env,
    )
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        f"nxup: {sandbox.info.nuxeo_url}: the target folder /default-domain/workspaces/nope\\u202e"
        f" does not exist on Nuxeo"
    ]
    control = run_nxup(["upload", str(path), "--to", "/default-domain/\x1b[2J", "--no-tui"], env)
    assert control.returncode == 2
    assert "Error: --to /default-domain/\\x1b[2J: not a Nuxeo folder path" in control.stderr
    assert not RAW_CONTROL.search(missing.stderr + control.stderr)
