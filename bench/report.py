"""The session's results: the markdown table, the issue's other figures, and the chart."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from .scenarios import MiB, Scenario

GiB = 1024 * MiB
NXUP = "nxup"
TUI = "nxup TUI"


def _ok(
    runs: list[dict[str, Any]], scenario: str, contender: str
) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["scenario"] == scenario
        and r["contender"] == contender
        and not r.get("error")
    ]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _number(value: float) -> str:
    if math.isnan(value):
        return "–"
    return (
        f"{value:.0f}"
        if abs(value) >= 100
        else f"{value:.1f}"
        if abs(value) >= 10
        else f"{value:.2f}"
    )


def _rate_cell(values: list[float], unit: str) -> str:
    if not values:
        return "failed"
    text = f"{_number(_median(values))} {unit}"
    return text + (
        f" ({_number(min(values))}–{_number(max(values))})" if len(values) > 1 else ""
    )


def table(
    runs: list[dict[str, Any]], scenarios: list[Scenario], contenders: list[str]
) -> str:
    rows = [
        (
            "| scenario | contender | rate: median (min–max) | nxup ÷ it | client CPU s | peak RSS MiB "
            "| SeaweedFS CPU s | Nuxeo server CPU s | other CPU s | runs |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        nxup = _median([r["rate"] for r in _ok(runs, scenario.key, NXUP)])
        for name in contenders:
            every = [
                r
                for r in runs
                if r["scenario"] == scenario.key and r["contender"] == name
            ]
            if not every:
                continue
            ok = _ok(runs, scenario.key, name)
            rates = [r["rate"] for r in ok]
            failed = len(every) - len(ok)
            rows.append(
                f"| {scenario.title} | {name} | {_rate_cell(rates, scenario.unit)} "
                f"| {_number(nxup / _median(rates)) if rates else '–'} "
                f"| {_number(_median([r['cpu_s'] for r in ok]))} | {_number(_median([r['rss_peak_mib'] for r in ok]))} "
                f"| {_number(_median([r['weed_cpu_s'] for r in ok]))}"
                f" | {_number(_median([r['nuxeo_cpu_s'] for r in ok]))} "
                f"| {_number(_median([r.get('other_cpu_s', math.nan) for r in ok]))} "
                f"| {len(ok)}{f' ({failed} failed)' if failed else ''} |"
            )
    return "\n".join(rows)


def big_file_phases(runs: list[dict[str, Any]], scenarios: list[Scenario]) -> list[str]:
    """nxup on one big file: end-to-end against its S3 phase, and the server's `/complete`."""
    lines = []
    for scenario in scenarios:
        if scenario.data.folder or scenario.latency_ms:
            continue
        ok = [r for r in _ok(runs, scenario.key, NXUP) if "phases" in r.get("server", {})]
        if not ok:
            continue
        mib = scenario.data.bytes / MiB
        wall = _median([r["wall_s"] for r in ok])
        phase = {k: _median([r["server"]["phases"][k] for r in ok]) for k in ("before_s3", "s3", "complete", "after")}
        lines.append(
            f"- {scenario.title}, nxup: end-to-end {wall:.1f} s ({mib / wall:.0f} MiB/s); S3 phase (parts and "
            f"join) {phase['s3']:.1f} s ({mib / phase['s3']:.0f} MiB/s); the server's `/complete` "
            f"{phase['complete']:.1f} s ({phase['complete'] / wall:.0%} of end-to-end); before the S3 phase "
            f"(start-up, login, batch) {phase['before_s3']:.2f} s;"
            f" after `/complete` (document, exit) {phase['after']:.2f} s."
        )
    return lines


def transfer_manager(runs: list[dict[str, Any]], scenarios: list[Scenario]) -> list[str]:
    """The transfer manager against headless nxup: while the files are sent (from the first
    batch to the last request, as the server saw them) and for the whole command, whose start-up
    and `q` weigh on short runs."""
    lines = []
    for scenario in scenarios:
        headless, tui = _ok(runs, scenario.key, NXUP), _ok(runs, scenario.key, TUI)
        if not headless or not tui:
            continue
        window = {
            name: _median([scenario.rate(r["server"]["window_s"]) for r in ok if r["server"].get("window_s")])
            for name, ok in ((NXUP, headless), (TUI, tui))
        }
        whole = {name: _median([r["rate"] for r in ok]) for name, ok in ((NXUP, headless), (TUI, tui))}
        lines.append(
            f"- {scenario.title}: the transfer manager sends {_number(window[TUI])} {scenario.unit} while "
            f"transferring, headless {_number(window[NXUP])} ({window[TUI] / window[NXUP]:.2f}×); "
            f"whole command, start-up and quit included: {whole[TUI] / whole[NXUP]:.2f}×."
        )
    return lines


def client_cpu_per_file(runs: list[dict[str, Any]], scenarios: list[Scenario]) -> list[str]:
    """nxup's client CPU per file on the many-file scenarios, start-up included."""
    lines = []
    for scenario in scenarios:
        if len(scenario.data.files) < 100 or scenario.latency_ms:
            continue
        ok = _ok(runs, scenario.key, NXUP)
        if ok:
            per_file = _median([r["cpu_s"] for r in ok]) / len(scenario.data.files) * 1000
            lines.append(f"- {scenario.title}, nxup: client CPU {per_file:.2f} ms per file, start-up included.")
    return lines


