"""HTTP for the sandbox Nuxeo server: the request and response types, Nuxeo's JSON error bodies,
the routing table, and the standard library's threading HTTP server underneath."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

CONTEXT = "/nuxeo"
API = "/api/v1"


# -- errors, requests and responses ----------------------------------------------------------


class NuxeoError(Exception):
    """An error answered as Nuxeo's JSON exception entity."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EmptyError(Exception):
    """An error answered with an empty body, as the batch endpoints do (`buildEmptyResponse`)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def not_found(message: str) -> NuxeoError:
    return NuxeoError(HTTPStatus.NOT_FOUND, message)


def bad_request(message: str) -> NuxeoError:
    return NuxeoError(HTTPStatus.BAD_REQUEST, message)


@dataclass
class Request:
    method: str
    path: str  # below the /nuxeo context, still percent-encoded
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # route groups, percent-decoded
    user: str = ""

    def flag(self, header: str) -> bool:
        return (self.headers.get(header) or "").strip().lower() == "true"

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body counts as `{}`."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise bad_request(f"Invalid JSON body: {exc}") from None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad_request("The JSON body must be an object")
        return value


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str | None = None
    length: int | None = None  # required when `body` is an iterable
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = HTTPStatus.OK) -> Response:
        return cls(status, json.dumps(payload).encode(), "application/json")

    @classmethod
    def text(cls, text: str, status: int = HTTPStatus.OK) -> Response:
        return cls(status, text.encode(), "text/plain;charset=UTF-8")

    @classmethod
    def empty(cls, status: int = HTTPStatus.NO_CONTENT) -> Response:
        return cls(status)

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"entity-type": "exception", "status": status, "message": message}, status)


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


# -- routing ---------------------------------------------------------------------------------

Handler = Callable[[Request], Response]
# Runs around every authenticated request, like a servlet filter: it gets the request and the
# rest of the chain.
Filter = Callable[[Request, Handler], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    public: bool = False  # reachable without credentials


def route(method: str, pattern: str, handler: Handler, *, public: bool = False) -> Route:
    """A route for `pattern`, matched against the whole path below the /nuxeo context."""
    return Route(method, re.compile(pattern), handler, public)


class Router:
    """Finds a request's route, authenticates it unless public (then runs it inside `around`),
    and turns errors into Nuxeo's JSON exception entity (or an empty body)."""

    def __init__(
        self,
        routes: Iterable[Route],
        *,
        authenticate: Callable[[Message], str],
        log: Callable[[str], None],
        around: Filter,
    ) -> None:
        self._routes = list(routes)
        self._authenticate = authenticate
        self._log = log
        self._around = around

    def dispatch(self, request: Request) -> Response:
        try:
            matched = self._authenticated_route(request)
        except Exception as exc:
            return self._error(request, exc)
        run = functools.partial(self._run, matched.handler)
        return run(request) if matched.public else self._around(request, run)

    def _authenticated_route(self, request: Request) -> Route:
        matched, params = self._match(request)
        if not matched.public:
            request.user = self._authenticate(request.headers)
        request.params = params
        return matched

    def _run(self, handler: Handler, request: Request) -> Response:
        try:
            return handler(request)
        except Exception as exc:
            return self._error(request, exc)

    def _error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, NuxeoError):
            return Response.error(exc.status, exc.message)
        if isinstance(exc, EmptyError):
            return Response.empty(exc.status)
        # A bug or S3 being down: report it rather than hang up.
        self._log(f"internal error on {request.method} {request.path}: {exc!r}")
        return Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, f"Internal error: {exc}")

    def _match(self, request: Request) -> tuple[Route, dict[str, str]]:
        if request.path.startswith(CONTEXT + "/"):
            local = request.path[len(CONTEXT) :]
            for candidate in self._routes:
                if candidate.method != request.method:
                    continue
                match = candidate.pattern.fullmatch(local)
                if match:
                    groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    return candidate, groups
        raise not_found(f"Not found: {request.path}")


# -- HTTP plumbing ---------------------------------------------------------------------------


class App(Protocol):
    """What the HTTP server serves."""

    def dispatch(self, request: Request) -> Response: ...

    def log(self, line: str) -> None: ...


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a paused upload, a stopped process) are normal here; anything
        else goes to the server's log file, never to the terminal."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        self.app.log(f"request from {client_address} failed: {error!r}")

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Hang up idle keep-alive connections so their threads end with the server."""
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: with Nagle's algorithm the body would wait for
        # the client's delayed ACK of the headers (40 ms a response on Linux), which no real
        # server (Tomcat sets TCP_NODELAY) makes a client pay.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries no secret (tokens and passwords travel in headers).
        self.server.app.log(f"{self.address_string()} {format % args}")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise NuxeoError(HTTPStatus.LENGTH_REQUIRED, "Chunked request bodies are not supported")
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, *, send_body: bool = True) -> None:
        try:
            body = self._read_body()
        except (NuxeoError, ValueError) as exc:
            self.close_connection = True
            status = exc.status if isinstance(exc, NuxeoError) else HTTPStatus.BAD_REQUEST
            self._send(Response.error(status, str(exc)), send_body)
            return
        url = urlsplit(self.path)
        request = Request(self.command, url.path, dict(parse_qsl(url.query)), self.headers, body)
        self._send(self.server.app.dispatch(request), send_body)

    def _send(self, response: Response, send_body: bool) -> None:
        body = response.body
        length = len(body) if isinstance(body, bytes) else response.length
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(length or 0))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not send_body:
                return
            if isinstance(body, bytes):
                self.wfile.write(body)
            else:
                for chunk in body:
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
