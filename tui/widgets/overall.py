"""The overall line: totals, one bar for all files, and throughput over the last minute."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, ProgressBar, Sparkline

from engine.text import eta_text, size_text, speed_text
from tui.model import Totals


def finished(totals: Totals) -> bool:
    """Every file is done, failed or cancelled (a paused file is still to do)."""
    return totals.files > 0 and totals.left == 0


def totals_text(totals: Totals) -> str:
    if finished(totals):  # the closing summary: in place of the totals, never over the list
        return (
            f"All done: {totals.done} uploaded ({size_text(totals.sent)}) · {totals.failed} failed · "
            f"{totals.cancelled} cancelled · q quits"
        )
    return (
        f"{totals.done}/{totals.files} done · {totals.failed} failed · {totals.left} left · "
        f"{size_text(totals.sent)}/{size_text(totals.size)} · {speed_text(totals.speed)} · "
        f"ETA {eta_text(totals.eta)}"
    )


class OverallProgress(Widget):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown_text = ""

    def compose(self) -> ComposeResult:
        yield Label("", id="totals")
        with Horizontal(id="overall-row"):
            yield ProgressBar(total=1, show_eta=False, id="overall-bar")
            yield Sparkline([0.0], summary_function=max, id="throughput")

    def show(self, totals: Totals, history: Sequence[float] | None = None) -> None:
        text = totals_text(totals)
        if text != self._shown_text:
            self._shown_text = text
            label = self.query_one("#totals", Label)
            label.update(text, layout=False)  # one line, whatever it says
            label.set_class(finished(totals), "-finished")
        self.query_one("#overall-bar", ProgressBar).update(total=max(totals.size, 1), progress=totals.sent)
        if history is not None:
            self.query_one("#throughput", Sparkline).data = list(history)
