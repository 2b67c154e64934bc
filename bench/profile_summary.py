"""Summarize py-spy raw (collapsed) stacks: top functions by self and by inclusive samples.

.venv/bin/python -m bench.profile_summary PROFILE.txt   # as written by `python -m bench --profile`
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = _STDLIB.sub("", match["file"].split("site-packages/", 1)[-1]).removeprefix(
        _ROOT
    )
    return f"{match['func']} ({path})"


def summarize(path: Path, *, top: int = 25) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        frames = [
            f
            for f in frames
            if not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples (non-idle)", "", "self:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.path, top=args.top))


if __name__ == "__main__":
    main()
