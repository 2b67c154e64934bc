"""One benchmark session: scenarios × contenders × rounds on the sandbox.

The sandbox runs in this process, so that its Nuxeo server's CPU is this process's own (this
process does nothing else while a contender runs: it waits) and its requests can be timed where
they are served. Each run gets a fresh sandbox, since SeaweedFS slows down as its volumes fill
and deletes free nothing (`--quick` shares one). Contenders are alternated round by round,
with a rotating order, so that drift and noise hit them alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .contenders import ROOT, TARGET, Contender, Destination, clean_env
from .scenarios import Made, Scenario, stage


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy since it started."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def rotate(items: list[Any], k: int) -> list[Any]:
    k %= len(items)
    return items[k:] + items[:k]


def call_kind(method: str, path: str) -> str:
    """A Nuxeo request by what it does: `POST new batch`, `POST complete`, `GET document`..."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if "upload" in parts:
        rest = parts[parts.index("upload") + 1 :]
        if rest[:1] == ["new"]:
            what = "new batch"
        elif rest[:1] == ["handlers"]:
            what = "handlers"
        elif rest and rest[-1] in ("complete", "refreshToken", "execute"):
            what = rest[-1]
        else:
            what = "batch"
    elif "path" in parts or "id" in parts:
        what = "document"
    else:
        what = "/".join(parts[2:4]) or "/"
    return f"{method} {what}"


class ServerCalls:
    """Every request the sandbox's Nuxeo server serves, timed around its handler."""

    def __init__(self, server: Any) -> None:
        self.calls: list[tuple[str, float, float]] = []
        server.request_observers.append(self._served)

    def _served(self, method: str, path: str, begin: float, end: float) -> None:
        self.calls.append((call_kind(method, path), begin, end))

    def take(self) -> list[tuple[str, float, float]]:
        calls, self.calls = self.calls, []
        return calls


def summarize_calls(
    calls: list[tuple[str, float, float]], started: float, ended: float
) -> dict[str, Any]:
    """Per kind, the count and total time; for a single-file upload, its phases."""
    kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "s": 0.0})
    for kind, begin, end in calls:
        kinds[kind]["n"] += 1
        kinds[kind]["s"] += end - begin
    summary: dict[str, Any] = {"calls": dict(kinds)}
    batches = [c for c in calls if c[0] == "POST new batch"]
    if batches:
        # From the first batch to the last request: the transfer itself, without the command's
        # start-up and exit (for the transfer manager, its screen's start and the `q` pressed).
        summary["window_s"] = max(end for _, _, end in calls) - min(begin for _, begin, _ in batches)
    completes = [c for c in calls if c[0] == "POST complete"]
    if len(batches) == 1 and len(completes) == 1:
        (_, _, batch_end), (_, complete_begin, complete_end) = batches[0], completes[0]
        summary["phases"] = {
            "before_s3": batch_end
            - started,  # start-up, login, folder checks, the batch
            "s3": complete_begin - batch_end,  # parts and their join
            "complete": complete_end - complete_begin,  # the server's /complete
            "after": ended - complete_end,  # the document, the exit
        }
    return summary


@dataclass
class Context:
    """What every run of the session shares."""

    work: Path
    made: dict[str, Made]
    timeout_s: float
    fresh_sandbox: bool
    prefix: list[str] = dataclasses.field(
        default_factory=list
    )  # e.g. a profiler, before the command


