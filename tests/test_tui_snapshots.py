"""Snapshots of every screen of the transfer manager (the stale screen has its own) in a fixed
state, at 80×24 (the size of an SSH session, where nothing that matters may be cut) and at
160×50 (where the columns give the names and the failure reasons the room)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import until
from tui_fixed import fixed_app, folder_to_complete, settle

from tui.screens.add_files import AddFilesScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.parts import PartsScreen
from tui.widgets.path_completion import PathDropdown

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]


async def shown(pilot: Any, condition: Callable[[], Any], what: str) -> None:
    await until(pilot, condition, timeout=10, what=what)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_transfers_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_parts_view(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_parts(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.transfers.files.select_file(3)
        await pilot.press("enter")
        await shown(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, PartsScreen)
                and str(pilot.app.screen.query_one("#parts-title").render())
            ),
            "the parts of the file",
        )

    assert snap_compare(fixed_app(), terminal_size=size, run_before=open_parts)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def open_help(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await shown(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help")

    assert snap_compare(fixed_app(), terminal_size=size, run_before=open_help)


@pytest.mark.parametrize("size", SIZES)
def test_failed_row_detail(snap_compare: Any, size: tuple[int, int]) -> None:
    async def select_failed(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.transfers.files.select_file(-1)
        detail = pilot.app.screen.query_one("#detail")
        await shown(
            pilot,
            lambda: "not a regular file" in str(detail.render()),
            "the failed row's detail",
        )

    assert snap_compare(fixed_app(), terminal_size=size, run_before=select_failed)


def test_cancel_confirmation(snap_compare: Any) -> None:
    async def ask_cancel(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.transfers.files.select_file(3)
        await pilot.press("c")
        await shown(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the question")

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=ask_cancel)


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((120, 30), id="120x30")])
def test_quit_question_is_whole(snap_compare: Any, size: tuple[int, int]) -> None:
    async def ask_quit(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("q")
        await shown(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the question")

    assert snap_compare(fixed_app(), terminal_size=size, run_before=ask_quit)


def test_error_is_whole(snap_compare: Any) -> None:
    async def fail(pilot: Any) -> None:
        await settle(pilot)
        pilot.app._report_error(
            "cannot log in to https://nuxeo.example.com/nuxeo as jdoe: 401 Unauthorized (wrong user or password)"
        )
        await shown(pilot, lambda: isinstance(pilot.app.screen, ErrorScreen), "the error")

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=fail)


def test_log_screen(snap_compare: Any) -> None:
    async def open_log(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("l")
        await shown(pilot, lambda: isinstance(pilot.app.screen, LogScreen), "the log")

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=open_log)


def test_add_files_dialog_with_its_completions(snap_compare: Any, tmp_path: Path, monkeypatch: Any) -> None:
    folder_to_complete(tmp_path)
    monkeypatch.chdir(tmp_path)

    async def open_add(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("a")
        await shown(pilot, lambda: isinstance(pilot.app.screen, AddFilesScreen), "the dialog")
        for field in pilot.app.screen.query("Input"):
            field.cursor_blink = False  # a blinking cursor would be caught either way
        await pilot.press("n", "o")
        dropdown = pilot.app.screen.query_one(PathDropdown)
        await shown(pilot, lambda: dropdown.display and dropdown.option_list.option_count == 2, "the completions")

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=open_add)


def test_last_row_selected_in_a_long_list(snap_compare: Any) -> None:
    """The selected last row is on screen, with no empty scrollbar line over it."""

    async def select_last(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("end")
        files = pilot.app.transfers.files
        await shown(pilot, lambda: files.cursor == files.row_count - 1, "the last row selected")

    assert snap_compare(fixed_app(more_queued=40), terminal_size=(80, 24), run_before=select_last)
