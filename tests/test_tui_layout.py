"""The transfer manager's layout and order: active files first (a virtual list that stays cheap
with 10,000 files), the cursor following its file, every key said in the footer, the help saying
how it closes, names cut in the middle, the closing summary in place of the totals, the demo's
length, and the add dialog's dropdown of path completions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from textual.widgets import Input
from tui_fixed import fixed_app, folder_to_complete, settle

from cli.demo import LARGE_SIZES_MIB
from cli.sandbox_commands import demo
from engine.events import FileCompleted, FilePaused, FileStarted
from engine.lifecycle import UploadStatus
from engine.planning import MiB
from engine.units import parse_rate
from tui.screens.add_files import AddFilesScreen
from tui.screens.help import HelpScreen
from tui.widgets.file_list import ColumnWidths, middle_cut
from tui.widgets.path_completion import PathDropdown
from tui.widgets.row_order import RowOrder

S = UploadStatus


def test_active_files_come_first_each_group_in_queued_order() -> None:
    order = RowOrder()
    statuses = [S.DONE, S.QUEUED, S.UPLOADING, S.FAILED, S.PAUSED, S.UPLOADING, S.CANCELLED, S.QUEUED]
    for file_id, status in enumerate(statuses):
        order.place(file_id, status)
    assert [order[i] for i in range(len(order))] == [2, 5, 1, 4, 7, 3, 0, 6]
    assert [order.index(file_id) for file_id in (2, 5, 1, 4, 7, 3, 0, 6)] == list(range(8))
    # A change within a group moves nothing; a change of group moves the row to its place.
    assert not order.place(1, S.PAUSED)
    assert order.place(2, S.DONE)
    assert [order[i] for i in range(len(order))] == [5, 1, 4, 7, 3, 0, 2, 6]
    assert order[-1] == 6 and 99 not in order and order.index(99) is None


def test_ten_thousand_files_in_order() -> None:
    order = RowOrder()
    for file_id in range(10_000):
        order.place(file_id, S.QUEUED)
    for file_id in range(0, 10_000, 7):  # every seventh one finishes, every eleventh starts
        order.place(file_id, S.DONE)
    for file_id in range(5, 10_000, 11):
        order.place(file_id, S.UPLOADING)
    expected = sorted(
        range(10_000),
        key=lambda f: (0 if f % 11 == 5 else 3 if f % 7 == 0 else 1, f),
    )
    assert [order[i] for i in range(0, 10_000, 97)] == expected[::97]
    assert all(order.index(f) == i for i, f in enumerate(expected) if i % 101 == 0)


def test_the_name_column_gets_the_room_and_names_keep_their_end() -> None:
    at_80, at_160 = ColumnWidths.for_width(79), ColumnWidths.for_width(159)
    assert at_80.name >= 28 and at_80.state >= len("uploading") + 1
    assert at_160.name >= 60 and at_160.state > 40  # a failure's reason fits
    cut = middle_cut("2026-03-14 survey of the north warehouse (final).pdf", 27)
    assert len(cut) == 27 and cut.startswith("2026-03-14 s") and cut.endswith("(final).pdf") and "…" in cut
    assert middle_cut("short.txt", 27) == "short.txt"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_cursor_follows_its_file_until_it_is_finished() -> None:
    app = fixed_app()

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            files = app.transfers.files
            listed = [files.order[i] for i in range(files.row_count)]
            assert listed[:2] == [3, 4] and listed[-2:] == [1, 2]  # uploading, paused … done
            files.select_file(5)  # a queued file
            # It starts: it moves up to the files uploading, and the cursor with it.
            app.bridge(FileStarted(5, path="/home/jdoe/notes/meeting notes.txt", size=12_345, multipart=False,
                                   part_size=12_345, part_count=1))
            await until_true(pilot, lambda: files.order.index(5) == 1)
            assert files.selected_file_id == 5 and files.cursor == 1
            # Paused, it goes back among the queued ones, still selected.
            app.bridge(FilePaused(5, path="/home/jdoe/notes/meeting notes.txt"))
            await until_true(pilot, lambda: files.order.index(5) == 2)
            assert files.selected_file_id == 5
            # Finished, it goes to the end; the cursor stays where it was, on the next file.
            app.bridge(FileCompleted(5, path="/home/jdoe/notes/meeting notes.txt", size=12_345,
                                     document_path="/x/meeting notes.txt", document_uid="u5", etag='"e"'))
            await until_true(pilot, lambda: files.order[-1] == 5)
            assert files.cursor == 2 and files.selected_file_id == 6
            detail = app.screen.query_one("#detail")
            await until_true(pilot, lambda: "budget.xlsx" in str(detail.render()))
            # A finished file selected stays selected when the rows above it move.
            files.select_file(1)
            before = files.cursor
            app.bridge(FileCompleted(3, path="/home/jdoe/video/interview-raw.mp4", size=734 * MiB,
                                     document_path="/x/interview-raw.mp4", document_uid="u3", etag='"e"'))
            await until_true(pilot, lambda: files.order.index(3) > files.order.index(1))
            assert files.selected_file_id == 1 and files.cursor == before - 1

    run(scenario())


async def until_true(pilot: Any, condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("never came true")


def test_every_key_is_in_the_footer_at_80_columns_and_the_help_says_how_it_closes() -> None:
    app = fixed_app()

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            footer = app.screen.query_one("Footer")
            await until_true(pilot, lambda: len(footer.query("FooterKey")) >= 11)
            keys = {key.key: key for key in footer.query("FooterKey")}
            for key in ("space", "c", "P", "R", "enter", "plus", "a", "s", "l", "question_mark", "q"):
                assert key in keys or any(key in k.split(",") for k in keys), f"{key} not in the footer"
            assert all(key.region.right <= 80 and key.region.width > 0 for key in keys.values())
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            text = str(app.screen.query_one("#help-keys").render()) + str(app.screen.query_one("#help-title").render())
            assert "esc" in text and "close" in text
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("question_mark", "q")
            assert not isinstance(app.screen, HelpScreen) and app.is_running  # q closes the help only

    run(scenario())


def test_the_closing_summary_takes_the_place_of_the_totals() -> None:
    app = fixed_app()

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for row in app.model.rows.values():
                if row.file_id > 0 and row.status is not S.DONE:
                    app.bridge(FileCompleted(row.file_id, path=row.path, size=row.size, document_path=f"/x/{row.name}",
                                             document_uid="u", etag='"e"'))
            totals = app.screen.query_one("#totals")
            await until_true(pilot, lambda: "All done" in str(totals.render()))
            assert "7 uploaded" in str(totals.render()) and "1 failed" in str(totals.render())
            assert not app._notifications  # no toast over the list
            assert app.transfers.files.row_count == 8

    run(scenario())


def test_the_demo_lasts_long_enough_to_try_every_key() -> None:
    """The default files at the default cap take 60 to 90 seconds (20 were too few to try the keys)."""
    defaults = {param.name: param.default for param in demo.params}
    large = sum(LARGE_SIZES_MIB[: defaults["large"]]) * MiB
    small = defaults["files"] * 128 * 1024  # the small files' mean size
    rate = parse_rate(defaults["limit"])
    assert rate is not None and 60 <= (large + small) / rate <= 90
    assert "5MiB/s" in CliRunner().invoke(demo, ["--help"]).output


def test_the_add_dialog_offers_a_dropdown_of_path_completions(tmp_path: Path, monkeypatch: Any) -> None:
    folder_to_complete(tmp_path)
    monkeypatch.chdir(tmp_path)
    app = fixed_app()

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("a")
            assert isinstance(app.screen, AddFilesScreen)
            field = app.screen.query_one("#path", Input)
            dropdown = app.screen.query_one(PathDropdown)
            await pilot.press("n", "o")

            def offered() -> list[str]:
                options = dropdown.option_list
                return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

            await until_true(pilot, lambda: dropdown.display and offered() == ["notes report.txt", "notes-2026/"])
            # The suggestion ahead of the cursor is the dropdown's first entry.
            await until_true(pilot, lambda: field._suggestion == "notes report.txt")
            await pilot.press("down", "tab")  # the second entry: a folder, whose entries come next
            assert field.value == "notes-2026/"
            await until_true(pilot, lambda: dropdown.display and offered() == ["inside.pdf"])
            await pilot.press("tab")
            assert field.value == "notes-2026/inside.pdf" and not dropdown.display
            # esc hides an open dropdown first, then closes the dialog.
            field.value = "notes"
            await until_true(pilot, lambda: dropdown.display)
            await pilot.press("escape")
            assert not dropdown.display and isinstance(app.screen, AddFilesScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, AddFilesScreen)

    run(scenario())
