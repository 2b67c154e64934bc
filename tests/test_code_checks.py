"""The code's own rules, checked with the suite: lint, the import contracts between packages,
and the headless path staying free of the terminal UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = _run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_are_kept() -> None:
    """engine/ imports no front end and no sandbox; sandbox/ shares no code with nxup; the app
    never imports the sandbox, the command line, or boto3 itself (see [tool.importlinter])."""
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_headless_commands_do_not_load_the_terminal_ui() -> None:
    """Scripts and cron never pay for Textual: the command line imports it only when a
    terminal UI is asked for."""
    probe = (
        "import sys, cli.main, cli.plain, cli.stale, cli.connection, cli.demo\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print(loaded)\n"
    )
    result = _run(sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_sandbox_type_checks() -> None:
    """`mypy sandbox` with the project's settings ([tool.mypy]: boto3 and botocore have no type
    information, so their imports are taken as untyped)."""
    result = _run(sys.executable, "-m", "mypy", "--cache-dir", "/dev/null", "sandbox")
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_is_strictly_typed() -> None:
    """`mypy --strict engine`: the engine's public surface is typed (it ships `py.typed`), the
    `nuxeo` client, boto3 and botocore being taken as untyped ([tool.mypy])."""
    result = _run(sys.executable, "-m", "mypy", "--cache-dir", "/dev/null", "--strict", "engine")
    assert result.returncode == 0, result.stdout + result.stderr


def test_front_ends_type_check() -> None:
    """`mypy cli tui` at mypy's default settings: the command line and the app use the engine
    through its typed surface."""
    result = _run(sys.executable, "-m", "mypy", "--cache-dir", "/dev/null", "cli", "tui")
    assert result.returncode == 0, result.stdout + result.stderr
