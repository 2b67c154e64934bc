"""Keys and what nxup does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("↑ ↓ pgup pgdn", "select a file (home, end: the first, the last)"),
    ("space", "pause or resume the selected file"),
    ("P / R", "pause all / resume all"),
    ("c", "cancel the selected file (aborts its multipart upload)"),
    ("enter", "parts of the selected file (esc: back to the list)"),
    ("+ / -", "raise / lower the bandwidth cap"),
    ("a", "add files or folders"),
    ("s", "stale multipart uploads"),
    ("l", "log of errors and events"),
    ("ctrl+p", "command palette"),
    ("q", "quit: uploads in flight are paused, `nxup` resumes them"),
    ("esc, q, ?", "close this help"),
)

ABOUT = (
    "Files uploading come first in the list, then queued and paused ones, failed ones, and "
    "finished ones. Bytes go straight to S3; Nuxeo hands out the upload batch and makes the "
    "documents. A pause keeps every part S3 acknowledged (solid in a bar) and lets a part that "
    "ends within half a second end; the bytes of the other parts in flight (lighter) are sent "
    "again on resume. A part S3 acknowledged is never sent again, after a pause, a quit or a crash."
)


def keys_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold dark_orange", no_wrap=True)
    table.add_column()
    for key, does in KEYS:
        table.add_row(key, does)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(Text("nxup — keys (esc closes)", style="bold"), id="help-title")
            yield Static(keys_table(), id="help-keys")
            yield Static(ABOUT, id="help-about")

    def action_close(self) -> None:
        self.dismiss(None)
