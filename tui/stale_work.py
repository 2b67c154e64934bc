"""What the stale-uploads screen does off its UI thread: listing, counting, aborting, adding
the lifecycle rule, resuming.

Pages of uploads reach the screen as they are listed; counted parts reach it a few times a
second rather than once per upload. A refresh starts a new generation: whatever an older load
still sends is dropped, and its counting stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.worker import get_current_worker

from engine.errors import NxupError
from engine.stale import (
    AbortOutcome,
    AbortReport,
    AbortResult,
    AdminScanner,
    Scanner,
    StaleUpload,
    TrackedScanner,
    add_abort_rule,
    lifecycle_status,
)

if TYPE_CHECKING:
    from tui.screens.stale import StaleScreen

COUNT_FLUSH_S = 0.25  # how often counted parts reach the table


class StaleWork:
    """The screen's scanner, made on first use, the load under way, and the thread workers that
    report back to the screen."""

    def __init__(self, screen: StaleScreen) -> None:
        self.screen = screen
        self.scanner: Scanner | None = None
        self.admin_client: Any = None
        self._generation = 0
        self._stop = threading.Event()

    def load(self, prefix: str) -> None:
        """List (and count) the uploads under `prefix`, instead of any load under way."""
        self._stop.set()
        self._stop = threading.Event()
        self._generation += 1
        generation, stop = self._generation, self._stop
        self.screen.run_worker(lambda: self._load(generation, prefix, stop), thread=True, exclusive=True,
                               exit_on_error=False, group="stale-load")

    def stop(self) -> None:
        self._stop.set()

    def abort(self, uploads: list[StaleUpload]) -> None:
        self.screen.run_worker(lambda: self._abort(uploads), thread=True, exclusive=True, exit_on_error=False,
                               group="stale-abort")

    def resume(self, file_id: int) -> None:
        manager = self.screen.transfers

        def resume() -> None:
            if file_id in manager.file_ids():
                manager.resume(file_id)
            else:
                manager.load_unfinished()

        self.screen.run_worker(resume, thread=True, exit_on_error=False, group="stale-resume")

    def add_rule(self, bucket: str, days: int) -> None:
        def add() -> None:
            try:
                status = add_abort_rule(self.admin_client, bucket, days)
            except NxupError as error:
                self.to_ui(self.screen.rule_failed, str(error))
                return
            self.to_ui(self.screen.show_lifecycle, status, "")

        self.screen.run_worker(add, thread=True, exclusive=True, exit_on_error=False, group="stale-rule")

    def to_ui(self, method: Callable[..., None], *args: Any) -> None:
        """Run `method` on the UI thread unless a refresh comes first."""
        self._to_ui(self._generation, method, *args)

    # == in the worker thread ====================================================================
    def _load(self, generation: int, prefix: str, stop: threading.Event) -> None:
        screen = self.screen
        try:
            scanner = self._make_scanner()
            listed: list[StaleUpload] = []
            for page in scanner.pages(prefix):
                if get_current_worker().is_cancelled or stop.is_set():
                    return
                listed.extend(page)
                self._to_ui(generation, screen.add_page, page, len(listed))
            self._to_ui(generation, screen.listed, len(listed))
            if isinstance(scanner, AdminScanner):
                self._read_lifecycle(generation, scanner)
            self._count(generation, scanner, listed, stop)
        except NxupError as error:
            self._to_ui(generation, screen.failed, str(error))

    def _abort(self, uploads: list[StaleUpload]) -> None:
        assert self.scanner is not None
        manager = self.screen.transfers
        loaded = set(manager.file_ids())
        report = AbortReport(dry_run=False)
        through_scanner = []
        for upload in uploads:
            # A file the transfer manager holds is cancelled by it, so that its own state (and
            # its workers) agree with S3.
            if upload.tracked is not None and upload.tracked.file_id in loaded:
                manager.cancel(upload.tracked.file_id)
                report.results.append(AbortResult(upload, AbortOutcome.CANCELLED))
            else:
                through_scanner.append(upload)
        report.results.extend(self.scanner.abort(through_scanner).results)
        self.to_ui(self.screen.aborted, report)

    def _make_scanner(self) -> Scanner:
        if self.scanner is None:
            manager = self.screen.transfers
            source = self.screen.source
            if source is not None:
                self.admin_client = source.admin.client()
                self.scanner = AdminScanner(self.admin_client, source.admin.bucket, manager.store, now=source.now)
            else:
                self.scanner = TrackedScanner(manager.store, manager.nuxeo)
        return self.scanner

    def _read_lifecycle(self, generation: int, scanner: AdminScanner) -> None:
        try:
            status = lifecycle_status(scanner.client, scanner.bucket)
        except NxupError as error:
            self._to_ui(generation, self.screen.show_lifecycle, None, f"lifecycle rules unknown: {error}")
            return
        self._to_ui(generation, self.screen.show_lifecycle, status, "")

    def _count(self, generation: int, scanner: Scanner, uploads: list[StaleUpload], stop: threading.Event) -> None:
        """Count parts on the scanner's bounded pool; tell the screen a few times a second."""
        lock = threading.Lock()
        counted = 0
        last_flush = time.monotonic()

        def on_counted(_: StaleUpload) -> None:
            nonlocal counted, last_flush
            with lock:
                counted += 1
                if time.monotonic() - last_flush < COUNT_FLUSH_S:
                    return
                last_flush = time.monotonic()
                done = counted
            self._to_ui(generation, self.screen.counted, done, len(uploads))

        scanner.count_parts(uploads, on_counted=on_counted, cancelled=stop)
        if not stop.is_set():
            self._to_ui(generation, self.screen.counted, len(uploads), len(uploads))
            self._to_ui(generation, self.screen.done_loading)

    def _to_ui(self, generation: int, method: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            if generation == self._generation and self.screen.is_mounted:
                method(*args)
        try:
            self.screen.app.call_from_thread(guarded)
        except RuntimeError:  # the app is shutting down
            pass
