"""`python -m sandbox`: run the sandbox in the foreground until SIGINT or SIGTERM.

With `--json` the first line of output is one JSON object with the connection details; this is
how `SandboxProcess` (and `nxup sandbox --json`) hand them to another process.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .core import Sandbox
from .nuxeo_server import BATCH_TTL_S
from .s3 import AccessPolicy


def serve(*, port: int = 0, data_dir: Path | None = None, as_json: bool = False, credential_ttl_s: int = 3600,
          default_handler_first: bool = False, password: str | None = None,
          policy: AccessPolicy | str = AccessPolicy.STOCK, batch_ttl_s: float = BATCH_TTL_S,
          handler_name: str = "s3") -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        running = Sandbox(
            port=port, data_dir=data_dir, credential_ttl_s=credential_ttl_s,
            default_handler_first=default_handler_first, password=password,
            policy=policy, batch_ttl_s=batch_ttl_s, handler_name=handler_name,
        ).start()
    except Exception as exc:  # a missing binary or a busy port is a one-line message
        print(f"cannot start the sandbox: {exc}", file=sys.stderr)
        return 1
    try:
        info = running.info
        if as_json:
            print(json.dumps(info.as_json()), flush=True)
        else:
            print(f"Nuxeo:  {info.nuxeo_url}  user {info.user}  password {info.password}")
            print(f"S3:     {info.s3_endpoint}  bucket {info.bucket}  (admin key {info.s3_access_key_id})")
            print(f"Policy: {info.policy} batch credentials")
            print(
                f"Try:    NUXEO_PASSWORD='{info.password}' nxup upload FILE --url {info.nuxeo_url}"
                " --to /default-domain/workspaces --no-tui"
            )
            print("Ctrl-C stops the sandbox.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--credential-ttl", type=int, default=3600)
    parser.add_argument("--default-handler-first", action="store_true")
    parser.add_argument("--policy", choices=[p.value for p in AccessPolicy], default=AccessPolicy.STOCK.value)
    parser.add_argument("--batch-ttl", type=float, default=BATCH_TTL_S, help="batch lifetime in seconds")
    parser.add_argument("--handler-name", default="s3")
    args = parser.parse_args(argv)
    return serve(port=args.port, data_dir=args.data_dir, as_json=args.json,
                 credential_ttl_s=args.credential_ttl, default_handler_first=args.default_handler_first,
                 policy=args.policy, batch_ttl_s=args.batch_ttl, handler_name=args.handler_name)


if __name__ == "__main__":
    sys.exit(main())
