"""Run the nxup benchmarks on the local sandbox and print the tables.

    /work/venv/bin/python -m bench.run --all            # everything (about 15 minutes on 2 cores)
    /work/venv/bin/python -m bench.run --large --reps 3
    /work/venv/bin/python -m bench.run --small --pause
    /work/venv/bin/python -m bench.run --profile        # py-spy profiles of nxup (large + small)

Every contender runs in its own process: client CPU seconds are `os.times()` deltas around the
transfer only (imports and setup excluded), peak RSS is the process's own VmHWM. Every run gets a fresh sandbox; contenders are alternated
round by round (rotating the order) so that drift and noise hit all of them alike; the tables
give medians.
Generated files live in a throwaway directory under /tmp, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
TARGET = "/default-domain/workspaces"


@dataclass
class Contender:
    label: str
    kind: str
    data: str  # key of the data set: "1g", "256m", "small"
    options: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


# -- data ------------------------------------------------------------------------------------
def make_big(path: Path, size_mib: int) -> None:
    """Distinct bytes in every MiB (a random MiB with a changing header), written quickly."""
    block = bytearray(os.urandom(MiB))
    with open(path, "wb") as handle:
        for index in range(size_mib):
            block[:32] = f"{path.name}:{index}:".encode().ljust(32, b"-")
            handle.write(block)


def make_small(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"f{index:05d}.bin").write_bytes(os.urandom(size))


def make_data(root: Path, args: argparse.Namespace, needed: set[str]) -> dict[str, Path]:
    data: dict[str, Path] = {}
    if "1g" in needed:
        data["1g"] = root / "big-1g.bin"
        make_big(data["1g"], args.big_mib)
    if "256m" in needed:
        data["256m"] = root / "big-256m.bin"
        make_big(data["256m"], args.big_mib // 4)
    if "small" in needed:
        data["small"] = root / "small"
        make_small(data["small"], args.small_count, args.small_kib * 1024)
    return data


def staged(source: Path, run_dir: Path) -> Path:
    """A folder of hard links to the data set (unique document names per run, no copy)."""
    run_dir.mkdir(parents=True)
    if source.is_dir():
        for entry in source.iterdir():
            os.link(entry, run_dir / entry.name)
    else:
        os.link(source, run_dir / source.name)
    return run_dir


# -- running one contender -------------------------------------------------------------------
def child_env(spec: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["NXUP_BENCH_SPEC"] = json.dumps(spec)
    env["PYTHONPATH"] = str(ROOT)
    return env


def base_spec(info: Any) -> dict[str, Any]:
    return {
        "nuxeo_url": info.nuxeo_url, "user": info.user, "password": info.password,
        "s3_endpoint": info.s3_endpoint, "bucket": info.bucket, "region": info.region,
        "access_key": info.s3_access_key_id, "secret_key": info.s3_secret_access_key,
        "target": TARGET,
    }


def run_child(spec: dict[str, Any], weed_pid: int, *, prefix: list[str] | None = None) -> dict[str, Any]:
    weed = psutil.Process(weed_pid)
    weed0 = sum(weed.cpu_times()[:2])
    own0 = os.times()
    cmd = [*(prefix or []), sys.executable, "-m", "bench.contender"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    own1 = os.times()
    result: dict[str, Any] = {}
    try:
        result = json.loads([line for line in out.decode().splitlines() if line.startswith("{")][-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"contender failed ({proc.returncode}): {err.decode()[-3000:]}") from None
    # Process-wide numbers of the child (imports included) from its own getrusage at exit.
    result["nuxeo_server_cpu_s"] = (own1.user + own1.system) - (own0.user + own0.system)
    result["weed_cpu_s"] = sum(weed.cpu_times()[:2]) - weed0
    return result


def rotate(items: list[Any], k: int) -> list[Any]:
    k %= len(items)
    return items[k:] + items[:k]


def run_group(name: str, contenders: list[Contender], data: dict[str, Path], args: argparse.Namespace, work: Path) -> None:
    from sandbox import Sandbox

    print(f"\n== {name}: {len(contenders)} contenders x {args.reps} rounds (alternated)", flush=True)
    for rnd in range(args.reps):
        for c in rotate(contenders, rnd):
            # A fresh sandbox per run: SeaweedFS slows down as its volumes fill (deletes free
            # nothing) and the sandbox's Nuxeo store grows, which would penalize later runs.
            with Sandbox(data_dir=work / "sandbox") as sb:
                weed_pid = sb.s3.process.pid
                run_dir = staged(data[c.data], work / "runs" / f"{c.label}-r{rnd}")
                spec = {**base_spec(sb.info), "kind": c.kind, **c.options,
                        "path": str(run_dir if c.kind in ("nxup", "boto3_put") else run_dir / data[c.data].name),
                        "key": f"bench/{c.label}/{rnd}/{data[c.data].name}",
                        "state_dir": str(work / "state" / f"{c.label}-r{rnd}")}
                result = run_child(spec, weed_pid)
                shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(work / "sandbox", ignore_errors=True)
            c.runs.append(result)
            print(f"  r{rnd} {c.label:<26} wall {result['wall_s']:7.2f} s  cpu {result['cpu_s']:5.2f} s"
                  f"  rss {result['rss_peak_self_mib']:6.0f} MiB  ok {result['files_ok']}"
                  + (f"  FAILED {result.get('n_failed')}: {result.get('failed')}" if result.get("n_failed") else ""),
                  flush=True)


# -- tables ----------------------------------------------------------------------------------
def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}" if values else ""


def table_large(contenders: list[Contender], size: dict[str, int]) -> str:
    rows = ["| contender | MiB/s whole flow (min–max) | MiB/s S3 part | client CPU s | CPU s/GiB | peak RSS MiB | SeaweedFS CPU s | Nuxeo srv CPU s |",
            "|---|---|---|---|---|---|---|---|"]
    for c in contenders:
        mib = size[c.data] / MiB
        rates = [mib / r["wall_s"] for r in c.runs]
        s3 = [mib / r["s3_window_s"] for r in c.runs if r.get("s3_window_s")]
        cpu = [r["cpu_s"] for r in c.runs]
        rows.append(
            f"| {c.label} | {med(rates):.0f} ({spread(rates)}) | {med(s3):.0f} | {med(cpu):.2f} | {med(cpu) / (mib / 1024):.2f} "
            f"| {med([r['rss_peak_self_mib'] for r in c.runs]):.0f} | {med([r['weed_cpu_s'] for r in c.runs]):.1f} "
            f"| {med([r['nuxeo_server_cpu_s'] for r in c.runs]):.2f} |")
    return "\n".join(rows)


def table_small(contenders: list[Contender]) -> str:
    rows = ["| contender | files/s (min–max) | client CPU s | CPU ms/file | peak RSS MiB | SeaweedFS CPU s | Nuxeo srv CPU s |",
            "|---|---|---|---|---|---|---|"]
    for c in contenders:
        rates = [r["files_ok"] / r["wall_s"] for r in c.runs]
        cpu = [r["cpu_s"] for r in c.runs]
        n = max(r["files_ok"] for r in c.runs) or 1
        rows.append(
            f"| {c.label} | {med(rates):.0f} ({spread(rates)}) | {med(cpu):.2f} | {med(cpu) / n * 1000:.2f} "
            f"| {med([r['rss_peak_self_mib'] for r in c.runs]):.0f} | {med([r['weed_cpu_s'] for r in c.runs]):.1f} "
            f"| {med([r['nuxeo_server_cpu_s'] for r in c.runs]):.2f} |")
    return "\n".join(rows)


def table_calls(c: Contender) -> str:
    """Where an nxup file's time goes: per call kind, mean latency and count per file."""
    files = max(r["files_ok"] for r in c.runs) or 1
    threads = c.options.get("workers", 8)
    labels = sorted({k for r in c.runs for k in r.get("calls", {})})
    rows = [f"| {c.label}: call | per file | mean ms | ms of worker time per file | share |", "|---|---|---|---|---|"]
    stats = []
    for label in labels:
        totals = [r["calls"].get(label, {}).get("s", 0.0) for r in c.runs]
        counts = [r["calls"].get(label, {}).get("n", 0) for r in c.runs]
        stats.append((label, med(totals), med(counts)))
    worker_time = med([r["wall_s"] for r in c.runs]) * threads
    for label, total, count in sorted(stats, key=lambda s: -s[1]):
        rows.append(f"| {label} | {count / files:.2f} | {total / max(count, 1) * 1000:.1f} | {total / files * 1000:.1f} | {total / worker_time:.0%} |")
    # Summary: handlers is only called from inside new_batch, so it is not added twice.
    groups = {
        "= all Nuxeo calls": lambda k: k.startswith("nuxeo ") and k != "nuxeo handlers",
        "= all S3 calls": lambda k: k.startswith("s3 "),
        "= state store": lambda k: k.startswith("state "),
        "= tasks (prepare + parts + finish)": lambda k: k.startswith("task "),
    }
    for name, keep in groups.items():
        total = sum(t for label, t, _ in stats if keep(label))
        rows.append(f"| {name} | | | {total / files * 1000:.1f} | {total / worker_time:.0%} |")
    rows.append(f"| (worker time = wall x {threads} workers) | | | {worker_time / files * 1000:.1f} | 100% |")
    return "\n".join(rows)


