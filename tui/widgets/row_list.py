"""A virtual list of rows under a header line, with a cursor: what the transfer list and the
stale uploads' table share (keys, paging, clicks, scrolling the cursor into view, drawing a row)."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.scroll_view import ScrollView
from textual.strip import Strip


class RowList(ScrollView, can_focus=True):
    """Row 0 of the view is the header; rows 1.. are the list. Subclasses say where the cursor
    is, how many rows there are, how the cursor moves and what a double click chooses."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    def _cursor_index(self) -> int:
        raise NotImplementedError

    def _row_total(self) -> int:
        raise NotImplementedError

    def _move_to(self, index: int) -> None:
        raise NotImplementedError

    def _choose(self) -> None:
        """A double click on a row."""

    @property
    def _page(self) -> int:
        return max(1, self.size.height - 2)

    def _scroll_into_view(self, index: int) -> None:
        """Scroll so that the row at `index` shows below the header, and redraw."""
        top = self.scroll_offset.y
        visible_rows = max(1, self.size.height - 1)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible_rows:
            self.scroll_to(y=index - visible_rows + 1, animate=False)
        self.refresh()

    def _strip(self, text: Text, width: int, background: Style) -> Strip:
        strip = Strip(list(text.render(self.app.console))).crop_extend(0, width, background)
        return strip.apply_style(background) if background else strip

    def action_cursor(self, step: int) -> None:
        self._move_to(self._cursor_index() + step)

    def action_page(self, step: int) -> None:
        self._move_to(self._cursor_index() + step * self._page)

    def action_jump(self, where: int) -> None:
        self._move_to(self._row_total() - 1 if where < 0 else 0)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move_to(self.scroll_offset.y + event.y - 1)
            if event.chain == 2:
                self._choose()
