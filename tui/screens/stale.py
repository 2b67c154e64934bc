"""Stale multipart uploads (orphans that keep costing storage)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class StaleScreen(Screen[None]):
    BINDINGS = [Binding("escape,s", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            "Stale multipart uploads: use `nxup stale` from a shell for now.",
            id="stale-placeholder",
        )
        yield Footer()
