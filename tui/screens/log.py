"""Errors and notable events of this run."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog


class LogScreen(Screen[None]):
    BINDINGS = [Binding("escape,l", "app.pop_screen", "back", key_display="esc")]

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__()
        self._lines = list(lines)

    def compose(self) -> ComposeResult:
        yield Header()
        yield RichLog(id="log", wrap=True, highlight=False, markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        log = self.query_one(RichLog)
        for line in self._lines or ["nothing to report yet"]:
            log.write(line)

    def append(self, line: str) -> None:
        self.query_one(RichLog).write(line)