# -- groups ----------------------------------------------------------------------------------
def large_contenders(args: argparse.Namespace) -> list[Contender]:
    cs = [
        Contender("nxup w8 p20 1GiB", "nxup", "1g", {"workers": 8, "part_size_mib": 20}),
        Contender("boto3 upload_file 1GiB", "boto3_upload_file", "1g"),
        Contender("boto3 upload_part 8t 20MiB", "boto3_parts", "1g", {"workers": 8, "part_size_mib": 20}),
        Contender("nxup w8 p20 256MiB", "nxup", "256m", {"workers": 8, "part_size_mib": 20}),
        Contender("nxup w8 p100 1GiB", "nxup", "1g", {"workers": 8, "part_size_mib": 100}),
        Contender("nxup w2 p20 1GiB", "nxup", "1g", {"workers": 2}),
        Contender("nxup w4 p20 1GiB", "nxup", "1g", {"workers": 4}),
        Contender("nxup w16 p20 1GiB", "nxup", "1g", {"workers": 16}),
    ]
    return [c for c in cs if not args.only or any(o in c.label for o in args.only)]


def small_contenders(args: argparse.Namespace) -> list[Contender]:
    cs = [
        Contender("nxup w8 small", "nxup", "small", {"workers": 8}),
        Contender("boto3 put_object 8t small", "boto3_put", "small", {"workers": 8}),
        Contender("nxup w4 small", "nxup", "small", {"workers": 4}),
        Contender("nxup w16 small", "nxup", "small", {"workers": 16}),
    ]
    return [c for c in cs if not args.only or any(o in c.label for o in args.only)]


