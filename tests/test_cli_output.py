"""What a headless run shows: `-q` errors and the summary, the default the overall progress, `-v` a
line per file; `--log-file` (0600) every event whatever the screen shows; with `--json`, fatal
errors as one `error` object and their exit codes, the overall progress as `overall` objects and the
summary with its elapsed time."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from conftest import MIB, nxup_env, run_nxup, write

from cli.output import Detail
from cli.plain import Reporter
from cli.progress import OverallProgress
from engine.events import (
    FileCompleted,
    FileFailed,
    FilePaused,
    FileProgress,
    FileQueued,
    FileStarted,
    Notice,
    PartProgress,
)
from engine.redaction import MASK, redact, remember_login, remember_secret
from sandbox import Sandbox

# -- the reporter, fed by hand -----------------------------------------------------------------

RUN = [
    FileQueued(1, path="/d/a.bin", size=100, target="/t"),
    FileStarted(1, path="/d/a.bin", size=100, multipart=False, part_size=100, part_count=1),
    FileProgress(1, sent=50, size=100, parts_done=0, part_count=1, parts_in_flight=(PartProgress(1, 50, 100),)),
    FileCompleted(1, path="/d/a.bin", size=100, document_path="/t/a.bin", document_uid="u", etag="e"),
    FileFailed(-1, path="/d/missing", reason="no such file or directory", retryable=False),
    Notice(1, message="/d/a.bin: a notice"),
]


@pytest.mark.parametrize(
    ("detail", "kinds"),
    [
        (Detail.QUIET, ["failed", "1"]),
        (Detail.NORMAL, ["failed", "notice", "overall", "1"]),
        (Detail.VERBOSE, ["started", "progress", "done", "failed", "notice", "overall", "1"]),
    ],
)
def test_each_level_shows_its_lines(detail: Detail, kinds: list[str]) -> None:
    stream = io.StringIO()
    reporter = Reporter(json_lines=False, stream=stream, progress_every_s=0.0, overall_every_s=0.0, detail=detail)
    for event in RUN:
        reporter(event)
    reporter.tick()
    reporter.summary(elapsed_s=1.0)
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == kinds, lines
    assert lines[-1].startswith("1 uploaded (100 B in 1.0 s), 1 failed")


def test_a_pause_that_drops_bytes_in_flight_says_so() -> None:
    stream = io.StringIO()
    reporter = Reporter(json_lines=False, stream=stream, overall_every_s=0.0)
    reporter(FileQueued(1, path="/d/a.bin", size=100 * MIB, target="/t"))
    reporter(FileProgress(1, sent=48 * MIB, size=100 * MIB, parts_done=2, part_count=5, acknowledged=40 * MIB,
                          in_flight=8 * MIB))
    reporter(FilePaused(1, path="/d/a.bin", acknowledged=40 * MIB, dropped=8 * MIB))
    reporter(FileQueued(2, path="/d/b.bin", size=10 * MIB, target="/t"))
    reporter(FilePaused(2, path="/d/b.bin"))  # paused before it started: nothing to say by default
    reporter.tick()
    assert stream.getvalue().splitlines() == [
        "paused    /d/a.bin: kept 40.0 MiB acknowledged, 8.0 MiB in flight will be sent again",
        "overall   0/2 files, 40.0 MiB/110 MiB (36%), –",
    ]


def test_overall_tells_acknowledged_bytes_from_bytes_in_flight() -> None:
    now = [0.0]
    overall = OverallProgress(clock=lambda: now[0])
    overall.queued(1, 100 * MIB)
    overall.queued(2, 50 * MIB)
    overall.queued(3, 10 * MIB)
    overall.started(1, bytes_already_done=40 * MIB)  # resumed: not this run's speed
    overall.figures()
    now[0] = 2.0
    overall.progress(1, acknowledged=60 * MIB, in_flight=8 * MIB)
    overall.failed(3)
    figures = overall.figures()
    assert (figures.bytes_acknowledged, figures.bytes_in_flight, figures.bytes_total) == (60 * MIB, 8 * MIB, 150 * MIB)
    assert figures.speed == 14 * MIB  # (20 acknowledged + 8 in flight) in 2 s
    assert figures.eta_s == pytest.approx((150 - 68) / 14)
    assert (figures.files_done, figures.files_failed, figures.files_total) == (0, 1, 3)
    assert figures.text() == "0/3 files (1 failed), 60.0 MiB/150 MiB (40%) +8.0 MiB in flight, 14.0 MiB/s, ETA 6s"
    overall.completed(1)
    overall.queued(3, 10 * MIB)  # resumed after its failure: back in the totals
    figures = overall.figures()
    assert (figures.bytes_acknowledged, figures.bytes_in_flight, figures.bytes_total) == (100 * MIB, 0, 160 * MIB)
    assert (figures.files_done, figures.files_failed) == (1, 0)


def test_redaction_masks_secrets_known_and_where_they_sit() -> None:
    remember_secret("s3-secret-value/with+slash")
    remember_login("jdoe", "pass word!")
    logged = (
        "key s3-secret-value%2Fwith%2Bslash and s3-secret-value/with+slash; "
        "Authorization: Basic amRvZTpwYXNzIHdvcmQh\n"
        "{'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0123abcd'}; "
        "https://b.s3.amazonaws.com/k?X-Amz-Signature=feedbeef&X-Amz-Expires=60; "
        '{"awsSecretKeyId": "AKIA2", "awsSecretAccessKey": "unknown-secret", "awsSessionToken": "tok/en=="}; '
        "Signature:\n99aa; x-amz-security-token:sessiontoken123"
    )
    shown = redact(logged)
    for secret in ("s3-secret-value", "amRvZTpwYXNzIHdvcmQh", "0123abcd", "feedbeef", "AKIA", "unknown-secret",
                   "tok/en", "99aa", "sessiontoken123"):
        assert secret not in shown, (secret, shown)
    assert shown.count(MASK) >= 9 and "X-Amz-Expires=60" in shown  # what is no secret stays


def test_redaction_masks_secrets_remembered_after_text_was_redacted() -> None:
    # Each batch brings credentials of its own while lines are being logged.
    remember_secret("credentials-of-the-first-batch")
    assert redact("key credentials-of-the-first-batch") == f"key {MASK}"
    remember_secret("credentials-of-the-second-batch")
    shown = redact("credentials-of-the-first-batch, credentials-of-the-second-batch")
    assert shown == f"{MASK}, {MASK}"


# -- nxup runs through the sandbox ------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    write(tmp_path / "in" / "small.txt", 1000)
    write(tmp_path / "in" / "two.bin", 6 * MIB)  # two parts of 5 MiB
    return [str(tmp_path / "in" / "small.txt"), str(tmp_path / "in" / "two.bin"), str(tmp_path / "in" / "missing")]


PARTS = ["--part-size", "5MiB", "--single-limit", "5MiB"]


def kinds_of(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()]


def test_quiet_default_and_verbose(sandbox: Sandbox, target_folder: str, tmp_path: Path, inputs: list[str]) -> None:
    env = nxup_env(sandbox.info, tmp_path / "state")
    base = ["upload", *inputs, "--to", target_folder, "--no-tui", *PARTS, "--existing", "rename"]
    quiet = run_nxup([*base, "-q"], env)
    assert quiet.returncode == 1, quiet.stdout + quiet.stderr
    assert kinds_of(quiet.stdout) == ["failed", "2"], quiet.stdout
    # Slow enough for overall lines every 0.2 s.
    default = run_nxup([*base, "--limit", "4MiB/s", "--stats", "0.2"], env)
    assert default.returncode == 1
    assert set(kinds_of(default.stdout)[:-1]) == {"overall", "failed"}, default.stdout
    assert "2 uploaded" in default.stdout.splitlines()[-1]
    assert "in flight" in default.stdout
    verbose = run_nxup([*base, "--verbose"], env)
    assert verbose.returncode == 1
    assert kinds_of(verbose.stdout).count("started") == 2 and kinds_of(verbose.stdout).count("done") == 2
    both = run_nxup([*base, "-q", "-v"], env)
    assert both.returncode == 2 and "--quiet" in both.stderr


def test_log_file_is_private_and_holds_every_event(sandbox: Sandbox, target_folder: str, tmp_path: Path,
                                                   inputs: list[str]) -> None:
    log_file = tmp_path / "nxup.log"
    log_file.write_text("an older run\n")
    log_file.chmod(0o644)
    env = nxup_env(sandbox.info, tmp_path / "state")
    result = run_nxup(["upload", *inputs, "--to", target_folder, "--no-tui", *PARTS, "-q", "--log-file", str(log_file)],
                      env)
    assert result.returncode == 1
    assert kinds_of(result.stdout) == ["failed", "2"]
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    logged = log_file.read_text()
    assert logged.startswith("an older run\n")
    for expected in ("queued    ", "started   ", "done      ", "failed    ", "part      ", "summary   2 uploaded"):
        assert expected in logged, (expected, logged)
    assert "botocore" not in logged  # the HTTP debug log only with --debug
    unwritable = run_nxup(["upload", *inputs, "--to", target_folder, "--no-tui",
                           "--log-file", str(tmp_path / "no-such-dir" / "x.log")], env)
    assert unwritable.returncode == 2 and "--log-file" in unwritable.stderr


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("wrong password", 1, "rejected the user name or password"),
        ("missing target", 1, "does not exist"),
        ("unreachable server", 1, "cannot reach"),
        ("usage", 2, "--workers"),
    ],
)
def test_json_fatal_error_is_one_object(sandbox: Sandbox, tmp_path: Path, inputs: list[str], case: str, code: int,
                                        reason: str) -> None:
    env = nxup_env(sandbox.info, tmp_path / "state", password="wrong" if case == "wrong password" else None)
    args = ["upload", *inputs, "--to", "/default-domain/workspaces", "--json"]
    if case == "missing target":
        args[args.index("--to") + 1] = "/default-domain/no-such-folder"
    elif case == "unreachable server":
        args += ["--url", "http://127.0.0.1:9/nuxeo"]
    elif case == "usage":
        args += ["--workers", "0"]
    result = run_nxup(args, env)
    assert result.returncode == code, result.stdout + result.stderr
    (line,) = result.stdout.splitlines()
    error = json.loads(line)
    assert error["event"] == "error" and reason in error["reason"] and isinstance(error["time"], float)
    assert reason in result.stderr  # still said to a person


def test_json_overall_and_summary_with_elapsed_time(sandbox: Sandbox, target_folder: str, tmp_path: Path,
                                                    inputs: list[str]) -> None:
    env = nxup_env(sandbox.info, tmp_path / "state")
    result = run_nxup(["upload", *inputs, "--to", target_folder, "--json", *PARTS, "--limit", "4MiB/s",
                       "--stats", "0.2"], env)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    overall = [e for e in events if e["event"] == "overall"]
    assert overall and overall[-1]["bytes_total"] == 6 * MIB + 1000 and overall[-1]["files_total"] == 2
    acknowledged = [e["bytes_acknowledged"] for e in overall]
    assert acknowledged == sorted(acknowledged)
    summary = events[-1]
    assert summary["event"] == "summary" and summary["done"] == 2 and summary["elapsed_s"] > 0.3
