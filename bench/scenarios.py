"""The benchmark's scenarios and the files they send.

Big files repeat one random MiB with a changing header (quick to write, every part differs);
small files are random bytes. Each run sends hard links to the data (unique names, no copies).
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class DataSet:
    key: str
    folder: bool  # a folder of files, else one file
    files: tuple[int, ...]  # sizes, one per file
    seed: int = 1

    @property
    def bytes(self) -> int:
        return sum(self.files)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    data: DataSet
    unit: str  # "MiB/s" or "files/s": what the tables and the chart compare
    latency_ms: float = 0.0

    def rate(self, wall_s: float) -> float:
        if self.unit == "files/s":
            return len(self.data.files) / wall_s
        return self.data.bytes / MiB / wall_s


def _mixed(
    small: int, medium: int, large: tuple[int, ...], seed: int
) -> tuple[int, ...]:
    """A working folder: small files of 1 KiB–1 MiB (spread evenly on a log scale), some of
    1–16 MiB, and a few large ones (sent in parts by every tool)."""
    rng = random.Random(seed)
    sizes = [int(2 ** rng.uniform(10, 20)) for _ in range(small)]
    sizes += [int(2 ** rng.uniform(20, 24)) for _ in range(medium)]
    return tuple(sizes + [n * MiB for n in large])


def scenarios(*, quick: bool) -> list[Scenario]:
    if quick:
        small = DataSet("small", True, (64 * KiB,) * 100)
        return [
            Scenario(
                "file", "24 MiB file", DataSet("file", False, (24 * MiB,)), "MiB/s"
            ),
            Scenario("small", "100 × 64 KiB", small, "files/s"),
            Scenario(
                "mixed",
                "mixed folder",
                DataSet("mixed", True, _mixed(30, 3, (24,), seed=3)),
                "MiB/s",
            ),
            Scenario(
                "small-rtt", "100 × 64 KiB, +20 ms", small, "files/s", latency_ms=20
            ),
        ]
    small = DataSet("small", True, (64 * KiB,) * 1000)
    return [
        Scenario("1g", "1 GiB file", DataSet("1g", False, (1024 * MiB,)), "MiB/s"),
        Scenario("4g", "4 GiB file", DataSet("4g", False, (4096 * MiB,)), "MiB/s"),
        Scenario("small", "1,000 × 64 KiB", small, "files/s"),
        Scenario(
            "tiny",
            "10,000 × 4 KiB",
            DataSet("tiny", True, (4 * KiB,) * 10_000),
            "files/s",
        ),
        Scenario(
            "mixed",
            "mixed folder",
            DataSet("mixed", True, _mixed(400, 40, (40, 100), seed=3)),
            "MiB/s",
        ),
        Scenario(
            "small-rtt", "1,000 × 64 KiB, +20 ms", small, "files/s", latency_ms=20
        ),
    ]


# -- files on disk -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Made:
    """A data set on disk: its path and, per file (relative path), its size and MD5."""

    path: Path
    digests: dict[str, tuple[int, str]]


def _relative_names(data: DataSet) -> list[str]:
    if not data.folder:
        return [f"{data.key}.bin"]
    # Up to 1,000 files a folder, and for the mixed set a few levels deep.
    names = []
    for index in range(len(data.files)):
        if data.key == "mixed":
            folder = ("docs", "photos/2026", "photos/2026/raw", "videos", "notes")[
                index % 5
            ]
        else:
            folder = f"part-{index // 1000:02d}"
        names.append(f"{folder}/f{index:05d}.bin")
    return names


def _write_big(path: Path, size: int, digest: Any) -> None:
    block = bytearray(os.urandom(MiB))
    with open(path, "wb") as handle:
        for index in range(-(-size // MiB)):
            block[:32] = f"{path.name}:{index}:".encode().ljust(32, b"-")
            chunk = bytes(block[: min(MiB, size - index * MiB)])
            digest.update(chunk)
            handle.write(chunk)


def make(data: DataSet, root: Path) -> Made:
    """Write the data set under `root` once."""
    rng = random.Random(data.seed)
    base = root / data.key
    digests = {}
    for name, size in zip(_relative_names(data), data.files, strict=True):
        path = base / name if data.folder else root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.md5(usedforsecurity=False)
        if size > MiB:
            _write_big(path, size, digest)
        else:
            content = rng.randbytes(size)
            digest.update(content)
            path.write_bytes(content)
        digests[name] = (size, digest.hexdigest())
    return Made(base if data.folder else root / f"{data.key}.bin", digests)


def stage(made: Made, run_dir: Path, name: str) -> Path:
    """Hard links to the data set under `run_dir`, named `name` (a folder or a file)."""
    run_dir.mkdir(parents=True)
    if made.path.is_file():
        os.link(made.path, run_dir / name)
        return run_dir / name
    top = run_dir / name
    for relative in made.digests:
        (top / relative).parent.mkdir(parents=True, exist_ok=True)
        os.link(made.path / relative, top / relative)
    return top
