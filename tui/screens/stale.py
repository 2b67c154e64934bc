"""Stale multipart uploads: orphans that keep costing storage.

Uploads are listed in a thread worker, page by page, and counted (parts and bytes, one request
per upload) afterwards, so the table fills in at once and the keys keep working with 10,000
uploads. With admin access (`StaleSource`, or NXUP_S3_BUCKET in the environment) every upload
under the prefix is listed; without it, only the uploads nxup tracks, through Nuxeo.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static
from textual.worker import get_current_worker

from engine.errors import NxupError
from engine.server_url import bare_url
from engine.stale import (
    SAFE_ABORT_AGE,
    AbortOutcome,
    AbortReport,
    AbortResult,
    AdminScanner,
    LifecycleStatus,
    StaleSource,
    StaleUpload,
    TrackedScanner,
    add_abort_rule,
    lifecycle_status,
    parse_age,
    total_bytes,
    utc_now,
)
from engine.text import age_text, printable, size_text
from tui.screens.confirm import ConfirmScreen

LIFECYCLE_RULE_DAYS = 7
KEY_WIDTH = 26
NAME_WIDTH = 12
COUNT_FLUSH_S = 0.25  # how often counted parts reach the table
NO_SOURCE_HINT = (
    "Only nxup's own uploads (through Nuxeo). To see every upload in the bucket, start nxup with "
    "NXUP_S3_BUCKET (and NXUP_S3_ENDPOINT) and admin keys in AWS_* or NXUP_S3_PROFILE."
)
# (key, title, width); the key column takes the rest.
COLUMNS = (("sel", "✓", 1), ("age", "Age", 12), ("parts", "Parts", 6), ("size", "Size", 10),
           ("nxup", "nxup", 10), ("key", "Key", None))


def shorten(text: str, width: int) -> str:
    """Keep both ends of a key: the prefix says where, the end says which."""
    text = printable(text)
    if len(text) <= width:
        return text
    head = width // 3
    return text[:head] + "…" + text[-(width - head - 1):]


class KeyCell(Text):
    """The shortened key as shown, carrying its upload id: `DataTable.sort` hands the key
    function cell values only, and sorting in place is ten times faster than rebuilding 10,000
    rows (each new row is measured). A `Text`, not a string, so that a key is never read as
    markup."""

    def __init__(self, text: str, upload_id: str) -> None:
        super().__init__(text)
        self.upload_id = upload_id


def nxup_cell(upload: StaleUpload) -> Text:
    tracked = upload.tracked
    if tracked is None:
        return Text("—", style="dim")
    name = shorten(tracked.file_name, NAME_WIDTH)
    if tracked.in_use_by is not None:  # a running nxup sends it: not a leftover
        return Text(f"● {name}", style="cyan")
    return Text(f"▶ {name}", style="green") if tracked.resumable else Text(f"✗ {name}", style="yellow")


class StaleScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("space", "toggle_select", "Select", show=False),
        Binding("x", "abort_selected", "Abort"),
        Binding("X", "abort_shown", "Abort all"),
        Binding("a", "sort('age')", "Sort by age", show=False),
        Binding("z", "sort('size')", "Sort by size", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("u", "resume", "Resume"),
        Binding("L", "add_lifecycle_rule", "Rule", show=False),
        Binding("slash", "focus_filter", "Filter", show=False),
    ]

    def __init__(self, source: StaleSource | None = None) -> None:
        super().__init__()
        self.source = source if source is not None else StaleSource.from_env()
        self.uploads: dict[str, StaleUpload] = {}
        self.shown: list[str] = []
        self.selected: set[str] = set()
        self.sort_by = "age"
        self.descending = False  # oldest first
        self.min_age: timedelta | None = None
        self.lifecycle: LifecycleStatus | None = None
        self.loading = False
        self._scanner: AdminScanner | TrackedScanner | None = None
        self._admin_client: Any = None
        self._generation = 0
        self._stop_counting = threading.Event()

    # == layout ==================================================================================
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="stale-status", markup=False)
        with Horizontal(id="stale-filters"):
            yield Input(value=self.source.prefix if self.source else "", placeholder="prefix (enter)", id="stale-prefix")
            yield Input(placeholder="older than, e.g. 24h (enter)", id="stale-age")
        yield Label("", id="stale-progress", markup=False)
        table: DataTable[Any] = DataTable(id="stale-table", cursor_type="row", zebra_stripes=True)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        yield Label("space select · a/z sort by age/size · / filter · r refresh · L lifecycle rule", id="stale-detail",
                    markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.table.focus()
        self.query_one("#stale-status", Static).update(
            f"bucket {self.source.admin.bucket} · reading lifecycle rules…" if self.source else NO_SOURCE_HINT
        )
        self.action_refresh()

    def on_unmount(self) -> None:
        self._stop_counting.set()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#stale-table", DataTable)

    def now(self) -> datetime:
        return self.source.now() if self.source else utc_now()

    # == loading (thread worker) =================================================================
    def action_refresh(self) -> None:
        self._stop_counting.set()
        self._stop_counting = threading.Event()
        self._generation += 1
        self.uploads.clear()
        self.selected.clear()
        self.shown = []
        self.table.clear()
        self.loading = True
        self._progress("listing multipart uploads…")
        self._load(self._generation, self.query_one("#stale-prefix", Input).value.strip(), self._stop_counting)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stale-load")
    def _load(self, generation: int, prefix: str, stop: threading.Event) -> None:
        try:
            scanner = self._make_scanner()
            listed: list[StaleUpload] = []
            for page in scanner.pages(prefix):
                if get_current_worker().is_cancelled or stop.is_set():
                    return
                listed.extend(page)
                self._to_ui(self._add_page, generation, page, len(listed))
            self._to_ui(self._listed, generation, len(listed))
            if isinstance(scanner, AdminScanner):
                self._read_lifecycle(generation, scanner)
            self._count(generation, scanner, listed, stop)
        except NxupError as error:
            self._to_ui(self._failed, generation, str(error))

    def _make_scanner(self) -> AdminScanner | TrackedScanner:
        store = self.app.manager.store  # type: ignore[attr-defined]
        if self._scanner is None:
            if self.source is not None:
                self._admin_client = self.source.admin.client()
                self._scanner = AdminScanner(self._admin_client, self.source.admin.bucket, store, now=self.source.now)
            else:
                self._scanner = TrackedScanner(store, self.app.manager.nuxeo)  # type: ignore[attr-defined]
        return self._scanner

    def _read_lifecycle(self, generation: int, scanner: AdminScanner) -> None:
        try:
            status = lifecycle_status(scanner.client, scanner.bucket)
        except NxupError as error:
            self._to_ui(self._show_lifecycle, generation, None, f"lifecycle rules unknown: {error}")
            return
        self._to_ui(self._show_lifecycle, generation, status, "")

    def _count(self, generation: int, scanner: AdminScanner | TrackedScanner, uploads: list[StaleUpload],
               stop: threading.Event) -> None:
        """Count parts on the scanner's bounded pool; flush counted rows to the table a few
        times a second rather than once per upload."""
        pending: list[StaleUpload] = []
        lock = threading.Lock()
        counted = 0
        last_flush = time.monotonic()

        def on_counted(upload: StaleUpload) -> None:
            nonlocal counted, last_flush
            with lock:
                pending.append(upload)
                counted += 1
                if time.monotonic() - last_flush < COUNT_FLUSH_S:
                    return
                batch, pending[:] = list(pending), []
                last_flush = time.monotonic()
                done = counted
            self._to_ui(self._counted, generation, batch, done, len(uploads))

        scanner.count_parts(uploads, on_counted=on_counted, cancelled=stop)
        if not stop.is_set():
            self._to_ui(self._counted, generation, list(pending), len(uploads), len(uploads))
            self._to_ui(self._done_loading, generation)

    def _to_ui(self, method: Callable[..., None], generation: int, *args: Any) -> None:
        """Run `method` on the UI thread unless a refresh made this load obsolete."""
        def guarded() -> None:
            if generation == self._generation and self.is_mounted:
                method(*args)
        try:
            self.app.call_from_thread(guarded)
        except RuntimeError:  # the app is shutting down
            pass

    # == UI-thread updates =======================================================================
    def _add_page(self, page: list[StaleUpload], total: int) -> None:
        now = self.now()
        fresh = [u for u in page if u.upload_id not in self.uploads]
        for upload in fresh:
            self.uploads[upload.upload_id] = upload
        visible = [u for u in fresh if self._passes(u, now)]
        # Appended in listing order while loading; sorted once the listing is complete.
        table = self.table
        with self.app.batch_update():
            for upload in visible:
                table.add_row(*self._cells(upload, now), key=upload.upload_id)
        self.shown.extend(u.upload_id for u in visible)
        self._progress(f"listing… {total:,} uploads")

    def _listed(self, total: int) -> None:
        self._apply_sort()
        self._progress(f"{total:,} uploads listed · counting parts…" if total else "no multipart uploads")

    def _counted(self, batch: list[StaleUpload], done: int, total: int) -> None:
        table = self.table
        with self.app.batch_update():
            for upload in batch:
                if upload.upload_id in table.rows:
                    table.update_cell(upload.upload_id, "parts", self._parts_cell(upload))
                    table.update_cell(upload.upload_id, "size", size_text(upload.bytes) if upload.bytes is not None else "…")
        if done < total:
            self._progress(f"{total:,} uploads · counting parts {done:,}/{total:,}")

    def _done_loading(self) -> None:
        self.loading = False
        if self.sort_by == "size":
            self._apply_sort()
        self._show_totals()

    def _failed(self, message: str) -> None:
        self.loading = False
        message = printable(message)
        self._progress(f"error: {message}")
        self.notify(message, title="stale uploads", severity="error", timeout=10, markup=False)

    def _show_lifecycle(self, status: LifecycleStatus | None, problem: str) -> None:
        self.lifecycle = status
        bucket = self.source.admin.bucket if self.source else ""
        # One line of an 80-column terminal: the CLI's `--lifecycle` gives the long form.
        if status is None:
            text = f"bucket {bucket} · {printable(problem)}"
        elif status.has_abort_rule:
            text = f"bucket {bucket} · lifecycle aborts incomplete uploads after {status.abort_days} day(s)"
        else:
            text = f"bucket {bucket} · no AbortIncompleteMultipartUpload rule · L adds one"
        self.query_one("#stale-status", Static).update(text)

    def _progress(self, text: str) -> None:
        self.query_one("#stale-progress", Label).update(text)

    def _show_totals(self) -> None:
        shown = [self.uploads[i] for i in self.shown]
        tracked = sum(1 for u in shown if u.tracked is not None)
        text = f"{len(shown):,} shown of {len(self.uploads):,} · {size_text(total_bytes(shown))} · {tracked} tracked by nxup"
        if self.selected:
            chosen = [self.uploads[i] for i in self.selected if i in self.uploads]
            text += f" · {len(chosen)} selected ({size_text(total_bytes(chosen))})"
        self._progress(text)

    # == rows ====================================================================================
    def _passes(self, upload: StaleUpload, now: datetime) -> bool:
        return not self.min_age or upload.age(now) >= self.min_age

    def _parts_cell(self, upload: StaleUpload) -> Text | str:
        if upload.parts is not None:
            return str(upload.parts)
        return Text("!", style="red") if upload.note else "…"

    def _cells(self, upload: StaleUpload, now: datetime) -> list[Any]:
        return [
            "✓" if upload.upload_id in self.selected else " ",
            age_text(upload.age(now)),
            self._parts_cell(upload),
            size_text(upload.bytes) if upload.bytes is not None else "…",
            nxup_cell(upload),
            KeyCell(shorten(upload.key, KEY_WIDTH), upload.upload_id),
        ]

    def _sort_key(self, upload: StaleUpload) -> Any:
        if self.sort_by == "size":
            return (upload.bytes or 0, upload.initiated)
        return (upload.initiated, upload.key)

    def _apply_sort(self) -> None:
        """Order the rows in place, keeping the cursor on its upload."""
        table = self.table
        current = self.highlighted()
        table.sort("key", key=lambda cell: self._sort_key(self.uploads[cell.upload_id]), reverse=self.descending)
        shown = [self.uploads[i] for i in self.shown]
        self.shown = [u.upload_id for u in sorted(shown, key=self._sort_key, reverse=self.descending)]
        self._keep_cursor(current)

    def _rebuild_rows(self) -> None:
        """Rebuild the table for a new age filter (rare: rows are measured as they are added)."""
        now = self.now()
        table = self.table
        current = self.highlighted()
        ordered = sorted(self.uploads.values(), key=self._sort_key, reverse=self.descending)
        visible = [u for u in ordered if self._passes(u, now)]
        self.shown = [u.upload_id for u in visible]
        with self.app.batch_update():
            table.clear()
            for upload in visible:
                table.add_row(*self._cells(upload, now), key=upload.upload_id)
        self._keep_cursor(current)
        if not self.loading:
            self._show_totals()

    def _keep_cursor(self, current: StaleUpload | None) -> None:
        table = self.table
        if current is not None and current.upload_id in table.rows:
            table.move_cursor(row=table.get_row_index(current.upload_id))

    def highlighted(self) -> StaleUpload | None:
        table = self.table
        if not table.row_count or table.cursor_row < 0:
            return None
        try:
            row_key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        except Exception:
            return None
        return self.uploads.get(str(row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        upload = self.uploads.get(str(event.row_key.value))
        if upload is None:
            return
        parts = [upload.key, f"started {upload.initiated:%Y-%m-%d %H:%M} UTC"]
        if upload.tracked is not None:
            tracked = upload.tracked
            progress = f"{tracked.parts_done}/{tracked.part_count or '?'} parts"
            parts.append(f"{tracked.path} ({progress}, " + ("resumable: u" if tracked.resumable else tracked.reason) + ")")
        if upload.note:
            parts.append(upload.note)
        self.query_one("#stale-detail", Label).update(printable(" · ".join(parts)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row resumes it (when nxup can)."""
        event.stop()
        self.action_resume()

    # == keys ====================================================================================
    def action_toggle_select(self) -> None:
        upload = self.highlighted()
        if upload is None:
            return
        if upload.upload_id in self.selected:
            self.selected.discard(upload.upload_id)
        else:
            self.selected.add(upload.upload_id)
        self.table.update_cell(upload.upload_id, "sel", "✓" if upload.upload_id in self.selected else " ")
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1)
        if not self.loading:
            self._show_totals()

    def action_sort(self, by: str) -> None:
        if self.sort_by == by:
            self.descending = not self.descending
        else:
            self.sort_by, self.descending = by, by == "size"  # largest first, oldest first
        self._apply_sort()

    def action_focus_filter(self) -> None:
        self.query_one("#stale-prefix", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "stale-age":
            self._apply_age_filter(event.value.strip())
        else:
            self.action_refresh()  # the prefix is a server-side filter
        self.table.focus()

    def _apply_age_filter(self, text: str) -> None:
        try:
            self.min_age = parse_age(text) if text else None
        except ValueError as error:
            self.notify(printable(str(error)), severity="warning", markup=False)
            return
        self._rebuild_rows()

    def _chosen(self, everything_shown: bool) -> list[StaleUpload]:
        if everything_shown:
            return [self.uploads[i] for i in self.shown]
        chosen = [self.uploads[i] for i in self.shown if i in self.selected]
        if not chosen and (upload := self.highlighted()) is not None:
            chosen = [upload]
        return chosen

    def action_abort_selected(self) -> None:
        self._confirm_abort(self._chosen(everything_shown=False))

    def action_abort_shown(self) -> None:
        uploads = self._chosen(everything_shown=True)
        if self.min_age is None:
            # Everything at once, with no age asked for: not the uploads young enough to be running
            # (an age of 0 asks for all of them).
            now = self.now()
            old = [u for u in uploads if u.age(now) >= SAFE_ABORT_AGE]
            if len(old) < len(uploads):
                self.notify(f"{len(uploads) - len(old):,} upload(s) younger than a day left out: "
                            "filter by age (0 for all) to include them", title="stale uploads", timeout=8)
            uploads = old
        self._confirm_abort(uploads)

    def _confirm_abort(self, uploads: list[StaleUpload]) -> None:
        if not uploads or self._scanner is None:
            return
        size = size_text(total_bytes(uploads))
        if any(u.parts is None and not u.note for u in uploads):
            size = f"at least {size} (still counting)"
        resumable = sum(1 for u in uploads if u.tracked is not None and u.tracked.resumable)
        warning = f" {resumable} of them nxup could still resume." if resumable else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self._abort(uploads)

        self.app.push_screen(
            ConfirmScreen(f"Abort {len(uploads):,} multipart upload(s) holding {size}?{warning}",
                          yes="Abort", no="Keep"),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="stale-abort")
    def _abort(self, uploads: list[StaleUpload]) -> None:
        assert self._scanner is not None
        manager = self.app.manager  # type: ignore[attr-defined]
        loaded = set(manager.file_ids())
        report = AbortReport(dry_run=False)
        through_scanner = []
        for upload in uploads:
            # A file the transfer manager holds is cancelled by it, so that its own state (and
            # its workers) agree with S3.
            if upload.tracked is not None and upload.tracked.record_id in loaded:
                manager.cancel(upload.tracked.record_id)
                report.results.append(AbortResult(upload, AbortOutcome.CANCELLED))
            else:
                through_scanner.append(upload)
        report.results.extend(self._scanner.abort(through_scanner).results)
        generation = self._generation
        self._to_ui(self._aborted, generation, report)

    def _aborted(self, report: AbortReport) -> None:
        gone = {r.upload.upload_id for r in report.succeeded}
        for upload_id in gone:
            self.uploads.pop(upload_id, None)
            self.selected.discard(upload_id)
            if upload_id in self.table.rows:
                self.table.remove_row(upload_id)
        self.shown = [i for i in self.shown if i not in gone]
        message = f"aborted {len(report.succeeded):,} upload(s), {size_text(report.bytes_freed)} freed"
        if report.failed:
            message += f"; {len(report.failed)} failed: {report.failed[0].message}"
        self.notify(printable(message), title="stale uploads", severity="error" if report.failed else "information",
                    timeout=10, markup=False)
        self._show_totals()

    def action_resume(self) -> None:
        upload = self.highlighted()
        if upload is None:
            return
        tracked = upload.tracked
        if tracked is None:
            self.notify("nxup does not track this upload: it can only be aborted", severity="warning")
            return
        if not tracked.resumable:
            self.notify(printable(f"cannot resume {tracked.file_name}: {tracked.reason}"), severity="warning",
                        markup=False)
            return
        manager = self.app.manager  # type: ignore[attr-defined]
        if tracked.server_url != manager.connection.url:
            self.notify(printable(f"{tracked.file_name} belongs to {bare_url(tracked.server_url)}: run `nxup resume --url` for it"),
                        severity="warning", markup=False)
            return
        self._resume(tracked.record_id)
        self.notify(printable(f"resuming {tracked.file_name}"), timeout=5, markup=False)

    @work(thread=True, exit_on_error=False, group="stale-resume")
    def _resume(self, record_id: int) -> None:
        manager = self.app.manager  # type: ignore[attr-defined]
        if record_id in manager.file_ids():
            manager.resume(record_id)
        else:
            manager.load_unfinished()

    def action_add_lifecycle_rule(self) -> None:
        if self.source is None or self._admin_client is None:
            self.notify("lifecycle rules need admin access to the bucket (NXUP_S3_BUCKET)", severity="warning")
            return
        if self.lifecycle is not None and self.lifecycle.has_abort_rule:
            self.notify(self.lifecycle.describe(), markup=False)
            return
        kept = len(self.lifecycle.rules) if self.lifecycle else 0

        def answered(yes: bool | None) -> None:
            if yes:
                self._add_rule()

        self.app.push_screen(ConfirmScreen(
            f"Add a lifecycle rule to bucket {self.source.admin.bucket} aborting every incomplete multipart "
            f"upload {LIFECYCLE_RULE_DAYS} days after it starts? ({kept} existing rule(s) are kept)",
            yes="Add rule", no="Cancel"), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stale-rule")
    def _add_rule(self) -> None:
        assert self.source is not None
        try:
            status = add_abort_rule(self._admin_client, self.source.admin.bucket, LIFECYCLE_RULE_DAYS)
        except NxupError as error:
            self._to_ui(self._failed_quietly, self._generation, str(error))
            return
        self._to_ui(self._show_lifecycle, self._generation, status, "")

    def _failed_quietly(self, message: str) -> None:
        self.notify(printable(message), title="lifecycle rule", severity="error", timeout=10, markup=False)

