"""The parts of one file: a bar per part in flight and a map of all parts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar

from engine.snapshots import FileSnapshot
from engine.surface import Transfers
from engine.text import display_name, printable, size_text
from tui.widgets.parts_map import PartsMap


class PartBar(Horizontal):
    """One part in flight: number, bar, bytes."""

    def compose(self) -> ComposeResult:
        yield Label("", classes="part-number")
        yield ProgressBar(total=1, show_eta=False, classes="part-bar")
        yield Label("", classes="part-bytes")

    def show(self, *, number: int, sent: int, size: int) -> None:
        self.query_one(".part-number", Label).update(f"part {number:>5}")
        self.query_one(".part-bar", ProgressBar).update(total=max(size, 1), progress=sent)
        self.query_one(".part-bytes", Label).update(f"{size_text(sent)}/{size_text(size)}")


class PartsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,enter", "app.pop_screen", "back", key_display="esc"),
        Binding("space", "app.toggle_pause", "pause"),
        Binding("c", "app.cancel_selected", "cancel"),
    ]

    def __init__(self, transfers: Transfers, file_id: int, *, slots: int) -> None:
        super().__init__()
        self.transfers = transfers
        self.file_id = file_id
        self.slots = slots

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="parts-title", markup=False)
        with Vertical(id="part-bars"):
            for _ in range(self.slots):
                yield PartBar(classes="part")
        yield Label("Parts: █ done  ▓ in flight  · pending", id="parts-legend")
        yield PartsMap(id="parts-map")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # Refreshed again by the app at each of its samples of the engine's counters.
        self.refresh_parts()

    def refresh_parts(self) -> None:
        snapshot = self.transfers.snapshot(self.file_id)
        if snapshot is not None:
            self.show(snapshot)

    def show(self, snapshot: FileSnapshot) -> None:
        parts = max(snapshot.part_count, 1)
        kind = "single upload" if parts == 1 else f"{snapshot.parts_done}/{parts} parts done"
        reason = f" — {printable(snapshot.error)}" if snapshot.error else ""
        self.query_one("#parts-title", Label).update(
            f"{display_name(snapshot.path)} · {size_text(snapshot.sent)}/{size_text(snapshot.size)} · "
            f"{kind} · {snapshot.status.value}{reason}"
        )
        flights = sorted(snapshot.parts_in_flight, key=lambda p: p.number)
        for bar, flight in zip(self.query(PartBar), [*flights, *[None] * self.slots], strict=False):
            bar.display = flight is not None
            if flight is not None:
                bar.show(number=flight.number, sent=flight.sent, size=flight.size)
        self.query_one(PartsMap).show(
            part_count=parts,
            done=snapshot.done_part_numbers,
            in_flight=frozenset(p.number for p in flights),
        )
