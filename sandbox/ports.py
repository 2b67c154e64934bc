"""Ports for the sandbox's servers: free now, and chosen where no other process is handed them.

`weed mini` opens ten ports given on its command line, so they are chosen before it starts;
another process can still take one meanwhile, which `names_a_taken_port` recognises in its log.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port free now, chosen outside the kernel's ephemeral range where possible.

    A port the kernel hands out for "any free port" is also one it may hand to the next
    outgoing connection before the server binds it; ports below that range are only ever
    taken by explicit binds.
    """
    low, _high = _ephemeral_range()
    if low > 12000:
        for _ in range(50):
            port = secrets.randbelow(low - 11000) + 10000
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def names_a_taken_port(log: str) -> bool:
    # weed checks its ports before binding ("Port allocation failed") and may still lose one
    # between that check and the bind ("address already in use").
    return "Port allocation failed" in log or "address already in use" in log


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        # weed derives no ports of its own here, but two flags must never share one.
        if port not in ports:
            ports.append(port)
    return ports


__all__ = ["free_port", "free_ports", "names_a_taken_port"]
