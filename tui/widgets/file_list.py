"""The list of files: a virtual table that renders only the rows on screen.

A DataTable measures every cell of every new row and rebuilds its row offsets whenever a cell
changes, which costs seconds with 10,000 files. Here a row is drawn from the model when it is
visible, so adding rows and updating progress cost the same for 10 files or 10,000.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.state import UploadStatus
from engine.text import eta_text, size_text, speed_text
from tui.model import FileRow, TransferModel

BAR_WIDTH = 8
# (title, width); the name column takes what the others leave.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("Size", 10), ("Progress", 14), ("Speed", 11), ("ETA", 6), ("State", 12),
)
_FIXED_WIDTH = sum(width for _, width in COLUMNS)
MIN_NAME_WIDTH = 12

STATE_STYLE = {
    UploadStatus.QUEUED: Style(dim=True),
    UploadStatus.UPLOADING: Style(color="cyan", bold=True),
    UploadStatus.PAUSED: Style(color="yellow"),
    UploadStatus.DONE: Style(color="green"),
    UploadStatus.FAILED: Style(color="red", bold=True),
    UploadStatus.CANCELLED: Style(color="red", dim=True),
}


def progress_text(row: FileRow) -> Text:
    fraction = row.fraction
    filled = round(fraction * BAR_WIDTH)
    text = Text("█" * filled, style=STATE_STYLE.get(row.status, Style()))
    text.append("░" * (BAR_WIDTH - filled), style=Style(dim=True))
    text.append(f" {fraction * 100:3.0f}%")
    return text


def _cell(text: str | Text, width: int, *, right: bool = False) -> Text:
    cell = text if isinstance(text, Text) else Text(text)
    cell.truncate(width - 1, overflow="ellipsis")
    if right:
        cell.pad_left(width - 1 - cell.cell_len)
    cell.pad_right(width - cell.cell_len)
    return cell


def row_text(row: FileRow, name_width: int) -> Text:
    uploading = row.status is UploadStatus.UPLOADING
    line = _cell(row.name, name_width)
    line.append_text(_cell(size_text(row.size), 10))
    line.append_text(_cell(progress_text(row), 14))
    line.append_text(_cell(speed_text(row.speed) if uploading else "", 11))
    line.append_text(_cell(eta_text(row.eta) if uploading else "", 6))
    line.append_text(_cell(Text(row.state_text(), style=STATE_STYLE.get(row.status, Style())), 12))
    return line


def header_text(name_width: int) -> Text:
    line = _cell("Name", name_width)
    for title, width in COLUMNS:
        line.append_text(_cell(title, width))
    line.stylize("bold")
    return line


class FileList(ScrollView, can_focus=True):
    """Rows in the order files were queued; a cursor selects one."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Parts", show=False),
    ]
    COMPONENT_CLASSES = {"file-list--header", "file-list--cursor", "file-list--stripe"}
    DEFAULT_CSS = """
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
        self.order: list[int] = []
        self._index: dict[int, int] = {}
        self.cursor = 0

    # -- data ---------------------------------------------------------------------------
    def sync(self, changed: Iterable[int]) -> None:
        """New rows go to the end; visible rows are redrawn from the model."""
        added = False
        top = self.scroll_offset.y
        bottom = top + max(1, self.size.height - 1)
        visible = False
        for file_id in sorted(changed):
            if file_id not in self._index and file_id in self.model.rows:
                self._index[file_id] = len(self.order)
                self.order.append(file_id)
                added = True
            index = self._index.get(file_id)
            visible = visible or (index is not None and top <= index < bottom)
        if added:
            self.virtual_size = Size(self.size.width, len(self.order) + 1)
            if len(self.order) == 1:
                self._post_highlight()
        if visible:  # rows out of sight are drawn when scrolled to
            self.refresh()

    @property
    def row_count(self) -> int:
        return len(self.order)

    @property
    def selected_file_id(self) -> int | None:
        if not self.order:
            return None
        return self.order[min(self.cursor, len(self.order) - 1)]

    def select_file(self, file_id: int) -> None:
        index = self._index.get(file_id)
        if index is not None:
            self._move_to(index)

    # -- drawing ------------------------------------------------------------------------
    @property
    def name_width(self) -> int:
        return max(MIN_NAME_WIDTH, self.size.width - _FIXED_WIDTH)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            style = self.get_component_rich_style("file-list--header")
            return self._strip(header_text(self.name_width), width, style)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.order):
            return Strip.blank(width, self.rich_style)
        row = self.model.rows.get(self.order[index])
        if row is None:
            return Strip.blank(width, self.rich_style)
        if index == self.cursor:
            background = self.get_component_rich_style("file-list--cursor")
        elif index % 2:
            background = self.get_component_rich_style("file-list--stripe")
        else:
            background = self.rich_style
        return self._strip(row_text(row, self.name_width), width, background)

    def _strip(self, text: Text, width: int, background: Style) -> Strip:
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop_extend(0, width, background)
        return strip.apply_style(background) if background else strip

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.order) + 1)

    # -- cursor -------------------------------------------------------------------------
    @property
    def _page(self) -> int:
        return max(1, self.size.height - 2)

    def _move_to(self, index: int) -> None:
        if not self.order:
            return
        index = max(0, min(index, len(self.order) - 1))
        if index == self.cursor:
            return
        self.cursor = index
        top = self.scroll_offset.y
        visible_rows = max(1, self.size.height - 1)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible_rows:
            self.scroll_to(y=index - visible_rows + 1, animate=False)
        self.refresh()
        self._post_highlight()

    def _post_highlight(self) -> None:
        file_id = self.selected_file_id
        if file_id is not None:
            self.post_message(self.Highlighted(self, file_id))

    def action_cursor(self, step: int) -> None:
        self._move_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        self._move_to(self.cursor + step * self._page)

    def action_jump(self, where: int) -> None:
        self._move_to(len(self.order) - 1 if where < 0 else 0)

    def action_select(self) -> None:
        file_id = self.selected_file_id
        if file_id is not None:
            self.post_message(self.Selected(self, file_id))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move_to(self.scroll_offset.y + event.y - 1)
            if event.chain == 2:
                self.action_select()

