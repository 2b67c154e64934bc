"""A compact map of a file's parts: done, in flight, pending. Readable for 10,000 parts:
when there are more parts than cells, each cell stands for a run of parts and shows the
least advanced state among them."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

_DONE, _FLIGHT, _PENDING = 2, 1, 0
_GLYPH = {_DONE: ("█", "green"), _FLIGHT: ("▓", "bold cyan"), _PENDING: ("·", "dim")}


def render_map(*, part_count: int, done: frozenset[int], in_flight: frozenset[int], cells: int) -> Text:
    text = Text()
    if part_count <= 0:
        return text
    cells = max(1, min(cells, part_count))
    per_cell = part_count / cells
    for cell in range(cells):
        first = int(cell * per_cell) + 1
        last = max(first, int((cell + 1) * per_cell))
        states = [
            _DONE if n in done else _FLIGHT if n in in_flight else _PENDING
            for n in range(first, last + 1)
        ]
        glyph, style = _GLYPH[_FLIGHT if _FLIGHT in states else min(states)]
        text.append(glyph, style=style)
    return text


class PartsMap(Static):
    """Updated with `show(...)`; wraps to the widget's width."""

    def show(self, *, part_count: int, done: frozenset[int], in_flight: frozenset[int]) -> None:
        width = max(self.size.width, 10)
        rows = max(self.size.height, 1)
        self.update(render_map(part_count=part_count, done=done, in_flight=in_flight, cells=width * rows))