def run_pause(data: dict[str, Path], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from sandbox import Sandbox

    print(f"\n== pause: {args.pauses} pauses of a {args.big_mib // 4} MiB upload capped at {args.pause_limit} MiB/s", flush=True)
    with Sandbox(data_dir=work / "sandbox-pause") as sb:
        run_dir = staged(data["256m"], work / "runs" / "pause")
        spec = {**base_spec(sb.info), "kind": "nxup_pause", "workers": 8, "part_size_mib": 20,
                "limit_mib_s": args.pause_limit, "pauses": args.pauses,
                "path": str(run_dir / data["256m"].name), "state_dir": str(work / "state" / "pause")}
        result = run_child(spec, sb.s3.process.pid)
    lat = [x * 1000 for x in result["latencies_s"]]
    print(f"  latencies ms: {', '.join(f'{x:.0f}' for x in lat)}; parts in flight: {result['parts_in_flight']}")
    return {"median_ms": med(lat), "max_ms": max(lat), "latencies_ms": lat, "parts_in_flight": result["parts_in_flight"]}


def run_profile(data: dict[str, Path], args: argparse.Namespace, work: Path) -> None:
    """py-spy (raw collapsed stacks; --gil: only the thread holding the GIL, i.e. Python CPU) on nxup's large and small runs."""
    from sandbox import Sandbox

    from .profile_summary import summarize

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out_dir = Path(args.profile_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Sandbox(data_dir=work / "sandbox-profile") as sb:
        for key, label in (("1g", "large"), ("small", "small")):
            run_dir = staged(data[key], work / "runs" / f"profile-{label}")
            out = out_dir / f"nxup-{label}.txt"
            spec = {**base_spec(sb.info), "kind": "nxup", "workers": 8, "path": str(run_dir),
                    "state_dir": str(work / "state" / f"profile-{label}")}
            result = run_child(spec, sb.s3.process.pid, prefix=[py_spy, "record", "--gil", "--nonblocking", "-r", "100", "-f", "raw", "-o", str(out), "--"])
            print(f"\n== profile {label}: wall {result['wall_s']:.1f} s, cpu {result['cpu_s']:.2f} s -> {out}")
            print(summarize(out, top=args.profile_top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="large + small + pause")
    parser.add_argument("--large", action="store_true", help="1 GiB: nxup vs boto3, RSS by size and part size, workers 2-16")
    parser.add_argument("--small", action="store_true", help="1,000 x 64 KiB: nxup vs boto3 put_object, workers 4-16")
    parser.add_argument("--pause", action="store_true", help="pause latency on a capped upload")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles of nxup (large and small)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", type=lambda s: s.split(","), default=None, help="substrings of contender labels")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small-count", type=int, default=1000)
    parser.add_argument("--small-kib", type=int, default=64)
    parser.add_argument("--pauses", type=int, default=10)
    parser.add_argument("--pause-limit", type=float, default=20.0, help="MiB/s")
    parser.add_argument("--profile-dir", default="/tmp/nxup-bench-profiles")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--json", default="/tmp/nxup-bench-results.json", help="raw results")
    args = parser.parse_args()
    if args.all:
        args.large = args.small = args.pause = True
    if not (args.large or args.small or args.pause or args.profile):
        parser.error("choose --all, --large, --small, --pause or --profile")

    needed = set()
    large = large_contenders(args) if args.large else []
    small = small_contenders(args) if args.small else []
    needed |= {c.data for c in large + small}
    if args.pause:
        needed.add("256m")
    if args.profile:
        needed |= {"1g", "small"}
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="nxup-bench-", dir="/tmp"))
    report: dict[str, Any] = {}
    try:
        data = make_data(work / "data", args, needed) if (work / "data").mkdir() is None else {}
        sizes = {k: p.stat().st_size for k, p in data.items() if p.is_file()}
        if large:
            run_group("large", large, data, args, work)
            shutil.rmtree(work / "state", ignore_errors=True)
        if small:
            run_group("small", small, data, args, work)
        pause = run_pause(data, args, work) if args.pause else None
        if args.profile:
            run_profile(data, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n# Results (median of {args.reps}; total {time.monotonic() - started:.0f} s)\n")
    if large:
        print(table_large(large, sizes) + "\n")
        print(table_calls(large[0]) + "\n")
    if small:
        print(table_small(small) + "\n")
        for c in small:
            if c.kind == "nxup":
                print(table_calls(c) + "\n")
    if pause:
        print(f"Pause latency (pause() -> FilePaused), {len(pause['latencies_ms'])} pauses: "
              f"median {pause['median_ms']:.0f} ms, max {pause['max_ms']:.0f} ms\n")
    report = {"large": {c.label: c.runs for c in large}, "small": {c.label: c.runs for c in small}, "pause": pause}
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"raw results: {args.json}")


if __name__ == "__main__":
    main()
