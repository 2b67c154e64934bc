"""The list of files: a virtual table that renders only the rows on screen.

A DataTable measures every cell of every new row and rebuilds its row offsets whenever a cell
changes, which costs seconds with 10,000 files. Here a row is drawn from the model when it is
visible, so adding rows and updating progress cost the same for 10 files or 10,000.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from engine.lifecycle import UploadStatus
from engine.text import eta_text, size_text, speed_text
from tui.model import FileRow, TransferModel
from tui.widgets.row_list import RowList
from tui.widgets.row_order import RowOrder

BAR_WIDTH = 8
# Widths of the fixed columns, with the space after each; the name takes what they leave.
SIZE_WIDTH, PROGRESS_WIDTH, SPEED_WIDTH, ETA_WIDTH = 10, BAR_WIDTH + 6, 11, 6
STATE_WIDTH = 10  # "uploading", "cancelled"; a failure's reason when the row is wide
NAME_ROOM = 60  # a name wider than this is rare: beyond it, the state column gets the width
MIN_NAME_WIDTH = 12
REDRAW_INTERVAL_S = 0.25  # as often as the counters are sampled
_FIXED_WIDTH = SIZE_WIDTH + PROGRESS_WIDTH + SPEED_WIDTH + ETA_WIDTH + STATE_WIDTH

STATE_STYLE = {
    UploadStatus.QUEUED: Style(dim=True),
    UploadStatus.UPLOADING: Style(color="cyan", bold=True),
    UploadStatus.PAUSED: Style(color="yellow"),
    UploadStatus.DONE: Style(color="green"),
    UploadStatus.FAILED: Style(color="red", bold=True),
    UploadStatus.CANCELLED: Style(color="red", dim=True),
    UploadStatus.SKIPPED: Style(color="green", dim=True),
}


@dataclass(frozen=True)
class ColumnWidths:
    name: int
    state: int

    @classmethod
    def for_width(cls, width: int) -> ColumnWidths:
        room = max(MIN_NAME_WIDTH, width - _FIXED_WIDTH)
        extra = max(0, room - NAME_ROOM)
        return cls(name=room - extra, state=STATE_WIDTH + extra)


def progress_text(row: FileRow) -> Text:
    """Acknowledged bytes solid, bytes in flight lighter (a pause or a crash sends them again);
    the percentage is of acknowledged bytes, which never goes back."""
    solid = round(row.acknowledged_fraction * BAR_WIDTH)
    lighter = max(0, round(row.fraction * BAR_WIDTH) - solid)
    text = Text("█" * solid, style=STATE_STYLE.get(row.status, Style()))
    text.append("▓" * lighter, style=STATE_STYLE.get(row.status, Style()) + Style(dim=True))
    text.append("░" * (BAR_WIDTH - solid - lighter), style=Style(dim=True))
    text.append(f" {row.acknowledged_fraction * 100:3.0f}%")
    return text


def middle_cut(text: str, width: int) -> str:
    """`text` in `width` cells, cut in the middle so a name keeps its end (its extension, a
    number)."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    tail_width = (width - 1) // 2
    tail = ""
    for char in reversed(text):
        if cell_len(char + tail) > tail_width:
            break
        tail = char + tail
    head = set_cell_size(text, width - 1 - cell_len(tail)) if width - 1 > cell_len(tail) else ""
    return f"{head}…{tail}"


def _cell(text: str | Text, width: int, *, right: bool = False) -> Text:
    """A column's text and the space after it; cut with an ellipsis when it does not fit."""
    cell = text if isinstance(text, Text) else Text(text)
    cell.truncate(width - 1, overflow="ellipsis")
    if right:
        cell.pad_left(width - 1 - cell.cell_len)
    cell.pad_right(width - cell.cell_len)
    return cell


def state_cell(row: FileRow, width: int) -> Text:
    """The state; a failure's reason too when it fits (the detail line always shows it)."""
    text = row.state_text()
    if cell_len(text) > width - 1:
        text = row.status.value
    return Text(text, style=STATE_STYLE.get(row.status, Style()))


def _line(widths: ColumnWidths, name: str, size: str, progress: str | Text, speed: str, eta: str,
          state: str | Text) -> Text:
    line = _cell(name, widths.name)
    line.append_text(_cell(size, SIZE_WIDTH, right=True))
    line.append_text(_cell(progress, PROGRESS_WIDTH))
    line.append_text(_cell(speed, SPEED_WIDTH, right=True))
    line.append_text(_cell(eta, ETA_WIDTH, right=True))
    line.append_text(_cell(state, widths.state))
    return line


def row_text(row: FileRow, widths: ColumnWidths) -> Text:
    uploading = row.status is UploadStatus.UPLOADING
    return _line(
        widths, middle_cut(row.name, widths.name - 1), size_text(row.size), progress_text(row),
        speed_text(row.speed) if uploading else "", eta_text(row.eta) if uploading else "",
        state_cell(row, widths.state),
    )


