"""An error that stays on screen until it is dismissed (a wrong password, a missing folder)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ErrorScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "dismiss_error", "Close")]

    def __init__(self, message: str, *, title: str = "nxup could not go on") -> None:
        super().__init__()
        self.message = message
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="error-title", markup=False)
            # The message names paths and servers, which may look like markup.
            yield Label(self.message, id="problem", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Close (enter)", variant="primary", id="close")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_dismiss_error(self) -> None:
        self.dismiss(None)
