"""An HTTP-aware TCP proxy that injects faults, to sit between nxup and S3 (through the
sandbox's `advertised_s3_endpoint`) or between nxup and the Nuxeo server (as its URL).

It reads each request's head and frames its body (Content-Length or chunked, `Expect:
100-continue` honoured), so a fault lands on one request of a keep-alive connection, at a
chosen point: before the server sees it, mid-body, or after the server acted. A policy
picks the fault of each request: `RandomFaults` (seeded rates per kind), `ScriptedFaults`
(the next requests that match) or `Outage` (everything fails for a while). `counts` says what
was really done, so a test can assert that each fault happened; `answered` lists the requests the
server answered; `wire` times the request-body bytes handed to the server (the rate the server
really received, whatever the client believes it sent).
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Self

_CHUNK = 64 * 1024
_MAX_HEAD = 64 * 1024
_IO_TIMEOUT_S = 600.0


class FaultKind(StrEnum):
    RESET_REQUEST = (
        "reset_request"  # the connection drops mid-request-body: the server never acts
    )
    RESET_RESPONSE = (
        "reset_response"  # the server acted; the connection drops mid-answer
    )
    LOSE_REPLY = (
        "lose_reply"  # the server acted; its whole answer is lost with the connection
    )
    ERROR_500 = (
        "error_500"  # answered 500 by the proxy; the server never sees the request
    )
    ERROR_503 = "error_503"  # answered 503 (S3: SlowDown) by the proxy
    STALL = "stall"  # the server acted; its answer is held for seconds
    LATENCY = "latency"  # the request reaches the server a little late


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    seconds: float = 0.0  # STALL and LATENCY
    after_bytes: int | None = (
        None  # RESET_REQUEST: body bytes let through (default: half)
    )


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    raw: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def content_length(self) -> int:
        return int(self.headers.get("content-length", "0") or 0)

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0

    @property
    def expects_continue(self) -> bool:
        return self.headers.get("expect", "").lower() == "100-continue"


Policy = Callable[[RequestHead], Fault | None]
Matcher = Callable[[RequestHead], bool]


def no_faults(head: RequestHead) -> Fault | None:
    return None


class RandomFaults:
    """Each request gets at most one fault, kind by kind with the given rates (seeded, so a run's
    mix is reproducible in kind and rate; which request gets which depends on thread timing)."""

    def __init__(
        self,
        seed: int,
        rates: Mapping[FaultKind, float],
        *,
        stall_s: tuple[float, float] = (1.0, 3.0),
        latency_s: tuple[float, float] = (0.05, 0.3),
        where: Matcher = lambda head: True,
    ) -> None:
        assert sum(rates.values()) < 1.0
        self._random = random.Random(seed)
        self._rates = dict(rates)
        self._stall_s = stall_s
        self._latency_s = latency_s
        self._where = where
        self._lock = threading.Lock()

    def __call__(self, head: RequestHead) -> Fault | None:
        if not self._where(head):
            return None
        with self._lock:
            draw = self._random.random()
            for kind, rate in self._rates.items():
                if draw < rate:
                    return Fault(kind, seconds=self._seconds(kind))
                draw -= rate
        return None

    def _seconds(self, kind: FaultKind) -> float:
        if kind is FaultKind.STALL:
            return self._random.uniform(*self._stall_s)
        if kind is FaultKind.LATENCY:
            return self._random.uniform(*self._latency_s)
        return 0.0


class ScriptedFaults:
    """Faults for the next requests that match, in order: each entry applies once, to the first
    request that matches it while it is the first entry left."""

    def __init__(self, script: Iterable[tuple[Matcher, Fault]]) -> None:
        self._script = list(script)
        self._lock = threading.Lock()

    def __call__(self, head: RequestHead) -> Fault | None:
        with self._lock:
            if self._script and self._script[0][0](head):
                return self._script.pop(0)[1]
        return None

    @property
    def left(self) -> int:
        with self._lock:
            return len(self._script)


class Outage:
    """A server down for a while (a restart): from the `after`-th request on, every request gets
    `fault` for `seconds`; before and after that, `then` decides."""

    def __init__(
        self,
        *,
        after: int,
        seconds: float,
        then: Policy = no_faults,
        fault: Fault = Fault(FaultKind.ERROR_503),
    ) -> None:
        self._after = after
        self._seconds = seconds
        self._then = then
        self._fault = fault
        self._seen = 0
        self._began: float | None = None
        self.answered = 0  # requests the outage took
        self._lock = threading.Lock()

    def __call__(self, head: RequestHead) -> Fault | None:
        with self._lock:
            self._seen += 1
            if self._began is None and self._seen >= self._after:
                self._began = time.monotonic()
            if (
                self._began is not None
                and time.monotonic() - self._began < self._seconds
            ):
                self.answered += 1
                return self._fault
        return self._then(head)


class WireMeter:
    """Request-body bytes forwarded to the server, each block with the time it was handed to the
    server's connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: list[tuple[float, int]] = []
        self._total = 0

    def add(self, size: int) -> None:
        with self._lock:
            self._total += size
            self._blocks.append((time.monotonic(), size))

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def between(self, start: float, end: float) -> int:
        """Bytes forwarded from `start` to `end` (monotonic clock)."""
        with self._lock:
            return sum(size for when, size in self._blocks if start <= when < end)

    def rate(self, start: float, end: float) -> float:
        """Bytes per second forwarded from `start` to `end`."""
        return self.between(start, end) / (end - start)