def header_text(widths: ColumnWidths) -> Text:
    line = _line(widths, "Name", "Size", "Progress", "Speed", "ETA", "State")
    line.stylize("bold")
    return line


class FileList(RowList):
    """Active files first (see RowOrder); a cursor selects one and follows it as it moves, until
    it is finished: then the cursor stays where it was, on the file that took its place."""

    COMPONENT_CLASSES = {"file-list--header", "file-list--cursor", "file-list--stripe"}
    DEFAULT_CSS = """
    FileList { overflow-x: hidden; scrollbar-size-vertical: 1; }
    FileList > .file-list--header { background: $panel; }
    FileList > .file-list--cursor { background: $accent 40%; }
    FileList:focus > .file-list--cursor { background: $accent; }
    FileList > .file-list--stripe { background: $boost; }
    """

    @dataclass
    class Highlighted(Message):
        file_list: FileList
        file_id: int

    @dataclass
    class Selected(Message):
        file_list: FileList
        file_id: int

    def __init__(self, model: TransferModel, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.order = RowOrder()
        self.cursor = 0
        self._last_redraw = 0.0
        self.redraw_pending = False

    # -- data ---------------------------------------------------------------------------
    def sync(self, changed: Iterable[int]) -> None:
        """Rows are placed by their state; the screen is redrawn when a visible row changed or
        rows moved."""
        selected = self.selected_file_id
        top = self.scroll_offset.y
        bottom = top + max(1, self.size.height - 1)
        moved = visible = selected_moved = False
        rows = self.model.rows
        for file_id in sorted(changed):
            row = rows.get(file_id)
            if row is None:
                continue
            if self.order.place(file_id, row.status):
                moved = True
                selected_moved = selected_moved or file_id == selected
            elif not visible:
                index = self.order.index(file_id)
                visible = index is not None and top <= index < bottom
        if not moved:
            if visible:  # rows out of sight are drawn when scrolled to
                self._redraw()
            return
        self.virtual_size = Size(0, len(self.order) + 1)
        if selected is None:
            self._post_highlight()
        elif selected_moved and self.order.in_finished_group(selected):
            if self.selected_file_id != selected:
                self._post_highlight()  # the row that took the finished file's place
        else:
            index = self.order.index(selected)
            if index is not None and index != self.cursor:
                self._place_cursor(index, post=False)
        self._redraw()

    def _redraw(self) -> None:
        """Draw the rows again, at most every REDRAW_INTERVAL_S: with active files first, the
        rows on screen change with every file that starts or ends."""
        wait = self._last_redraw + REDRAW_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self.redraw_pending = False
            self._last_redraw = time.monotonic()
            self.refresh()
        elif not self.redraw_pending:
            self.redraw_pending = True
            self.set_timer(wait, self._redraw)

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def selected_file_id(self) -> int | None:
        if not self.order:
            return None
        return self.order[min(self.cursor, len(self.order) - 1)]

    def select_file(self, file_id: int) -> None:
        index = self.order.index(file_id)
        if index is not None:
            self._move_to(index)

    # -- drawing ------------------------------------------------------------------------
    @property
    def widths(self) -> ColumnWidths:
        return ColumnWidths.for_width(self.size.width)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            style = self.get_component_rich_style("file-list--header")
            return self._strip(header_text(self.widths), width, style)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.order):
            return Strip.blank(width, self.rich_style)
        row = self.model.rows.get(self.order[index])
        if row is None:
            return Strip.blank(width, self.rich_style)
        if index == self.cursor:
            # The cursor's colours over the row's: a state's colour on the cursor's is unreadable.
            cursor = self.get_component_rich_style("file-list--cursor")
            text = row_text(row, self.widths)
            text.stylize(cursor)
            return self._strip(text, width, cursor)
        background = self.get_component_rich_style("file-list--stripe") if index % 2 else self.rich_style
        return self._strip(row_text(row, self.widths), width, background)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(0, len(self.order) + 1)

    # -- cursor -------------------------------------------------------------------------
    def _cursor_index(self) -> int:
        return self.cursor

    def _row_total(self) -> int:
        return len(self.order)

    def _choose(self) -> None:
        self.action_select()

    def _move_to(self, index: int) -> None:
        if not self.order:
            return
        index = max(0, min(index, len(self.order) - 1))
        if index != self.cursor:
            self._place_cursor(index)

    def _place_cursor(self, index: int, *, post: bool = True) -> None:
        """Put the cursor on the row at `index` and scroll it into view."""
        self.cursor = index
        self._scroll_into_view(index)
        if post:
            self._post_highlight()

    def _post_highlight(self) -> None:
        file_id = self.selected_file_id
        if file_id is not None:
            self.post_message(self.Highlighted(self, file_id))

    def action_select(self) -> None:
        file_id = self.selected_file_id
        if file_id is not None:
            self.post_message(self.Selected(self, file_id))

