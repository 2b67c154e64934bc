"""Add files or folders: a path with completion, and the target folder."""

from __future__ import annotations

import os
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from engine.text import printable
from tui.widgets.path_completion import FolderReader, PathDropdown, PathSuggester


@dataclass(frozen=True)
class AddRequest:
    paths: list[str]
    target: str


class AddFilesScreen(ModalScreen[AddRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, target: str) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        reader = FolderReader()
        path = Input(placeholder="~/Documents/report.pdf", suggester=PathSuggester(reader), id="path")
        with Vertical(id="dialog"):
            yield Label("Add a file or folder: ↓ and tab pick a completion, → takes the one in grey", id="add-hint")
            yield path
            yield Label("to the Nuxeo folder")
            yield Input(value=self.target, id="target")
            yield Label("", id="problem", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Add", variant="primary", id="add")
                yield Button("Cancel (esc)", id="cancel")
        yield PathDropdown(path, reader)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "path":
            self.query_one("#target", Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        path = os.path.expanduser(self.query_one("#path", Input).value.strip())
        target = self.query_one("#target", Input).value.strip() or "/"
        if not path:
            self.query_one("#problem", Label).update("give a path")
            return
        if not os.path.exists(path) and not os.path.islink(path):
            self.query_one("#problem", Label).update(f"{printable(path)}: no such file or directory")
            return
        self.dismiss(AddRequest(paths=[path], target=target))

    def action_cancel(self) -> None:
        self.dismiss(None)