@dataclass(frozen=True, slots=True)
class Answered:
    """A request the server answered (its answer head read by the proxy), and the fault it had."""

    method: str
    path: str
    status: int
    fault: FaultKind | None


class Flavor(StrEnum):
    """Whose error bodies the proxy answers with."""

    S3 = "s3"
    NUXEO = "nuxeo"


_S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


def error_answer(flavor: Flavor, status: int, *, close: bool) -> bytes:
    """A whole HTTP answer as S3 (XML error) or Nuxeo (JSON exception entity) words it."""
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}[status]
    if flavor is Flavor.S3:
        code, message = _S3_ERRORS[status]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>faultproxy</RequestId></Error>"
        ).encode()
        content_type = "application/xml"
    else:
        body = json.dumps(
            {"entity-type": "exception", "status": status, "message": reason}
        ).encode()
        content_type = "application/json"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode() + body


class _Dropped(Exception):
    """A connection ended (by a peer or by a fault): stop serving it."""


@dataclass(slots=True)
class _Response:
    status: int
    raw_head: bytes
    close: bool
    chunked: bool
    length: (
        int | None
    )  # None with `chunked` false: the body runs to the end of the connection


def _read_head(reader: BinaryIO) -> bytes | None:
    """The bytes of one message head up to its blank line; None at a clean end of stream."""
    lines = []
    size = 0
    while True:
        line = reader.readline(_MAX_HEAD)
        if not line:
            if lines:
                raise _Dropped("connection ended inside a message head")
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue  # stray CRLF between messages
        lines.append(line)
        size += len(line)
        if size > _MAX_HEAD:
            raise _Dropped("message head too long")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _headers(raw: bytes) -> tuple[str, dict[str, str]]:
    first, *rest = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in rest:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return first, headers


def _parse_request(raw: bytes) -> RequestHead:
    first, headers = _headers(raw)
    method, target, _ = first.split(" ", 2)
    return RequestHead(method=method, target=target, headers=headers, raw=raw)


def _parse_response(raw: bytes, method: str) -> _Response:
    first, headers = _headers(raw)
    status = int(first.split(" ", 2)[1])
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length: int | None = None
    if method == "HEAD" or status < 200 or status in (204, 304):
        length = 0
    elif not chunked and "content-length" in headers:
        length = int(headers["content-length"])
    close = headers.get("connection", "").lower() == "close" or (
        length is None and not chunked
    )
    return _Response(
        status=status, raw_head=raw, close=close, chunked=chunked, length=length
    )


def _copy_exact(reader: BinaryIO, send: Callable[[bytes], None], size: int) -> None:
    while size > 0:
        data = reader.read(min(_CHUNK, size))
        if not data:
            raise _Dropped("connection ended inside a body")
        send(data)
        size -= len(data)


