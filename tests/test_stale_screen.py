"""The stale-uploads screen driven with Textual's Pilot against real SeaweedFS: every key is
checked against what S3 holds afterwards, not just against the screen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    info_of,
    kill_upload_after_first_part,
    make_orphans,
    new_target_folder,
    open_ids,
    stale_prefix,
    until,
)

from cli.demo import sandbox_stale_source
from engine.lifecycle import UploadStatus
from engine.stale import StaleSource, lifecycle_status
from engine.state import StateStore
from sandbox import NuxeoServer, Sandbox
from tui.app import NxupApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.stale import StaleScreen

SIZE = (100, 30)


def admin_source(sandbox: Sandbox, prefix: str) -> StaleSource:
    source: StaleSource = sandbox_stale_source(sandbox.info, prefix)
    return source


async def open_screen(app: NxupApp, pilot: Any, count: int) -> StaleScreen:
    await pilot.press("s")
    screen = app.screen
    assert isinstance(screen, StaleScreen)
    await until(
        pilot,
        lambda: not screen.loading and len(screen.uploads) == count,
        what=f"{count} uploads loaded",
    )
    return screen


def keys_shown(screen: StaleScreen) -> list[str]:
    return [screen.uploads[i].key for i in screen.shown]


def test_sort_filter_select_and_abort(
    sandbox: Sandbox, make_app: Any, s3_admin: Any, tmp_path: Path
) -> None:
    bucket, prefix = sandbox.info.bucket, stale_prefix()
    first = make_orphans(s3_admin, bucket, prefix + "a/", 1, parts=1)
    time.sleep(1.1)  # distinct Initiated seconds, so that age order is known
    rest = make_orphans(s3_admin, bucket, prefix + "b/", 4, parts=1)
    app = make_app(
        sandbox,
        tmp_path / "state",
        start=None,
        stale_source=admin_source(sandbox, prefix),
    )

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(app, pilot, 5)
            await until(
                pilot,
                lambda: all(u.parts == 1 for u in screen.uploads.values()),
                what="parts counted",
            )
            assert keys_shown(screen)[0] == first[0][0]  # oldest first
            await pilot.press("z")  # largest first
            assert keys_shown(screen)[0] == rest[3][0]
            await pilot.press("a")
            assert keys_shown(screen)[0] == first[0][0]
            await pilot.press("a")  # again: newest first
            assert keys_shown(screen)[-1] == first[0][0]

            await pilot.press("z")
            screen.table.move_cursor(row=0)
            await pilot.press("space", "space")  # the two largest: 4 KiB and 3 KiB
            assert len(screen.selected) == 2
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmScreen)
            assert "Abort 2 multipart upload(s) holding 7.0 KiB?" in app.screen.question
            await pilot.press("y")
            await until(pilot, lambda: len(screen.uploads) == 3, what="two aborted")
            assert open_ids(s3_admin, bucket, prefix) == {
                first[0][1],
                rest[0][1],
                rest[1][1],
            }

            # The age filter: nothing here is an hour old.
            screen.query_one("#stale-age").value = "1h"  # type: ignore[attr-defined]
            screen.query_one("#stale-age").focus()
            await pilot.press("enter")
            assert screen.shown == []
            await pilot.press("X")
            assert not isinstance(
                app.screen, ConfirmScreen
            )  # nothing shown, nothing to abort
            screen.query_one("#stale-age").value = ""  # type: ignore[attr-defined]
            screen.query_one("#stale-age").focus()
            await pilot.press("enter")
            assert len(screen.shown) == 3
            # Everything shown, no age asked for: uploads younger than a day are left out.
            await pilot.press("X")
            assert not isinstance(app.screen, ConfirmScreen)
            await until(pilot, lambda: "3 upload(s) younger than a day left out" in " ".join(
                str(n.message) for n in app._notifications), what="the note")
            screen.query_one("#stale-age").value = "0"  # type: ignore[attr-defined]
            screen.query_one("#stale-age").focus()
            await pilot.press("enter")
            assert len(screen.shown) == 3

            await pilot.press("X")
            assert (
                isinstance(app.screen, ConfirmScreen)
                and "Abort 3 multipart upload(s) holding 4.0 KiB?"
                in app.screen.question
            )
            await pilot.press("n")
            assert open_ids(s3_admin, bucket, prefix) != set()
            await pilot.press("X", "y")
            await until(pilot, lambda: not screen.uploads, what="all aborted")
            assert open_ids(s3_admin, bucket, prefix) == set()
            await pilot.press("r")
            await until(pilot, lambda: not screen.loading, what="refresh")
            assert screen.shown == []
            await pilot.press("escape")
            assert not isinstance(app.screen, StaleScreen)
            await pilot.press("q")

    asyncio.run(scenario())


@pytest.mark.usefixtures("restore_lifecycle")
def test_prefix_filter_and_the_lifecycle_rule(
    sandbox: Sandbox, make_app: Any, s3_admin: Any, tmp_path: Path
) -> None:
    bucket, prefix = sandbox.info.bucket, stale_prefix()
    make_orphans(s3_admin, bucket, prefix + "one/", 2)
    make_orphans(s3_admin, bucket, prefix + "two/", 1)
    s3_admin.delete_bucket_lifecycle(Bucket=bucket)
    app = make_app(
        sandbox,
        tmp_path / "state",
        start=None,
        stale_source=admin_source(sandbox, prefix),
    )

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(app, pilot, 3)
            status = screen.query_one("#stale-status")
            await until(
                pilot,
                lambda: "L adds one" in str(status.render()),
                what="lifecycle status",
            )
            await pilot.press("slash")
            prefix_input = screen.query_one("#stale-prefix")
            prefix_input.value = prefix + "two/"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await until(
                pilot,
                lambda: not screen.loading and len(screen.uploads) == 1,
                what="prefix filter",
            )
            assert keys_shown(screen)[0].startswith(prefix + "two/")

            await pilot.press("L")
            assert (
                isinstance(app.screen, ConfirmScreen)
                and "7 days" in app.screen.question
            )
            await pilot.press("y")
            await until(
                pilot,
                lambda: (
                    "aborts incomplete uploads after 7 day(s)" in str(status.render())
                ),
                what="rule added",
            )
            assert lifecycle_status(s3_admin, bucket).abort_days == 7
            await pilot.press("escape", "q")

    asyncio.run(scenario())


def test_resume_a_tracked_upload_and_abort_through_nuxeo_without_admin_keys(
    sandbox: Sandbox,
    permissive_server: NuxeoServer,
    make_app: Any,
    s3_admin: Any,
    tmp_path: Path,
    make_nuxeo: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through Nuxeo, with batch credentials that may abort (a stock server's may not: the
    engine's stale tests cover that)."""
    monkeypatch.delenv("NXUP_S3_BUCKET", raising=False)
    info = info_of(sandbox, permissive_server)
    target_folder = new_target_folder(make_nuxeo(info))
    state_dir = tmp_path / "state"
    resumable = kill_upload_after_first_part(
        info, state_dir, tmp_path / "keep.mov", target_folder
    )
    doomed = kill_upload_after_first_part(
        info, state_dir / "other", tmp_path / "drop.mov", target_folder
    )
    with (
        StateStore.open(state_dir) as store,
        StateStore.open(state_dir / "other") as other,
    ):
        # Both in one state database, as after two killed runs.
        copy = other.get(doomed.id)
        assert copy is not None
        copy.id = None
        doomed = store.add_upload(copy)
    app = make_app(sandbox, state_dir, start=None, info=info)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(app, pilot, 2)
            assert "Only nxup's own uploads" in str(
                screen.query_one("#stale-status").render()
            )
            await until(
                pilot,
                lambda: all(u.parts == 1 for u in screen.uploads.values()),
                what="parts via Nuxeo",
            )

            screen.table.move_cursor(row=screen.shown.index(doomed.upload_id))
            await pilot.press("x", "y")
            await until(
                pilot, lambda: doomed.upload_id not in screen.uploads, what="aborted"
            )
            assert doomed.upload_id not in open_ids(
                s3_admin, info.bucket, doomed.object_key
            )

            screen.table.move_cursor(row=screen.shown.index(resumable.upload_id))
            await pilot.press("u")
            await until(
                pilot,
                lambda: (
                    app.model.rows.get(resumable.id) is not None
                    and app.model.rows[resumable.id].status is UploadStatus.DONE
                ),
                timeout=60,
                what="resumed upload done",
            )
            await pilot.press("escape", "q")

    asyncio.run(scenario())
    store = app.manager.store
    assert store.get(doomed.id).status is UploadStatus.CANCELLED  # type: ignore[union-attr]
    assert store.get(resumable.id).status is UploadStatus.DONE  # type: ignore[union-attr]
    assert open_ids(s3_admin, info.bucket, resumable.object_key) == set()
