"""The nxup transfer manager: a Textual app that renders engine events and sends commands.

It never talks to S3 or Nuxeo itself. One thread worker starts the engine (which owns its own
pool); commands that may touch many files run in short thread workers so a key press never
waits on the state database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.errors import NxupError
from engine.lifecycle import UploadStatus
from engine.planning import MiB
from engine.stale import StaleSource
from engine.surface import Transfers
from engine.text import printable, speed_text
from tui.bridge import EngineEvents, EventBridge
from tui.exit_report import exit_report
from tui.model import TransferModel
from tui.screens.add_files import AddFilesScreen, AddRequest
from tui.screens.confirm import ConfirmScreen
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen
from tui.screens.log import LogScreen
from tui.screens.parts import PartsScreen
from tui.screens.stale import StaleScreen
from tui.screens.transfers import TransfersScreen

# Bandwidth caps offered by + and - (bytes per second; None = no cap).
CAP_STEPS: tuple[int | None, ...] = (
    1 * MiB, 2 * MiB, 5 * MiB, 10 * MiB, 20 * MiB, 50 * MiB, 100 * MiB, 200 * MiB, None,
)
SAMPLE_INTERVAL_S = 0.25
SHOW_INTERVAL_S = 0.1  # at most this often, lifecycle events redraw the screen


def _error_text(error: BaseException | None) -> str:
    return str(error) if isinstance(error, NxupError) else f"unexpected error: {error!r}"


class NxupApp(App[int]):
    """The transfer manager: renders the engine's events and counters, and sends it commands.

    Its length: each key of the footer is an action here (Textual looks actions up on the app or
    the screen, and these keys work on every screen), each one line or two that sends a command
    to the engine off the UI thread; what the app shows is in its screens and widgets."""

    CSS_PATH = "nxup.tcss"
    TITLE = "nxup"
    BINDINGS = [
        Binding("plus,equals_sign", "faster", "cap", key_display="+/-"),
        Binding("minus", "slower", "Lower cap", key_display="-", show=False),
        Binding("a", "add_files", "Add", show=False),
        Binding("s", "show_stale", "Stale", show=False),
        Binding("l", "show_log", "Log", show=False),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit_app", "quit"),
        Binding("ctrl+q,ctrl+c", "quit_app", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        manager: Transfers,
        bridge: EventBridge,
        *,
        start: Callable[[], Any] | None = None,
        target: str = "/default-domain/workspaces",
        server_label: str = "",
        abort_on_quit: bool = False,
        stale_source: StaleSource | None = None,
        notices: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.manager = manager
        self.bridge = bridge
        self.model = TransferModel()
        self._notices = [printable(notice) for notice in notices or []]
        self.model.log.extend(self._notices)
        self._start = start
        self.target = target
        self.server_label = server_label
        self.stale_source = stale_source
        self._shutting_down = False
        self.abort_on_quit = abort_on_quit
        self.errors: list[str] = []  # what stopped a command (printed again on exit)
        self._last_shown = 0.0
        self._show_pending = False

    # == start-up =============================================================================
    def get_default_screen(self) -> Screen:
        return TransfersScreen(self.model)

    def on_mount(self) -> None:
        if self._notices:
            self.notify(
                "\n".join(self._notices[:3])
                + (f"\n… {len(self._notices) - 3} more in the log (l)" if len(self._notices) > 3 else ""),
                title="Obsolete uploads aborted", timeout=15, markup=False,
            )
        self._update_subtitle()
        # Events are rendered once the transfers screen has its widgets.
        self.call_after_refresh(self.bridge.connect, self)
        self.set_interval(SAMPLE_INTERVAL_S, self._sample)
        self._run_engine()

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def _run_engine(self) -> None:
        self.manager.start()
        if self._start is not None:
            try:
                self._start()
            except NxupError as error:
                self.call_from_thread(self._report_error, str(error))

    def _report_error(self, message: str) -> None:
        """An error that stopped a command: it stays on screen until dismissed, goes in the
        log, and is printed again on exit (with exit code 1)."""
        message = printable(message)
        self.errors.append(message)
        self.model.log.append(f"error: {message}")
        self.push_screen(ErrorScreen(message))

    def exit_report(self) -> tuple[list[str], int]:
        """What a headless run prints at its end, for the terminal once the app is gone, and the
        exit code (see `tui.exit_report`)."""
        return exit_report(list(self.model.rows.values()), self.errors)

    @property
    def transfers(self) -> TransfersScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, TransfersScreen):
                return screen
        return None

    # == engine → screen ======================================================================
    def on_engine_events(self, message: EngineEvents) -> None:
        # Events are taken, and the screen drawn, at most every SHOW_INTERVAL_S: many small
        # files make hundreds of events a second, and a message, a model update and a drawing
        # for each would take the CPU the uploads need. Until they are taken the bridge posts
        # no other message.
        wait = self._last_shown + SHOW_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._take_events()
        elif not self._show_pending:
            self._show_pending = True
            self.set_timer(wait, self._take_events)

    def _take_events(self) -> None:
        self._show_pending = False
        if not self.screen_stack:
            return  # the app is closing: its timer outlived the screens
        self._last_shown = time.monotonic()
        events = self.bridge.drain()
        before = len(self.model.log)
        changed = self.model.apply(events)
        if isinstance(self.screen, LogScreen):
            for line in list(self.model.log)[before:]:
                self.screen.append(line)
        screen = self.transfers
        if screen is not None and changed:
            screen.refresh_rows(changed)  # the totals follow at the next sample

    def _sample(self) -> None:
        # The one place the screens' progress is sampled from the engine.
        if isinstance(self.screen, PartsScreen):
            self.screen.refresh_parts()
        changed = self.model.sample(self.manager.snapshot)
        screen = self.transfers
        if screen is None:
            return
        totals = self.model.totals()
        history_changed = self.model.record_throughput(totals)
        with self.batch_update():
            if changed:
                screen.refresh_rows(changed)
            screen.refresh_totals(history_changed=history_changed)

    def _update_subtitle(self) -> None:
        rate = self.manager.limiter.rate
        cap = f"cap {speed_text(rate)}" if rate else "no cap"
        label = printable(self.server_label)
        self.sub_title = f"{label} · {cap}" if label else cap

    # == commands =============================================================================
    def _selected(self) -> int | None:
        if isinstance(self.screen, PartsScreen):
            return self.screen.file_id
        screen = self.transfers
        return screen.selected_file_id() if screen is not None else None

    def _in_background(self, command: Callable[[], Any]) -> None:
        self.run_worker(command, thread=True, group="commands", exit_on_error=False)

    def action_toggle_pause(self) -> None:
        file_id = self._selected()
        if file_id is None or file_id < 0:
            return
        row = self.model.rows.get(file_id)
        if row is None:
            return
        if row.status in (UploadStatus.PAUSED, UploadStatus.FAILED):
            self._in_background(partial(self.manager.resume, file_id))
        elif row.status in (UploadStatus.QUEUED, UploadStatus.UPLOADING):
            self._in_background(partial(self.manager.pause, file_id))

    def action_pause_all(self) -> None:
        self._in_background(self.manager.pause_all)

    def action_resume_all(self) -> None:
        self._in_background(self.manager.resume_all)

    def action_cancel_selected(self) -> None:
        file_id = self._selected()
        row = self.model.rows.get(file_id) if file_id is not None else None
        if row is None or row.status in (UploadStatus.DONE, UploadStatus.CANCELLED) or row.file_id < 0:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._in_background(partial(self.manager.cancel, row.file_id))

        question = f"Cancel {row.name}? Its multipart upload is aborted on S3."
        self.push_screen(ConfirmScreen(question, yes="Cancel upload", no="Keep"), answered)

    def _set_cap(self, step: int) -> None:
        rate = self.manager.limiter.rate
        index = CAP_STEPS.index(rate) if rate in CAP_STEPS else (
            next((i for i, cap in enumerate(CAP_STEPS) if cap is not None and cap >= (rate or 0)), len(CAP_STEPS) - 1)
        )
        index = max(0, min(len(CAP_STEPS) - 1, index + step))
        self.manager.set_bandwidth_limit(CAP_STEPS[index])
        self._update_subtitle()

    def action_faster(self) -> None:
        self._set_cap(+1)

    def action_slower(self) -> None:
        self._set_cap(-1)

    def action_show_parts(self) -> None:
        file_id = self._selected()
        if file_id is None or file_id < 0 or isinstance(self.screen, PartsScreen):
            return
        self.push_screen(PartsScreen(self.manager, file_id, slots=self.manager.settings.workers))

    def action_show_log(self) -> None:
        if not isinstance(self.screen, LogScreen):
            self.push_screen(LogScreen(self.model.log))

    def action_show_stale(self) -> None:
        if not isinstance(self.screen, StaleScreen):
            self.push_screen(StaleScreen(self.manager, self.stale_source))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_add_files(self) -> None:
        def answered(request: AddRequest | None) -> None:
            if request is not None:
                self.target = request.target
                self._in_background(partial(self._add, request))

        self.push_screen(AddFilesScreen(target=self.target), answered)

    def _add(self, request: AddRequest) -> None:
        try:
            self.manager.add(request.paths, request.target)
        except NxupError as error:
            self.call_from_thread(self._report_error, str(error))

    # == quitting =============================================================================
    def _busy_count(self) -> int:
        return sum(
            1 for row in self.model.rows.values()
            if row.status in (UploadStatus.QUEUED, UploadStatus.UPLOADING)
        )

    def action_quit_app(self) -> None:
        busy = self._busy_count()
        if not busy:
            self._shutdown_and_exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._shutdown_and_exit()

        files, them = (f"{busy} files", "them") if busy > 1 else ("1 file", "it")
        if self.abort_on_quit:
            question = f"{files} not uploaded yet. Abort {them} and quit? The demo's sandbox goes away on exit."
            yes = "Abort and quit"
        else:
            question = f"{files} not uploaded yet. Pause {them} and quit? `nxup` resumes {them} later."
            yes = "Pause and quit"
        self.push_screen(ConfirmScreen(question, yes=yes, no="Stay"), answered)

    def _shutdown_and_exit(self) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        self.notify("aborting uploads…" if self.abort_on_quit else "pausing uploads…", timeout=5)
        self._shutdown_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="shutdown")
    def _shutdown_worker(self) -> None:
        code = 1
        try:
            if self.abort_on_quit:
                self.manager.cancel_all()
                self.manager.wait(timeout=30)
            self.manager.shutdown()
            code = 1 if self.manager.counts()[UploadStatus.FAILED] else 0
        except Exception as error:  # the app exits all the same; the error is printed on exit
            self.errors.append(printable(_error_text(error)))
        finally:
            self.call_from_thread(self.exit, code)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A command that failed in its thread (workers do not stop the app on error): its
        error on screen and in the log, not lost."""
        if event.state is WorkerState.ERROR and event.worker.group != "shutdown":
            self._report_error(_error_text(event.worker.error))

    async def action_quit(self) -> None:
        self.action_quit_app()

    # == command palette ======================================================================
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pause or resume the selected file", "space", self.action_toggle_pause)
        yield SystemCommand("Pause all", "Pause every queued or uploading file", self.action_pause_all)
        yield SystemCommand("Resume all", "Resume every paused or failed file", self.action_resume_all)
        yield SystemCommand("Cancel the selected file", "Abort its multipart upload", self.action_cancel_selected)
        yield SystemCommand("Raise the bandwidth cap", "+", self.action_faster)
        yield SystemCommand("Lower the bandwidth cap", "-", self.action_slower)
        yield SystemCommand("Add files or folders", "a", self.action_add_files)
        yield SystemCommand("Parts of the selected file", "enter", self.action_show_parts)
        yield SystemCommand("Stale uploads", "s", self.action_show_stale)
        yield SystemCommand("Log", "Errors and events", self.action_show_log)