def _copy_chunked(
    reader: BinaryIO, send: Callable[[bytes], None], *, limit: int | None = None
) -> None:
    """Relay a chunked body as is (chunk lines, data, trailers). With `limit`, stop once that
    many bytes went through (then the caller cuts the connection)."""
    budget = [limit]

    def relay(data: bytes) -> None:
        if budget[0] is not None:
            data = data[: budget[0]]
            budget[0] -= len(data)
        send(data)
        if budget[0] is not None and budget[0] <= 0:
            raise _CutHere()

    while True:
        line = reader.readline(_MAX_HEAD)
        if not line:
            raise _Dropped("connection ended inside a chunked body")
        relay(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        _copy_exact(reader, relay, size + 2)  # the data and its CRLF
    while True:  # trailers, up to the blank line
        line = reader.readline(_MAX_HEAD)
        if not line:
            raise _Dropped("connection ended inside chunked trailers")
        relay(line)
        if line in (b"\r\n", b"\n"):
            return


class _CutHere(Exception):
    """The byte budget of a cut body is spent."""


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a dropped link or a crashed peer does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


class _Upstream:
    """The connection to the server behind one client connection, opened on demand and opened
    again when the server closed it between requests (an idle keep-alive timeout)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self.sock: socket.socket | None = None
        self.reader: BinaryIO | None = None

    def ready(self) -> tuple[socket.socket, BinaryIO]:
        if self.sock is not None and self._closed_by_server():
            self.close()
        if self.sock is None or self.reader is None:
            self.sock = socket.create_connection(self._address, timeout=_IO_TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reader = self.sock.makefile("rb")
        return self.sock, self.reader

    def _closed_by_server(self) -> bool:
        assert self.sock is not None
        self.sock.setblocking(False)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.settimeout(_IO_TIMEOUT_S)

    def close(self) -> None:
        if self.sock is not None:
            _close(self.sock)
        self.sock = self.reader = None


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream` ("host:port"), one thread per client connection,
    each request subject to `policy` (changeable while it runs)."""

    def __init__(
        self, upstream: str, *, flavor: Flavor, policy: Policy = no_faults
    ) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host or "127.0.0.1", int(port))
        self.flavor = flavor
        self.policy = policy
        self.counts: Counter[FaultKind] = Counter()
        self.requests = 0
        self.connections_served = 0
        self.faults: list[
            tuple[FaultKind, str, str]
        ] = []  # (kind, method, path) of each fault
        self.answered: list[Answered] = []
        self.wire = WireMeter()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._accept, name="faultproxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        try:
            self._listener.shutdown(
                socket.SHUT_RDWR
            )  # wakes the accepting thread; close alone does not
        except OSError:
            pass
        _close(self._listener)
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            _close(sock)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -----------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.settimeout(_IO_TIMEOUT_S)
            # Heads and bodies are relayed in separate writes: without TCP_NODELAY each answer
            # would wait for the peer's delayed ACK (40 ms), a latency no real network adds.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(client)
                self.connections_served += 1
            threading.Thread(
                target=self._serve, args=(client,), name="faultproxy-conn", daemon=True
            ).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = _Upstream(self._upstream)
        reader = client.makefile("rb")
        try:
            while self._exchange(client, reader, upstream):
                pass
        except (_Dropped, OSError, ValueError):
            pass
        finally:
            upstream.close()
            _close(client)
            with self._lock:
                self._connections.discard(client)

    def _record(self, head: RequestHead, fault: Fault | None) -> None:
        with self._lock:
            self.requests += 1
            if fault is not None:
                self.counts[fault.kind] += 1
                self.faults.append((fault.kind, head.method, head.path))

    def _exchange(
        self, client: socket.socket, reader: BinaryIO, upstream: _Upstream
    ) -> bool:
        """Serve one request of the client connection; False when the connection is over."""
        raw = _read_head(reader)
        if raw is None:
            return False
        head = _parse_request(raw)
        fault = self.policy(head)
        self._record(head, fault)
        kind = fault.kind if fault else None
        if kind in (FaultKind.ERROR_500, FaultKind.ERROR_503):
            return self._answer_locally(
                client, reader, head, 500 if kind is FaultKind.ERROR_500 else 503
            )
        if kind is FaultKind.RESET_REQUEST and not head.has_body:
            _reset(client)  # nothing to cut in the middle of: the server never sees it
            return False
        if fault is not None and kind is FaultKind.LATENCY:
            time.sleep(fault.seconds)
        server, server_reader = upstream.ready()
        server.sendall(head.raw)
        if head.expects_continue:
            interim = self._interim(client, server_reader, head)
            if interim is not None:  # the server answered without wanting the body
                client.sendall(interim.raw_head)
                self._relay_body(server_reader, client.sendall, interim)
                return False
        if kind is FaultKind.RESET_REQUEST:
            assert fault is not None
            self._cut_request(reader, server, head, fault)
            _reset(client)
            upstream.close()
            return False
        self._relay_request_body(reader, self._metered(server), head)
        response = self._final_response(client, server_reader, head)
        with self._lock:
            self.answered.append(
                Answered(head.method, head.path, response.status, kind)
            )
        return self._answer(client, server_reader, upstream, response, fault)

    def _metered(self, server: socket.socket) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            server.sendall(data)
            self.wire.add(len(data))

        return send

    def _interim(
        self, client: socket.socket, server_reader: BinaryIO, head: RequestHead
    ) -> _Response | None:
        """After the head of an `Expect: 100-continue` request: relay the server's 100 and
        return None, or return its final answer (then the client sends no body)."""
        raw = _read_head(server_reader)
        if raw is None:
            raise _Dropped("the server closed the connection")
        response = _parse_response(raw, head.method)
        if response.status == 100:
            client.sendall(raw)
            return None
        return response

    def _final_response(
        self, client: socket.socket, server_reader: BinaryIO, head: RequestHead
    ) -> _Response:
        """The server's final answer head (interim answers other than an awaited 100 are relayed)."""
        while True:
            raw = _read_head(server_reader)
            if raw is None:
                raise _Dropped("the server closed the connection")
            response = _parse_response(raw, head.method)
            if response.status >= 200:
                return response
            client.sendall(raw)

    @staticmethod
    def _relay_request_body(
        reader: BinaryIO, send: Callable[[bytes], None], head: RequestHead
    ) -> None:
        if head.chunked:
            _copy_chunked(reader, send)
        else:
            _copy_exact(reader, send, head.content_length)

    @staticmethod
    def _relay_body(
        server_reader: BinaryIO, send: Callable[[bytes], None], response: _Response
    ) -> None:
        if response.chunked:
            _copy_chunked(server_reader, send)
        elif response.length is not None:
            _copy_exact(server_reader, send, response.length)
        else:
            while data := server_reader.read1(_CHUNK):
                send(data)

    @staticmethod
    def _read_body(server_reader: BinaryIO, response: _Response) -> bytes:
        parts: list[bytes] = []
        FaultProxy._relay_body(server_reader, parts.append, response)
        return b"".join(parts)

    def _cut_request(
        self, reader: BinaryIO, server: socket.socket, head: RequestHead, fault: Fault
    ) -> None:
        """Let part of the body through (half by default), then the caller drops both sides."""
        total = head.content_length if not head.chunked else None
        budget = (
            fault.after_bytes
            if fault.after_bytes is not None
            else (total or 2 * _CHUNK) // 2
        )
        if head.chunked:
            try:
                _copy_chunked(reader, self._metered(server), limit=max(budget, 1))
            except _CutHere:
                pass
        else:
            _copy_exact(reader, self._metered(server), min(budget, head.content_length))
        _reset(server)

    def _answer(
        self,
        client: socket.socket,
        server_reader: BinaryIO,
        upstream: _Upstream,
        response: _Response,
        fault: Fault | None,
    ) -> bool:
        kind = fault.kind if fault else None
        if kind is FaultKind.LOSE_REPLY:
            self._read_body(server_reader, response)
            _reset(client)
            upstream.close()
            return False
        if kind is FaultKind.RESET_RESPONSE:
            body = self._read_body(server_reader, response)
            answer = response.raw_head + body
            # Mid-body when there is one, else mid-head: the client sees an incomplete answer.
            cut = (
                len(response.raw_head) + len(body) // 2
                if body
                else len(response.raw_head) // 2
            )
            client.sendall(answer[:cut])
            _reset(client)
            upstream.close()
            return False
        if kind is FaultKind.STALL and fault is not None:
            body = self._read_body(server_reader, response)
            time.sleep(fault.seconds)
            client.sendall(response.raw_head + body)
        else:
            client.sendall(response.raw_head)
            self._relay_body(server_reader, client.sendall, response)
        if response.close:
            upstream.close()
            return False
        return True

    def _answer_locally(
        self, client: socket.socket, reader: BinaryIO, head: RequestHead, status: int
    ) -> bool:
        """Answer an error without the server. A client waiting for `100 Continue` gets the
        error instead and sends no body, so that connection ends; otherwise the body is read
        and the connection stays open."""
        if head.expects_continue:
            client.sendall(error_answer(self.flavor, status, close=True))
            client.shutdown(socket.SHUT_WR)
            return False
        self._relay_request_body(reader, lambda data: None, head)
        client.sendall(error_answer(self.flavor, status, close=False))
        return True


__all__ = [
    "Answered",
    "Fault",
    "FaultKind",
    "FaultProxy",
    "Flavor",
    "Outage",
    "RandomFaults",
    "RequestHead",
    "ScriptedFaults",
    "WireMeter",
    "error_answer",
    "no_faults",
]
