"""The table of files: one row per file, only changed rows are redrawn."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from engine.state import UploadStatus
from tui.model import FileRow, TransferModel, eta_text, size_text, speed_text

_BAR_WIDTH = 8
_STATE_STYLE = {
    UploadStatus.QUEUED: "dim",
    UploadStatus.UPLOADING: "bold cyan",
    UploadStatus.PAUSED: "yellow",
    UploadStatus.DONE: "green",
    UploadStatus.FAILED: "bold red",
    UploadStatus.CANCELLED: "dim red",
}


def progress_cell(row: FileRow) -> Text:
    fraction = row.fraction
    filled = round(fraction * _BAR_WIDTH)
    style = _STATE_STYLE.get(row.status, "")
    bar = Text("█" * filled, style=style or "cyan")
    bar.append("░" * (_BAR_WIDTH - filled), style="dim")
    bar.append(f" {fraction * 100:3.0f}%")
    return bar


class FileTable(DataTable):
    """Files with name, size, progress bar, speed, ETA and state."""

    COLUMNS = (("Name", "name", 16), ("Size", "size", 9), ("Progress", "progress", 13),
               ("Speed", "speed", 10), ("ETA", "eta", 5), ("State", "state", 12))
    # Everything but the name: fixed columns, two cells of padding each, the scrollbar.
    _NOT_NAME = sum(width or 0 for _, key, width in COLUMNS if key != "name") + 2 * len(COLUMNS) + 2

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        for label, key, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def on_resize(self, event: events.Resize) -> None:
        """The name column takes whatever the others leave, so nothing scrolls sideways."""
        name = self.columns.get("name")  # type: ignore[call-overload]
        width = max(12, event.size.width - self._NOT_NAME)
        if name is not None and name.width != width:
            name.width = width
            self._require_update_dimensions = True
            self.notify_style_update()

    @staticmethod
    def cells(row: FileRow) -> tuple[object, ...]:
        state = Text(row.state_text(), style=_STATE_STYLE.get(row.status, ""))
        return (
            row.name,
            size_text(row.size),
            progress_cell(row),
            speed_text(row.speed) if row.status is UploadStatus.UPLOADING else "",
            eta_text(row.eta) if row.status is UploadStatus.UPLOADING else "",
            state,
        )

    def sync(self, model: TransferModel, changed: Iterable[int]) -> None:
        """Add new rows and rewrite the cells of changed ones."""
        keys = [column_key for _, column_key, _ in self.COLUMNS]
        for file_id in sorted(changed):
            row = model.rows.get(file_id)
            if row is None:
                continue
            key = str(file_id)
            cells = self.cells(row)
            if key in self.rows:
                for column, value in zip(keys, cells):
                    self.update_cell(key, column, value)
            else:
                self.add_row(*cells, key=key)

    @property
    def selected_file_id(self) -> int | None:
        if self.row_count == 0:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return int(row_key.value) if row_key.value is not None else None
