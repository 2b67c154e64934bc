"""Stale multipart uploads: orphans that keep costing storage.

Uploads are listed in a thread worker, page by page, and counted (parts and bytes, one request
per upload) afterwards, so the table fills in at once and the keys keep working with 10,000
uploads. With admin access (`StaleSource`, or NXUP_S3_BUCKET in the environment) every upload
under the prefix is listed; without it, only the uploads nxup tracks, through Nuxeo.
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static

from engine.server_url import bare_url
from engine.stale import (
    SAFE_ABORT_AGE,
    AbortReport,
    LifecycleStatus,
    StaleSource,
    StaleUpload,
    abort_question,
    parse_age,
    report_line,
    utc_now,
)
from engine.surface import Transfers
from engine.text import printable
from tui.screens.confirm import ConfirmScreen
from tui.stale_work import StaleWork
from tui.widgets.stale_table import StaleTable, detail_text, totals_text

LIFECYCLE_RULE_DAYS = 7
NO_SOURCE_HINT = (
    "Only nxup's own uploads (through Nuxeo). For every upload in the bucket, start nxup with NXUP_S3_BUCKET "
    "(and NXUP_S3_ENDPOINT) and admin keys in AWS_* or NXUP_S3_PROFILE."
)
KEYS_HINT = "space select · a/z sort by age/size · / filter · r refresh · L lifecycle rule"


class StaleScreen(Screen[None]):
    TITLE = "Stale uploads"
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

    def __init__(self, transfers: Transfers, source: StaleSource | None = None) -> None:
        super().__init__()
        self.transfers = transfers
        self.source = source if source is not None else StaleSource.from_env()
        self.lifecycle: LifecycleStatus | None = None
        self.loading = False
        self.work = StaleWork(self)

    # == layout ==================================================================================
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="stale-status", markup=False)
        with Horizontal(id="stale-filters"):
            yield Input(value=self.source.prefix if self.source else "", placeholder="prefix (enter)",
                        id="stale-prefix", compact=True)
            yield Input(placeholder="older than, e.g. 24h (enter)", id="stale-age", compact=True)
        yield Label("", id="stale-progress", markup=False)
        yield StaleTable(now=self.now, id="stale-table")
        yield Static(KEYS_HINT, id="stale-detail", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.table.focus()
        if self.source is not None:
            self.sub_title = f"bucket {self.source.admin.bucket}"
            self.query_one("#stale-status", Static).update("reading lifecycle rules…")
        else:
            self.sub_title = f"nxup's own, through {bare_url(self.transfers.connection.url)}"
            self.query_one("#stale-status", Static).update(NO_SOURCE_HINT)
        self.action_refresh()

    def on_unmount(self) -> None:
        self.work.stop()

    @property
    def table(self) -> StaleTable:
        return self.query_one("#stale-table", StaleTable)

    @property
    def uploads(self) -> dict[str, StaleUpload]:
        return self.table.uploads

    @property
    def shown(self) -> list[str]:
        return self.table.shown

    @property
    def selected(self) -> set[str]:
        return self.table.selected

    def now(self) -> datetime:
        return self.source.now() if self.source else utc_now()

    # == loading: the worker (`StaleWork`) calls these on the UI thread =======================
    def action_refresh(self) -> None:
        self.table.clear()
        self.loading = True
        self.progress("listing multipart uploads…")
        self.work.load(self.query_one("#stale-prefix", Input).value.strip())

    def add_page(self, page: list[StaleUpload], total: int) -> None:
        self.table.add(page)
        self.progress(f"listing… {total:,} uploads")

    def listed(self, total: int) -> None:
        self.table.sort()
        self.table.move_cursor(row=0)
        self.progress(f"{total:,} uploads listed · counting parts…" if total else "no multipart uploads")

    def counted(self, done: int, total: int) -> None:
        self.table.changed()
        if done < total:
            self.progress(f"{total:,} uploads · counting parts {done:,}/{total:,}")

    def done_loading(self) -> None:
        self.loading = False
        if self.table.sort_by == "size":
            self.table.sort()
        self._show_totals()

    def failed(self, message: str) -> None:
        self.loading = False
        message = printable(message)
        self.progress(f"error: {message}")
        self.notify(message, title="stale uploads", severity="error", timeout=10, markup=False)

    def show_lifecycle(self, status: LifecycleStatus | None, problem: str) -> None:
        self.lifecycle = status
        # One line of an 80-column terminal: the CLI's `--lifecycle` gives the long form.
        if status is None:
            text = printable(problem)
        elif status.has_abort_rule:
            text = f"lifecycle aborts incomplete uploads after {status.abort_days} day(s)"
        else:
            text = "no AbortIncompleteMultipartUpload rule: they stay until aborted · L adds one"
        self.query_one("#stale-status", Static).update(text)

    def progress(self, text: str) -> None:
        self.query_one("#stale-progress", Label).update(text)

    def _show_totals(self) -> None:
        self.progress(totals_text(self.table))

    # == rows ====================================================================================
    def on_stale_table_highlighted(self, event: StaleTable.Highlighted) -> None:
        self.query_one("#stale-detail", Static).update(detail_text(event.upload))

    def on_stale_table_chosen(self, event: StaleTable.Chosen) -> None:
        """Enter on a row resumes it (when nxup can)."""
        event.stop()
        self.action_resume()

    # == keys ====================================================================================
    def action_toggle_select(self) -> None:
        self.table.toggle_selected()
        if not self.loading:
            self._show_totals()

    def action_sort(self, by: str) -> None:
        self.table.sort_on(by)

    def action_focus_filter(self) -> None:
        self.query_one("#stale-prefix", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "stale-age":
            try:
                self.table.filter(parse_age(event.value.strip()) if event.value.strip() else None)
            except ValueError as error:
                self.notify(printable(str(error)), severity="warning", markup=False)
                return
            if not self.loading:
                self._show_totals()
        else:
            self.action_refresh()  # the prefix is a server-side filter
        self.table.focus()

    def action_abort_selected(self) -> None:
        self._confirm_abort(self.table.chosen())

    def action_abort_shown(self) -> None:
        uploads = [self.uploads[i] for i in self.shown]
        if self.table.min_age is None:
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
        if not uploads or self.work.scanner is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.work.abort(uploads)

        self.app.push_screen(
            ConfirmScreen(abort_question(uploads), yes="Abort", no="Keep"),
            answered,
        )

    def aborted(self, report: AbortReport) -> None:
        self.table.remove_uploads({r.upload.upload_id for r in report.succeeded})
        message = report_line(report)
        if report.failed:
            message += f": {report.failed[0].message}"
        self.notify(printable(message), title="stale uploads", severity="error" if report.failed else "information",
                    timeout=10, markup=False)
        self._show_totals()

    def action_resume(self) -> None:
        upload = self.table.highlighted
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
        if tracked.server_url != self.transfers.connection.url:
            self.notify(printable(f"{tracked.file_name} belongs to {bare_url(tracked.server_url)}: "
                                  "run `nxup resume --url` for it"), severity="warning", markup=False)
            return
        self.work.resume(tracked.file_id)
        self.notify(printable(f"resuming {tracked.file_name}"), timeout=5, markup=False)

    def action_add_lifecycle_rule(self) -> None:
        if self.source is None or self.work.admin_client is None:
            self.notify("lifecycle rules need admin access to the bucket (NXUP_S3_BUCKET)", severity="warning")
            return
        if self.lifecycle is not None and self.lifecycle.has_abort_rule:
            self.notify(self.lifecycle.describe(), markup=False)
            return
        kept = len(self.lifecycle.rules) if self.lifecycle else 0
        bucket = self.source.admin.bucket

        def answered(yes: bool | None) -> None:
            if yes:
                self.work.add_rule(bucket, LIFECYCLE_RULE_DAYS)

        self.app.push_screen(ConfirmScreen(
            f"Add a lifecycle rule to bucket {bucket} aborting every incomplete multipart "
            f"upload {LIFECYCLE_RULE_DAYS} days after it starts? ({kept} existing rule(s) are kept)",
            yes="Add rule", no="Cancel"), answered)

    def rule_failed(self, message: str) -> None:
        self.notify(printable(message), title="lifecycle rule", severity="error", timeout=10, markup=False)