def cpu_per_gib(runs: list[dict[str, Any]], scenarios: list[Scenario], contenders: list[str]) -> list[str]:
    """Client CPU per GiB on the big files; where both sizes ran, the marginal CPU per GiB
    ((CPU at 4 GiB − CPU at 1 GiB) / 3), which leaves out start-up."""
    big = [s for s in scenarios if not s.data.folder and not s.latency_ms and s.data.bytes >= GiB]
    if not big:
        return []
    lines = []
    for name in contenders:
        parts = []
        cpu = {}
        for scenario in big:
            ok = _ok(runs, scenario.key, name)
            if ok:
                cpu[scenario.key] = (
                    _median([r["cpu_s"] for r in ok]),
                    scenario.data.bytes / GiB,
                )
                parts.append(f"{cpu[scenario.key][0] / cpu[scenario.key][1]:.2f} s/GiB at {scenario.title}")
        if len(cpu) == 2:
            (low, low_gib), (high, high_gib) = sorted(cpu.values(), key=lambda v: v[1])
            parts.append(f"marginal {(high - low) / (high_gib - low_gib):.2f} s/GiB")
        if parts:
            lines.append(f"- {name}: " + ", ".join(parts))
    return lines


def nuxeo_requests(runs: list[dict[str, Any]], scenario: Scenario) -> str:
    """nxup's Nuxeo requests per file in a many-files scenario, with the server's time in them."""
    ok = _ok(runs, scenario.key, NXUP)
    if not ok:
        return ""
    files = len(scenario.data.files)
    kinds = sorted({k for r in ok for k in r["server"]["calls"]})
    rows = [
        f"| nxup, {scenario.title}: request | per file | server ms each |",
        "|---|---|---|",
    ]
    for kind in kinds:
        counts = [r["server"]["calls"].get(kind, {}).get("n", 0) for r in ok]
        seconds = [r["server"]["calls"].get(kind, {}).get("s", 0.0) for r in ok]
        count = _median(counts)
        rows.append(f"| {kind} | {count / files:.2f} | {1000 * _median(seconds) / max(count, 1):.1f} |")
    return "\n".join(rows)


def pause_line(pause: dict[str, Any] | None) -> str:
    if not pause:
        return ""
    if pause.get("error"):
        return f"- pause latency: failed: {pause['error'][-300:]}"
    latencies = [1000 * s for s in pause["latencies_s"]]
    return (
        f"- pause latency (`pause()` → `FilePaused`, capped upload, {len(latencies)} pauses, "
        f"{_median(pause['parts_in_flight']):.0f} parts in flight): median {_median(latencies):.0f} ms, "
        f"max {max(latencies):.0f} ms"
    )


def chart(
    runs: list[dict[str, Any]],
    scenarios: list[Scenario],
    contenders: list[str],
    path: Path,
) -> str:
    """Bars of nxup's rate and client CPU against each contender's, per scenario. Returns a
    line saying where it went (or why there is none)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (pip install -e '.[bench]')"
    others = [c for c in contenders if c != NXUP]
    shown = [s for s in scenarios if _ok(runs, s.key, NXUP)]
    if not shown or not others:
        return "no chart: nxup has no successful run to compare"
    from matplotlib.ticker import FuncFormatter

    plt.rcParams["svg.fonttype"] = "none"
    figure, axes = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    width = 0.8 / len(others)
    for index, name in enumerate(others):
        for axis, key, invert in ((axes[0], "rate", False), (axes[1], "cpu_s", True)):
            values = []
            for scenario in shown:
                mine = _median([r[key] for r in _ok(runs, scenario.key, NXUP)])
                theirs = _median([r[key] for r in _ok(runs, scenario.key, name)])
                values.append(theirs / mine if invert else mine / theirs)
            positions = [i + (index - (len(others) - 1) / 2) * width for i in range(len(shown))]
            bars = axis.bar(positions, values, width, label=name if axis is axes[0] else None)
            axis.bar_label(
                bars,
                labels=["" if math.isnan(v) else f"{v:.2g}" for v in values],
                fontsize=6.5,
                padding=1,
            )
    axes[0].set_ylabel("nxup's rate ÷ its rate")
    axes[0].set_title("Throughput: above 1, nxup is faster", fontsize="medium")
    axes[1].set_ylabel("its client CPU ÷ nxup's")
    axes[1].set_title("Client CPU: above 1, nxup uses less", fontsize="medium")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    sparse = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}".lstrip("0.")[:1] in ("2", "5") else "")
    for axis in axes:
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(sparse)
        axis.tick_params(axis="y", which="minor", labelsize=7)
        axis.grid(axis="y", which="both", alpha=0.3)
    axes[1].set_xticks(range(len(shown)), [s.title for s in shown], rotation=12)
    figure.suptitle(
        "nxup headless against each contender, per scenario (medians)",
        y=0.99,
        fontsize="medium",
    )
    figure.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, 0.955),
        ncol=len(others),
        fontsize="small",
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return f"chart: {path}"
