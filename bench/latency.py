"""Added round-trip latency in front of the sandbox's two servers, in a process of its own (so
that its CPU counts neither as the client's nor as the Nuxeo server's).

    python -m bench.latency --s3 127.0.0.1:PORT --nuxeo 127.0.0.1:PORT --delay-ms 20

It runs the test suite's fault proxy (`tests/faultproxy.py`) with one policy: every request
reaches its server `--delay-ms` late (the proxy's LATENCY fault), so each request/answer round
trip takes that much longer; opening a connection is not delayed. The first line of output is
JSON with the proxies' URLs; it serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faultproxy import Fault, FaultKind, FaultProxy, Flavor, RequestHead


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--s3", required=True, help="host:port of the S3 server")
    parser.add_argument("--nuxeo", required=True, help="host:port of the Nuxeo server")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    delay = Fault(FaultKind.LATENCY, seconds=args.delay_ms / 1000)

    def late(head: RequestHead) -> Fault:
        return delay

    with (
        FaultProxy(args.s3, flavor=Flavor.S3, policy=late) as s3,
        FaultProxy(args.nuxeo, flavor=Flavor.NUXEO, policy=late) as nuxeo,
    ):
        print(json.dumps({"s3": s3.url, "nuxeo": nuxeo.url}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
