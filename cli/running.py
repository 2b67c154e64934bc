"""Running the engine for a command: headless until every file is settled, or in the transfer
manager (imported only then)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from cli.exits import EXIT_FAILED, EXIT_OK
from cli.output import output_settings
from cli.startup_cleanup import cleanup_at_start


def run_headless(manager: Any, reporter: Any, start: Callable[[], None], *, abort_on_interrupt: bool = False) -> int:
    """Run until every file is done, failed or cancelled; Ctrl-C or SIGTERM pauses cleanly
    (or, with `abort_on_interrupt`, cancels what is unfinished)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    began = time.monotonic()
    try:
        manager.start()
        start()
        while not stop.is_set() and not manager.wait(timeout=0.2):
            reporter.tick()
        interrupted = stop.is_set()
        if interrupted and abort_on_interrupt:
            manager.cancel_all()
            manager.wait(timeout=30)
    finally:
        manager.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reporter.summary(elapsed_s=time.monotonic() - began)
    if interrupted:
        click.echo("interrupted: unfinished files are paused; `nxup resume` continues them", err=True)
        return EXIT_FAILED
    tally = reporter.tally
    return EXIT_FAILED if tally.failed or tally.paused else EXIT_OK


def use_tui(*, no_tui: bool, json_lines: bool) -> bool:
    return not (no_tui or json_lines) and sys.stdin.isatty() and sys.stdout.isatty()


def run_tui(manager: Any, bridge: Any, start: Callable[[], Any] | None, *, target: str,
            abort_on_quit: bool = False, notices: list[str] | None = None, stale_source: Any = None) -> int:
    """Run the transfer manager; quitting pauses what is in flight so it can be resumed
    (or aborts it, with `abort_on_quit`). `notices` are shown in the app (start-up cleanup)."""
    from engine.stale import StaleSource
    from tui.app import NxupApp

    app = NxupApp(manager, bridge, start=start, target=target, server_label=manager.connection.url,
                  abort_on_quit=abort_on_quit, notices=notices or [],
                  stale_source=stale_source or StaleSource.from_env())
    try:
        code = app.run()
    finally:
        manager.shutdown()
    # The same end as a headless run: nothing that failed or is left over goes unsaid.
    lines, report_code = app.exit_report()
    for line in lines:
        click.echo(line, err=line.startswith("nxup:"))
    return max(int(code or 0), report_code)


def open_manager(connection: Any, settings: Any, reporter: Any, *, tui: bool) -> Any:
    """The transfer manager on the state database; the terminal UI samples the engine's counters
    itself, so the engine sends it no progress events."""
    from dataclasses import replace

    from engine.manager import TransferManager
    from engine.state import StateStore

    if tui:
        settings = replace(settings, progress_interval_s=None)
    store = StateStore.open()
    return TransferManager(connection, store=store, sink=reporter, settings=settings)


def _event_bridge() -> Any:
    # Textual is imported only for the transfer manager: a headless run starts faster without it.
    from tui.bridge import EventBridge

    return EventBridge()


def run_transfers(connection: Any, settings: Any, *, tui: bool, json_lines: bool, target: str,
                   start: Callable[[Any], Any]) -> int:
    """Open a manager on one server, clean up obsolete uploads, then run `start(manager)` in
    the transfer manager or headless. Returns the exit code."""
    from cli.logs import configure_logging
    from cli.plain import Reporter
    from engine.errors import NxupError
    from engine.text import printable

    output = output_settings()
    sink: Any = _event_bridge() if tui else Reporter(
        json_lines=json_lines, detail=output.detail, live=not json_lines and sys.stdout.isatty(),
        overall_every_s=output.stats_every_s)
    configure_logging(output, screen=not tui, json_emit=sink.emit_json if json_lines else None)
    manager = open_manager(connection, settings, sink, tui=tui)
    notices = cleanup_at_start(manager, echo=not tui)
    try:
        if tui:
            return run_tui(manager, sink, lambda: start(manager), target=target, notices=notices)
        return run_headless(manager, sink, lambda: start(manager))
    except NxupError as exc:
        from cli.connection import refused_login_hint
        from engine.errors import AuthenticationError

        reason = f"{connection.url}: {exc}"
        if not tui:
            sink.fatal(reason)
        hint = refused_login_hint(connection) if isinstance(exc, AuthenticationError) else ""
        click.echo(f"nxup: {printable(reason)}{hint}", err=True)
        return EXIT_FAILED
    finally:
        manager.store.close()
