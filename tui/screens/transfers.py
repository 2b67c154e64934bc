"""The default screen: every file with its progress, and the totals."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from engine.state import UploadStatus
from tui.model import TransferModel, display_name
from tui.widgets.file_table import FileTable
from tui.widgets.overall import OverallProgress


class TransfersScreen(Screen[None]):
    BINDINGS = [
        Binding("space", "app.toggle_pause", "Pause/Resume"),
        Binding("c", "app.cancel_selected", "Cancel"),
        Binding("enter", "app.show_parts", "Parts", show=False),
        Binding("P", "app.pause_all", "Pause all"),
        Binding("R", "app.resume_all", "Resume all"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield OverallProgress(id="overall")
        yield FileTable(id="files")
        yield Label("", id="detail")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(FileTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row opens its parts (the table handles the key itself)."""
        event.stop()
        self.app.action_show_parts()  # type: ignore[attr-defined]

    @property
    def table(self) -> FileTable:
        return self.query_one(FileTable)

    def refresh_rows(self, model: TransferModel, changed: Iterable[int]) -> None:
        self.table.sync(model, changed)
        selected = self.selected_file_id()
        if selected is not None and selected in changed:
            self.show_detail(model, selected)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show_detail(self.app.model, int(event.row_key.value))  # type: ignore[attr-defined]

    def show_detail(self, model: TransferModel, file_id: int) -> None:
        """The selected file in full: the table truncates names and failure reasons."""
        row = model.rows.get(file_id)
        if row is None:
            return
        if row.status is UploadStatus.FAILED:
            text = f"{display_name(row.path)}: {row.reason}"
        elif row.status is UploadStatus.DONE and row.document_path:
            text = f"{display_name(row.path)} → {row.document_path}"
        else:
            text = row.path.replace("\n", "␤")
        self.query_one("#detail", Label).update(text)

    def refresh_totals(self, model: TransferModel, *, history_changed: bool) -> None:
        self.query_one(OverallProgress).show(model.totals(), model.history if history_changed else None)

    def selected_file_id(self) -> int | None:
        return self.table.selected_file_id
