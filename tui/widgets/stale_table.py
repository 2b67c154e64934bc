"""The table of stale uploads: a virtual table that draws only the rows on screen.

Rows are laid out for the width at hand when drawn, so a wider terminal shows more of each key
(its end: the prefix is shared, the end says which upload) and of each file name; sorting or
filtering 10,000 uploads reorders a list of ids and measures nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.cells import cell_len, get_character_cell_size
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from engine.stale import StaleUpload, total_bytes
from engine.text import age_text, printable, size_text
from tui.widgets.row_list import RowList

SELECT_WIDTH, AGE_WIDTH, PARTS_WIDTH, SIZE_WIDTH = 2, 6, 6, 10
_FIXED_WIDTH = SELECT_WIDTH + AGE_WIDTH + PARTS_WIDTH + SIZE_WIDTH
MIN_NXUP_WIDTH, MAX_NXUP_WIDTH = 10, 28
MIN_KEY_WIDTH = 12


def tail(text: str, width: int) -> str:
    """The end of `text` in `width` cells, "…" in front when it is cut: the end of a key says
    which upload it is (its prefix is shared by many)."""
    if cell_len(text) <= width:
        return text
    kept, used = len(text), 1
    while kept > 0 and used + get_character_cell_size(text[kept - 1]) <= width:
        kept -= 1
        used += get_character_cell_size(text[kept])
    return "…" + text[kept:]


def both_ends(text: str, width: int) -> str:
    """`text` in `width` cells keeping both ends: a file name's start and its extension."""
    if cell_len(text) <= width:
        return text
    if width < 3:
        return tail(text, width)
    head = Text(text)
    head.truncate((width - 1) // 2, overflow="crop")
    return head.plain + tail(text, width - head.cell_len)


def nxup_text(upload: StaleUpload, width: int) -> Text:
    """Whose upload it is: ▶ nxup can resume it, ✗ nxup's but not resumable, ● a running nxup
    sends it (never aborted here), — not nxup's."""
    tracked = upload.tracked
    if tracked is None:
        return Text("—", style="dim")
    name = both_ends(printable(tracked.file_name), width - 2)
    if tracked.in_use_by is not None:
        return Text(f"● {name}", style="cyan")
    return Text(f"▶ {name}", style="green") if tracked.resumable else Text(f"✗ {name}", style="yellow")


def parts_text(upload: StaleUpload) -> Text:
    if upload.parts is not None:
        return Text(str(upload.parts))
    return Text("!", style="red") if upload.note else Text("…")


def _cell(text: str | Text, width: int, *, right: bool = False) -> Text:
    """`text` in a column of `width` cells, the last one a gap."""
    cell = text if isinstance(text, Text) else Text(text)
    cell.truncate(width - 1, overflow="ellipsis")
    if right:
        cell.pad_left(width - 1 - cell.cell_len)
    cell.pad_right(width - cell.cell_len)
    return cell


@dataclass(frozen=True, slots=True)
class Layout:
    """Column widths for a table `width` cells wide: the key takes what the others leave."""

    nxup: int
    key: int

    @classmethod
    def for_width(cls, width: int) -> Layout:
        rest = max(width - _FIXED_WIDTH, MIN_NXUP_WIDTH + MIN_KEY_WIDTH)
        nxup = max(MIN_NXUP_WIDTH, min(MAX_NXUP_WIDTH, rest // 3))
        return cls(nxup=nxup, key=rest - nxup)


def header_text(layout: Layout) -> Text:
    line = _cell("✓", SELECT_WIDTH)
    line.append_text(_cell("Age", AGE_WIDTH))
    line.append_text(_cell("Parts", PARTS_WIDTH, right=True))
    line.append_text(_cell("Size", SIZE_WIDTH, right=True))
    line.append_text(_cell(" nxup", layout.nxup))
    line.append_text(_cell("Key", layout.key))
    line.stylize("bold")
    return line


def row_text(upload: StaleUpload, layout: Layout, *, now: datetime, selected: bool) -> Text:
    line = _cell("✓" if selected else "", SELECT_WIDTH)
    line.append_text(_cell(age_text(upload.age(now)), AGE_WIDTH))
    line.append_text(_cell(parts_text(upload), PARTS_WIDTH, right=True))
    line.append_text(_cell(size_text(upload.bytes) if upload.bytes is not None else "…", SIZE_WIDTH, right=True))
    line.append_text(_cell(Text(" ").append_text(nxup_text(upload, layout.nxup - 2)), layout.nxup))
    line.append_text(_cell(tail(printable(upload.key), layout.key - 1), layout.key))
    return line


def detail_text(upload: StaleUpload) -> str:
    """Two lines on the upload under the cursor: its whole key (the table shows its end), then
    what is known of it."""
    about = [f"started {upload.initiated:%Y-%m-%d %H:%M} UTC"]
    if upload.tracked is not None:
        tracked = upload.tracked
        progress = f"{tracked.parts_done}/{tracked.part_count or '?'} parts"
        about.append(f"{tracked.path} ({progress}, " + ("resumable: u" if tracked.resumable else tracked.reason) + ")")
    if upload.note:
        about.append(upload.note)
    return printable(upload.key) + "\n" + printable(" · ".join(about))


def totals_text(table: StaleTable) -> str:
    shown = [table.uploads[i] for i in table.shown]
    tracked = sum(1 for u in shown if u.tracked is not None)
    text = f"{len(shown):,} shown of {len(table.uploads):,} · {size_text(total_bytes(shown))} · {tracked} nxup's"
    if table.selected:
        chosen = [table.uploads[i] for i in table.selected if i in table.uploads]
        text += f" · {len(chosen):,} selected ({size_text(total_bytes(chosen))})"
    return text


class StaleTable(RowList):
    """Every upload listed (`uploads`), the ones shown (`shown`: at least `min_age` old, in the
    order sorted by), the ones selected, and a cursor on one."""

    BINDINGS = [Binding("enter", "choose", "Resume", show=False)]
    COMPONENT_CLASSES = {"stale-table--header", "stale-table--cursor", "stale-table--stripe"}
    DEFAULT_CSS = """
    StaleTable > .stale-table--header { background: $panel; }
    StaleTable > .stale-table--cursor { background: $accent 40%; }
    StaleTable:focus > .stale-table--cursor { background: $accent; }
    StaleTable > .stale-table--stripe { background: $boost; }
    """

    @dataclass
    class Highlighted(Message):
        """The cursor is on another upload."""

        upload: StaleUpload

    @dataclass
    class Chosen(Message):
        """Enter (or a double click) on an upload."""

        upload: StaleUpload

    def __init__(self, *, now: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.now = now
        self.uploads: dict[str, StaleUpload] = {}
        self.shown: list[str] = []
        self.selected: set[str] = set()
        self.cursor_row = 0
        self._highlighted: str | None = None
        self.sort_by = "age"
        self.descending = False  # oldest first
        self.min_age: timedelta | None = None

    # -- data ---------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.shown)

    def clear(self) -> None:
        self.uploads.clear()
        self.selected.clear()
        self.show([])

    def add(self, uploads: Iterable[StaleUpload]) -> None:
        """New uploads (the ones listed again are skipped); the ones old enough go to the end,
        unsorted (`sort` orders them once the listing is complete)."""
        now = self.now()
        fresh = [u for u in uploads if u.upload_id not in self.uploads]
        for upload in fresh:
            self.uploads[upload.upload_id] = upload
        self.show(self.shown + [u.upload_id for u in fresh if self._old_enough(u, now)])

    def sort_on(self, by: str) -> None:
        """Sort by age or size; again on the same one reverses the order."""
        if self.sort_by == by:
            self.descending = not self.descending
        else:
            self.sort_by, self.descending = by, by == "size"  # largest first, oldest first
        self.sort()

    def sort(self) -> None:
        """Order the rows shown, keeping the cursor on its upload."""
        shown = sorted((self.uploads[i] for i in self.shown), key=self._sort_key, reverse=self.descending)
        self.show([u.upload_id for u in shown])

    def filter(self, min_age: timedelta | None) -> None:
        """Show only the uploads at least `min_age` old (all of them with None or 0)."""
        self.min_age = min_age
        now = self.now()
        ordered = sorted(self.uploads.values(), key=self._sort_key, reverse=self.descending)
        self.show([u.upload_id for u in ordered if self._old_enough(u, now)])

    def chosen(self) -> list[StaleUpload]:
        """The uploads selected and shown, or the one under the cursor."""
        chosen = [self.uploads[i] for i in self.shown if i in self.selected]
        if not chosen and (upload := self.highlighted) is not None:
            chosen = [upload]
        return chosen

    def _old_enough(self, upload: StaleUpload, now: datetime) -> bool:
        return not self.min_age or upload.age(now) >= self.min_age

    def _sort_key(self, upload: StaleUpload) -> tuple[Any, ...]:
        if self.sort_by == "size":
            return (upload.bytes or 0, upload.initiated)
        return (upload.initiated, upload.key)

    def show(self, upload_ids: list[str]) -> None:
        """Show these uploads in this order, the cursor staying on its upload if it is among them."""
        current = self._highlighted
        self.shown = upload_ids
        self.virtual_size = Size(self.size.width, len(upload_ids) + 1)
        if current is not None and current in upload_ids:
            self._move_to(upload_ids.index(current), force=True)
        else:
            self._move_to(min(self.cursor_row, max(len(upload_ids) - 1, 0)), force=True)
        self.refresh()

    def remove_uploads(self, upload_ids: set[str]) -> None:
        for upload_id in upload_ids:
            self.uploads.pop(upload_id, None)
        self.selected -= upload_ids
        self.show([i for i in self.shown if i not in upload_ids])

    def changed(self) -> None:
        """Uploads changed (parts counted): drawn again when on screen."""
        self.refresh()

    def toggle_selected(self) -> None:
        """Select or unselect the upload under the cursor, and go to the next row."""
        upload = self.highlighted
        if upload is None:
            return
        self.selected ^= {upload.upload_id}
        self.refresh()
        self.action_cursor(1)

    @property
    def highlighted(self) -> StaleUpload | None:
        if not self.shown:
            return None
        return self.uploads.get(self.shown[min(self.cursor_row, len(self.shown) - 1)])

    # -- drawing ------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        layout = Layout.for_width(width)
        if y == 0:
            return self._strip(header_text(layout), width, self.get_component_rich_style("stale-table--header"))
        index = self.scroll_offset.y + y - 1
        upload = self.uploads.get(self.shown[index]) if index < len(self.shown) else None
        if upload is None:
            return Strip.blank(width, self.rich_style)
        if index == self.cursor_row:
            background = self.get_component_rich_style("stale-table--cursor")
        elif index % 2:
            background = self.get_component_rich_style("stale-table--stripe")
        else:
            background = self.rich_style
        text = row_text(upload, layout, now=self.now(), selected=upload.upload_id in self.selected)
        return self._strip(text, width, background)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.shown) + 1)

    # -- cursor -------------------------------------------------------------------------
    def move_cursor(self, *, row: int) -> None:
        self._move_to(row)

    def _move_to(self, index: int, *, force: bool = False) -> None:
        if not self.shown:
            self.cursor_row, self._highlighted = 0, None
            return
        index = max(0, min(index, len(self.shown) - 1))
        if index == self.cursor_row and self.shown[index] == self._highlighted and not force:
            return
        self.cursor_row = index
        self._scroll_into_view(index)
        if self.shown[index] != self._highlighted:
            self._highlighted = self.shown[index]
            self.post_message(self.Highlighted(self.uploads[self._highlighted]))

    def _cursor_index(self) -> int:
        return self.cursor_row

    def _row_total(self) -> int:
        return len(self.shown)

    def _choose(self) -> None:
        self.action_choose()

    def action_choose(self) -> None:
        upload = self.highlighted
        if upload is not None:
            self.post_message(self.Chosen(upload))
