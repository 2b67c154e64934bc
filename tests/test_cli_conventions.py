"""CLI conventions: `-h` as well as `--help`, and a reader that stops early (`| head -1`) gets no
traceback while the uploads go on to their end."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import NXUP, nxup_env, run_nxup, write

from engine.lifecycle import UploadStatus
from engine.state import StateStore
from sandbox import Sandbox


def test_dash_h_is_help_everywhere(tmp_path: Path, sandbox: Sandbox) -> None:
    env = nxup_env(sandbox.info, tmp_path / "state")
    for command in ([], ["upload"], ["resume"], ["status"], ["stale"], ["demo"]):
        shown = run_nxup([*command, "-h"], env)
        assert shown.returncode == 0 and "Usage: nxup" in shown.stdout, (command, shown.stderr)


def test_a_reader_that_stops_early_gets_no_traceback_and_the_uploads_finish(
        sandbox: Sandbox, target_folder: str, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(20):
        write(folder / f"f{index:02d}.txt", 500)
    state = tmp_path / "state"
    pipeline = subprocess.run(
        f"'{NXUP}' upload '{folder}' --to '{target_folder}' --no-tui | head -1",
        shell=True, env=nxup_env(sandbox.info, state), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert pipeline.stdout.count("\n") == 1, pipeline.stdout
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr, pipeline.stderr
    with StateStore.open(state) as store:
        records = store.recent(limit=100)
    assert len(records) == 20 and {r.status for r in records} == {UploadStatus.DONE}


def test_status_shows_when_and_which_document_and_limit_means_only_bandwidth(
        sandbox: Sandbox, target_folder: str, tmp_path: Path) -> None:
    import json
    import re

    env = nxup_env(sandbox.info, tmp_path / "state")
    paths = [tmp_path / f"s{index}.txt" for index in range(3)]
    for path in paths:
        write(path, 100)
    assert run_nxup(["upload", *map(str, paths), "--to", target_folder, "--no-tui"], env).returncode == 0
    shown = run_nxup(["status", "--recent", "2"], env)
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if "done" in line]
    assert len(rows) == 2
    for row in rows:
        assert re.match(r"\s+\d{4}-\d\d-\d\d \d\d:\d\d done ", row), row
        assert "(document " in row
    rows_json = [json.loads(line) for line in run_nxup(["status", "--json"], env).stdout.splitlines()]
    assert all(row["doc_uid"] and row["finished_at"] for row in rows_json)
    refused = run_nxup(["status", "--limit", "2"], env)
    assert refused.returncode == 2 and "No such option '--limit'" in refused.stderr


def test_a_wrong_url_says_what_is_wrong_with_it(sandbox: Sandbox, tmp_path: Path) -> None:
    info = sandbox.info
    path = tmp_path / "x.txt"
    write(path, 10)
    env = nxup_env(info, tmp_path / "state")
    del env["NUXEO_URL"]
    server_root = info.nuxeo_url.rsplit("/nuxeo", 1)[0]
    expected = {
        server_root: "it answers, but not as a Nuxeo server (Nuxeo URLs usually end with /nuxeo)",
        "http://nonexistent.invalid/nuxeo": "the host name is unknown (check the URL)",
        "http://127.0.0.1:1/nuxeo": "the connection was refused (nothing listens at that host and port)",
    }
    for url, cause in expected.items():
        result = run_nxup(["upload", str(path), "--to", "/default-domain/workspaces", "--no-tui", "--url", url], env)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"nxup: {url}: ") and line.endswith(cause), line


def test_no_user_is_a_usage_error_not_a_guess(sandbox: Sandbox, tmp_path: Path) -> None:
    """A password sent for an account nobody named could lock a real one: no default user."""
    path = tmp_path / "x.txt"
    write(path, 10)
    env = nxup_env(sandbox.info, tmp_path / "state")
    del env["NUXEO_USER"]
    result = run_nxup(["upload", str(path), "--to", "/default-domain/workspaces", "--no-tui"], env)
    assert result.returncode == 2
    assert "no user: give --user or set NUXEO_USER" in result.stderr
    help_text = run_nxup(["upload", "-h"], env).stdout
    assert "NUXEO_PASSWORD" in help_text and "NUXEO_TOKEN" in help_text and "Examples:" in help_text


def test_sizes_read_as_rclone_reads_them() -> None:
    from engine.units import parse_rate, parse_size

    mib = 1024 * 1024
    assert parse_size("20M") == parse_size("20MiB") == parse_size("20Mi") == 20 * mib
    assert parse_size("512k") == 512 * 1024 and parse_size("1G") == 1024 * mib
    assert parse_size("20MB") == 20_000_000  # the explicit SI form stays decimal
    assert parse_rate("20M/s") == parse_rate("20M") == 20 * mib


def test_demo_counts_are_integers(tmp_path: Path, sandbox: Sandbox) -> None:
    env = nxup_env(sandbox.info, tmp_path / "state")
    refused = run_nxup(["demo", "--large", "many", "--no-tui"], env)
    assert refused.returncode == 2 and "'--large'" in refused.stderr and "integer" in refused.stderr
    assert "--large INTEGER RANGE" in run_nxup(["demo", "-h"], env).stdout
