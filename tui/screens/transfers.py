"""The default screen: every file with its progress, and the totals."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Label

from engine.lifecycle import UploadStatus
from engine.text import display_name, printable
from tui.model import TransferModel
from tui.widgets.file_list import FileList
from tui.widgets.overall import OverallProgress

ALL_FILES = Binding.Group("all", compact=True)


class TransfersScreen(Screen[None]):
    # Every key of the screen is in its footer, in the fewest cells: 80 columns hold them all.
    BINDINGS = [
        Binding("space", "app.toggle_pause", "pause"),
        Binding("c", "app.cancel_selected", "cancel"),
        Binding("P", "app.pause_all", "pause all", group=ALL_FILES),
        Binding("R", "app.resume_all", "resume all", group=ALL_FILES),
        Binding("enter", "app.show_parts", "parts", key_display="⏎"),
        Binding("a", "app.add_files", "add"),
        Binding("s", "app.show_stale", "stale"),
        Binding("l", "app.show_log", "log"),
    ]

    def __init__(self, model: TransferModel) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield Header()
        yield OverallProgress(id="overall")
        yield FileList(self.model, id="files")
        yield Label("", id="detail", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.files.focus()

    @property
    def files(self) -> FileList:
        return self.query_one(FileList)

    def on_file_list_selected(self, event: FileList.Selected) -> None:
        self.app.action_show_parts()  # type: ignore[attr-defined]

    def on_file_list_highlighted(self, event: FileList.Highlighted) -> None:
        self.show_detail(event.file_id)

    def refresh_rows(self, changed: Iterable[int]) -> None:
        changed = set(changed)
        self.files.sync(changed)
        selected = self.selected_file_id()
        if selected is not None and selected in changed:
            self.show_detail(selected)

    def refresh_totals(self, *, history_changed: bool) -> None:
        self.query_one(OverallProgress).show(self.model.totals(), self.model.history if history_changed else None)

    def selected_file_id(self) -> int | None:
        return self.files.selected_file_id

    def show_detail(self, file_id: int) -> None:
        """The selected file in full: the list truncates names and failure reasons."""
        row = self.model.rows.get(file_id)
        if row is None:
            return
        if row.status is UploadStatus.FAILED:
            text = f"{display_name(row.path)}: {printable(row.reason)}"
        elif row.status is UploadStatus.DONE and row.document_path:
            text = f"{display_name(row.path)} → {printable(row.document_path)}"
        else:
            text = printable(row.path)
        self.query_one("#detail", Label).update(text, layout=False)  # one line, whatever it says