class Session:
    def __init__(self, context: Context) -> None:
        self.context = context
        self._shared: Any = None
        self._shared_calls: ServerCalls | None = None

    # -- sandboxes -----------------------------------------------------------------------------
    @contextmanager
    def sandbox(self) -> Iterator[tuple[Any, ServerCalls]]:
        from sandbox import Sandbox

        if not self.context.fresh_sandbox and self._shared is not None:
            assert self._shared_calls is not None
            yield self._shared, self._shared_calls
            return
        data_dir = self.context.work / "sandbox"
        running = Sandbox(data_dir=data_dir).start()
        calls = ServerCalls(running.nuxeo)
        if not self.context.fresh_sandbox:
            self._shared, self._shared_calls = running, calls
            yield running, calls
            return
        try:
            yield running, calls
        finally:
            running.stop()
            shutil.rmtree(data_dir, ignore_errors=True)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.stop()
            self._shared = None
            shutil.rmtree(self.context.work / "sandbox", ignore_errors=True)

    # -- one run -------------------------------------------------------------------------------
    def run(
        self, scenario: Scenario, contender: Contender, round_: int
    ) -> dict[str, Any]:
        slug = f"{scenario.key}-{contender.slug}-r{round_}"
        made = self.context.made[scenario.data.key]
        run_dir = self.context.work / "runs" / slug
        scratch = self.context.work / "scratch" / slug
        scratch.mkdir(parents=True)
        path = stage(made, run_dir, slug if scenario.data.folder else f"{slug}.bin")
        result: dict[str, Any] = {
            "scenario": scenario.key,
            "contender": contender.name,
            "round": round_,
        }
        try:
            with (
                self.sandbox() as (running, calls),
                self._latency(running, scenario) as endpoints,
            ):
                info = running.info
                to = Destination(
                    path=path,
                    files=len(made.digests),
                    nuxeo_url=endpoints.get("nuxeo", info.nuxeo_url),
                    user=info.user,
                    password=info.password,
                    s3_endpoint=endpoints.get("s3", info.s3_endpoint),
                    bucket=info.bucket,
                    region=info.region,
                    access_key=info.s3_access_key_id,
                    secret_key=info.s3_secret_access_key,
                    prefix=f"bench/{slug}",
                    state_dir=self.context.work / "state" / slug,
                    scratch=scratch,
                )
                result.update(self._measure(contender, to, running, calls))
                if result.get("error") is None:
                    result["error"] = self._check(contender, to, made, running, result)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(self.context.work / "state" / slug, ignore_errors=True)
        if result.get("wall_s"):
            result["rate"] = scenario.rate(result["wall_s"])
        return result

    @contextmanager
    def _latency(self, running: Any, scenario: Scenario) -> Iterator[dict[str, str]]:
        """Proxies that hold every request `latency_ms` (none when the scenario has none)."""
        if not scenario.latency_ms:
            yield {}
            return
        argv = [
            sys.executable,
            "-m",
            "bench.latency",
            "--s3",
            running.s3.endpoint.removeprefix("http://"),
            "--nuxeo",
            f"127.0.0.1:{running.nuxeo.port}",
            "--delay-ms",
            str(scenario.latency_ms),
        ]
        proxy = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert proxy.stdout is not None
            urls = json.loads(proxy.stdout.readline())
            running.nuxeo.advertised_s3_endpoint = urls["s3"]
            yield {"s3": urls["s3"], "nuxeo": urls["nuxeo"] + "/nuxeo"}
        finally:
            running.nuxeo.advertised_s3_endpoint = None
            assert proxy.stdin is not None
            proxy.stdin.close()
            proxy.wait(timeout=30)

    def _measure(
        self, contender: Contender, to: Destination, running: Any, calls: ServerCalls
    ) -> dict[str, Any]:
        launch = contender.launch(to)
        launch["argv"] = [*self.context.prefix, *launch["argv"]]
        launch["timeout_s"] = self.context.timeout_s
        env = clean_env(NXUP_BENCH_LAUNCH=json.dumps(launch), PYTHONPATH=str(ROOT))
        weed = psutil.Process(running.s3.process.pid)
        calls.take()
        machine0, weed0, own0 = busy_cpu(), sum(weed.cpu_times()[:2]), os.times()
        child = subprocess.run(
            [sys.executable, "-m", "bench.measure"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        own1, weed1, machine1 = os.times(), sum(weed.cpu_times()[:2]), busy_cpu()
        served = calls.take()
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        if not lines:
            return {
                "error": f"the measuring process failed: {child.stderr.strip()[-2000:]}"
            }
        result: dict[str, Any] = json.loads(lines[-1])
        result["nuxeo_cpu_s"] = (own1.user + own1.system) - (own0.user + own0.system)
        result["weed_cpu_s"] = weed1 - weed0
        # What the rest of the machine used meanwhile (other work, the measuring process, a
        # latency proxy): noise when it is large.
        result["other_cpu_s"] = max(
            0.0,
            machine1
            - machine0
            - result["cpu_s"]
            - result["weed_cpu_s"]
            - result["nuxeo_cpu_s"],
        )
        result["server"] = summarize_calls(served, result["started"], result["ended"])
        if result["timed_out"]:
            result["error"] = f"timed out after {self.context.timeout_s:.0f} s"
        elif result["exit_code"] != 0:
            result["error"] = (
                f"exit code {result['exit_code']}: {result.get('output_tail', '').strip()[-600:]}"
            )
        else:
            result["error"] = None
        events = to.scratch / "events.jsonl"
        if events.exists():
            last = events.read_text().strip().rsplit("\n", 1)[-1]
            result["summary"] = json.loads(last) if last.startswith("{") else None
        return result

    # -- checks --------------------------------------------------------------------------------
    def _check(
        self,
        contender: Contender,
        to: Destination,
        made: Made,
        running: Any,
        result: dict[str, Any],
    ) -> str | None:
        """None when every file landed whole; else what is wrong."""
        if self.context.prefix:
            return None  # a profiled run is not checked
        if contender.via_nuxeo:
            return check_documents(running, to, made)
        return check_objects(running, to, made)


def _relative_paths(to: Destination, made: Made) -> dict[str, str]:
    """File (relative to the data set) → where it lands below the target, for nxup."""
    if to.path.is_dir():
        return {relative: f"{to.path.name}/{relative}" for relative in made.digests}
    (relative,) = made.digests
    return {relative: to.path.name}


def check_documents(running: Any, to: Destination, made: Made) -> str | None:
    """Each file has its document, whose blob has the file's length and MD5 (which the server
    computed from the S3 object)."""
    store = running.nuxeo.store
    wrong = []
    for relative, where in _relative_paths(to, made).items():
        size, md5 = made.digests[relative]
        document = store.documents.by_path(f"{TARGET}/{where}")
        blob = (document.properties.get("file:content") if document else None) or {}
        if int(blob.get("length", -1)) != size or blob.get("digest") != md5:
            wrong.append(where)
    if wrong:
        return (f"{len(wrong)} of {len(made.digests)} documents missing or not holding their file's bytes, "
                f"e.g. {wrong[0]}")
    return None


def check_objects(running: Any, to: Destination, made: Made) -> str | None:
    """Each file has its object, of the file's size."""
    client = running.s3.admin_client()
    sizes = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=running.s3.bucket, Prefix=to.prefix + "/"):
        sizes.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    if to.path.is_dir():
        expected = {to.key_of(relative): size for relative, (size, _) in made.digests.items()}
    else:
        ((_, (size, _)),) = made.digests.items()
        expected = {to.key_of(to.path.name): size}
    wrong = [key for key, size in expected.items() if sizes.get(key) != size]
    if wrong:
        return f"{len(wrong)} of {len(expected)} objects missing or of the wrong size, e.g. {wrong[0]}"
    return None


def pause_latency(session: Session, made: Made, pauses: int, limit_mib_s: float) -> dict[str, Any]:
    """The engine's pause latency on a capped upload (`bench.pause`), in a process of its own."""
    work = session.context.work
    path = stage(made, work / "runs" / "pause", "pause.bin")
    try:
        with session.sandbox() as (running, _):
            info = running.info
            spec = {
                "nuxeo_url": info.nuxeo_url,
                "user": info.user,
                "password": info.password,
                "path": str(path),
                "target": TARGET,
                "state_dir": str(work / "state" / "pause"),
                "pauses": pauses,
                "limit_mib_s": limit_mib_s,
            }
            child = subprocess.run(
                [sys.executable, "-m", "bench.pause"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env=clean_env(NXUP_BENCH_PAUSE=json.dumps(spec), PYTHONPATH=str(ROOT)),
                check=False,
                timeout=300,
            )
    finally:
        shutil.rmtree(work / "runs" / "pause", ignore_errors=True)
        shutil.rmtree(work / "state" / "pause", ignore_errors=True)
    if child.returncode != 0:
        return {"error": child.stderr.strip()[-2000:]}
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result
