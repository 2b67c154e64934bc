"""A local Nuxeo-compatible HTTP server for the sandbox.

It answers the subset of the Nuxeo REST API that the real `nuxeo` Python client (7.1.0) and nxup
use for S3 direct upload — batches with per-batch temporary S3 credentials, `/complete`,
`refreshToken`, batch operations (`Blob.Attach`, `FileManager.Import`) and documents — with the
paths, status codes and JSON shapes a real server produces (see docs/nuxeo-s3-contract.md and
docs/nuxeo-client-calls.md). State lives in SQLite so that a persistent sandbox survives restarts.

Only the standard library serves HTTP; S3 work goes through an `S3Backend` (SeaweedS3).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import mimetypes
import os
import re
import secrets
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from botocore.exceptions import ClientError

from .s3 import TemporaryCredentials

__all__ = ["NuxeoServer", "S3Backend"]

CONTEXT = "/nuxeo"
REPOSITORY = "default"
PRODUCT_VERSION = "2023.0"
DB_NAME = "nuxeo.db"
LOG_NAME = "nuxeo.log"
STREAM_CHUNK = 1024 * 1024
# Nuxeo's PathSegmentService truncates generated names to this length.
PATH_SEGMENT_MAX = 24
FILE_CONTENT = "file:content"
FILES_FILES = "files:files"

FOLDERISH_TYPES = frozenset(
    {
        "Root",
        "Domain",
        "WorkspaceRoot",
        "Workspace",
        "UserWorkspacesRoot",
        "Folder",
        "OrderedFolder",
        "SectionRoot",
        "Section",
        "TemplateRoot",
        "Collections",
    }
)
# Types carrying the `file` and `files` schemas.
FILE_TYPES = frozenset({"File", "Picture", "Video", "Audio", "Note"})
PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")
# Names made only of these characters are replaced by a random id, as Nuxeo does.
MEANINGLESS_NAME = re.compile(r"^[- .,;?!:/\\'\"]*$")


class S3Backend(Protocol):
    """What the server needs from the S3 side (implemented by `SeaweedS3`)."""

    bucket: str
    region: str

    @property
    def endpoint(self) -> str: ...

    def admin_client(self) -> Any: ...

    def mint_credentials(self, *, session_name: str, key_prefix: str) -> TemporaryCredentials: ...


# -- errors, requests and responses ----------------------------------------------------------


class NuxeoError(Exception):
    """An error answered as Nuxeo's JSON exception entity."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def path_segment(text: str) -> str:
    """A document name generated from a title, like Nuxeo's default PathSegmentService."""
    segment = text.strip()[:PATH_SEGMENT_MAX].replace("/", "-").replace("\\", "-")
    if MEANINGLESS_NAME.match(segment):
        return str(int(time.time() * 1000)) + secrets.token_hex(2)
    return segment


def split_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """("text/plain", "UTF-8") from "text/plain; charset=UTF-8"."""
    if not content_type:
        return None, None
    message = Message()
    message["Content-Type"] = content_type
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredBlob:
    """A blob as a document keeps it: the S3 object stays where it was uploaded."""

    name: str
    mime_type: str | None
    encoding: str | None
    digest: str
    length: int
    key: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mime-type": self.mime_type,
            "encoding": self.encoding,
            "digest": self.digest,
            "length": self.length,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredBlob:
        return cls(
            data["name"],
            data["mime-type"],
            data["encoding"],
            data["digest"],
            int(data["length"]),
            data["key"],
        )


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    provider: str
    base_key: str

    @property
    def is_s3(self) -> bool:
        return self.provider == "s3"


@dataclass(frozen=True)
class BatchFile:
    batch_id: str
    idx: int
    etag: str
    blob: StoredBlob

    def info(self) -> dict[str, Any]:
        return {"name": self.blob.name, "size": self.blob.length, "uploadType": "normal"}


@dataclass(frozen=True)
class DocRecord:
    uid: str
    parent_uid: str | None
    name: str
    path: str
    type: str
    properties: dict[str, Any]  # blobs kept in their `StoredBlob.as_dict()` form
    change_token: int
    modified: str

    @property
    def folderish(self) -> bool:
        return self.type in FOLDERISH_TYPES

    @property
    def title(self) -> str:
        return self.properties.get("dc:title") or self.name

    def child_path(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"


# -- persistence -----------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    uid TEXT PRIMARY KEY,
    parent_uid TEXT REFERENCES documents(uid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    properties TEXT NOT NULL,
    change_token INTEGER NOT NULL,
    modified TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_parent ON documents(parent_uid);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    base_key TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_files (
    batch_id TEXT NOT NULL REFERENCES batches(batch_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    etag TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    application_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_description TEXT,
    permission TEXT NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (user, application_name, device_id)
);
"""

_DOC_COLUMNS = "uid, parent_uid, name, path, type, properties, change_token, modified"


class Store:
    """SQLite state: one connection shared by the request threads behind a re-entrant lock."""

    def __init__(self, path: Path) -> None:
        # Create the file 0600 before SQLite does: it holds tokens.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Nestable: only the outermost level commits (or rolls back on error)."""
        with self._lock:
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                if self._depth == 1:
                    self._conn.rollback()
                raise
            else:
                if self._depth == 1:
                    self._conn.commit()
            finally:
                self._depth -= 1

    # documents
    @staticmethod
    def _doc(row: tuple[Any, ...] | None) -> DocRecord | None:
        if row is None:
            return None
        uid, parent_uid, name, path, doc_type, props, token, modified = row
        return DocRecord(uid, parent_uid, name, path, doc_type, json.loads(props), token, modified)

    def doc_by_uid(self, uid: str) -> DocRecord | None:
        with self.transaction() as db:
            row = db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE uid = ?", (uid,))
            return self._doc(row.fetchone())

    def doc_by_path(self, path: str) -> DocRecord | None:
        with self.transaction() as db:
            row = db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (path,))
            return self._doc(row.fetchone())

    def children(self, parent_uid: str) -> list[DocRecord]:
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE parent_uid = ? ORDER BY rowid",
                (parent_uid,),
            )
            return [doc for doc in map(self._doc, rows.fetchall()) if doc is not None]

    def save_doc(self, doc: DocRecord) -> None:
        with self.transaction() as db:
            db.execute(
                # An upsert, not INSERT OR REPLACE: a replace deletes the row first, and
                # the cascade would take the children with it.
                f"INSERT INTO documents ({_DOC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(uid) DO UPDATE SET properties = excluded.properties,"
                " change_token = excluded.change_token, modified = excluded.modified",
                (
                    doc.uid,
                    doc.parent_uid,
                    doc.name,
                    doc.path,
                    doc.type,
                    json.dumps(doc.properties),
                    doc.change_token,
                    doc.modified,
                ),
            )

    def delete_doc(self, uid: str) -> None:
        # Children go too, through ON DELETE CASCADE.
        with self.transaction() as db:
            db.execute("DELETE FROM documents WHERE uid = ?", (uid,))

    # batches
    def add_batch(self, batch: BatchRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, provider, base_key, created) VALUES (?, ?, ?, ?)",
                (batch.batch_id, batch.provider, batch.base_key, now_iso()),
            )

    def batch(self, batch_id: str) -> BatchRecord | None:
        with self.transaction() as db:
            row = db.execute(
                "SELECT batch_id, provider, base_key FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            return BatchRecord(*row) if row else None

    def drop_batch(self, batch_id: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,)).rowcount > 0

    def batch_files(self, batch_id: str) -> list[BatchFile]:
        with self.transaction() as db:
            rows = db.execute(
                "SELECT idx, etag, blob FROM batch_files WHERE batch_id = ? ORDER BY idx",
                (batch_id,),
            ).fetchall()
        return [
            BatchFile(batch_id, idx, etag, StoredBlob.from_dict(json.loads(blob)))
            for idx, etag, blob in rows
        ]

    def batch_file(self, batch_id: str, idx: int) -> BatchFile | None:
        return next((f for f in self.batch_files(batch_id) if f.idx == idx), None)

    def put_batch_file(self, entry: BatchFile) -> bool:
        """False when the batch was dropped meanwhile."""
        with self.transaction() as db:
            if self.batch(entry.batch_id) is None:
                return False
            db.execute(
                "INSERT OR REPLACE INTO batch_files (batch_id, idx, etag, blob)"
                " VALUES (?, ?, ?, ?)",
                (entry.batch_id, entry.idx, entry.etag, json.dumps(entry.blob.as_dict())),
            )
            return True

    def delete_batch_file(self, batch_id: str, idx: int) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM batch_files WHERE batch_id = ? AND idx = ?", (batch_id, idx)
            )
            return cursor.rowcount > 0

    # tokens
    def token_user(self, token: str) -> str | None:
        with self.transaction() as db:
            row = db.execute("SELECT user FROM tokens WHERE token = ?", (token,)).fetchone()
            return row[0] if row else None

    def acquire_token(
        self, user: str, app: str, device_id: str, permission: str, description: str | None
    ) -> str:
        """The existing token for (user, app, device), else a new one (as Nuxeo does)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT token FROM tokens"
                " WHERE user = ? AND application_name = ? AND device_id = ?",
                (user, app, device_id),
            ).fetchone()
            if row:
                return row[0]
            token = str(uuid.uuid4())
            db.execute(
                "INSERT INTO tokens (token, user, application_name, device_id, device_description,"
                " permission, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token, user, app, device_id, description, permission, now_iso()),
            )
            return token

    def revoke_token(self, user: str, app: str, device_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM tokens WHERE user = ? AND application_name = ? AND device_id = ?",
                (user, app, device_id),
            )
            return cursor.rowcount > 0


# -- routing ---------------------------------------------------------------------------------

Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    public: bool = False  # reachable without credentials


_API = "/api/v1"
_DOC_PREFIX = rf"{_API}(?:/repo/(?P<repo>[^/]+))?"
_BATCH = r"/upload/(?P<batch_id>[^/]+)"
_FILE = rf"{_BATCH}/(?P<file_idx>[^/]+)"


# -- the server ------------------------------------------------------------------------------


class NuxeoServer:
    """The Nuxeo-compatible HTTP server. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        s3: S3Backend,
        data_dir: Path,
        password: str,
        user: str = "Administrator",
        port: int = 0,
        key_prefix: str = "upload/",
        default_handler_first: bool = False,
    ) -> None:
        self.s3 = s3
        self.data_dir = Path(data_dir)
        self.user = user
        self._password = password
        self._port = port
        self.key_prefix = key_prefix
        self.default_handler_first = default_handler_first
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._s3_admin: Any = None
        self._log_lock = threading.Lock()
        # The S3 endpoint handed to clients, like a real server's `endpoint` setting; tests
        # point it at a proxy to cut connections. None means the S3 server's own.
        self.advertised_s3_endpoint: str | None = None
        self._routes = self._build_routes()
        self._operations: dict[str, Callable[[Request, list[BatchFile]], Response]] = {
            "Blob.Attach": self._op_attach,
            "FileManager.Import": self._op_import,
        }

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the Nuxeo server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/nuxeo`: `Nuxeo(host=...)` accepts it with or without the `/`."""
        return f"http://127.0.0.1:{self.port}{CONTEXT}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the Nuxeo server is not running")
        return self._store

    def start(self) -> NuxeoServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._store = Store(self.data_dir / DB_NAME)
        self._s3_admin = self.s3.admin_client()
        self._ensure_tree()
        self._httpd = _HttpServer(("127.0.0.1", self._port), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="nuxeo-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, line: str) -> None:
        with self._log_lock, open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{now_iso()} {line}\n")

    # -- dispatch ------------------------------------------------------------------------
    def _build_routes(self) -> list[Route]:
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/runningstatus", self._running_status, True),
            ("GET", r"/json/cmis", self._cmis, False),
            ("GET", r"/authentication/token", self._auth_token, False),
            ("GET", rf"(?:/site)?{_API}/me", self._me, False),
            ("GET", rf"{_API}/upload/handlers", self._handlers, False),
            ("GET", rf"{_API}/upload/handlers/(?P<handler>[^/]+)", self._handler, False),
            ("POST", rf"{_API}/upload/new/(?P<handler>[^/]+)", self._new_batch, False),
            ("POST", rf"{_API}/upload/?", self._new_legacy_batch, False),
            ("GET", rf"{_API}{_BATCH}/info", self._batch_info, False),
            ("POST", rf"{_API}{_BATCH}/refreshToken", self._refresh_token, False),
            ("POST", rf"{_API}{_BATCH}/execute/(?P<operation>[^/]+)", self._execute, False),
            ("POST", rf"{_API}{_FILE}/execute/(?P<operation>[^/]+)", self._execute, False),
            ("POST", rf"{_API}{_FILE}/complete", self._complete, False),
            ("GET", rf"{_API}{_FILE}", self._batch_file, False),
            ("DELETE", rf"{_API}{_FILE}", self._delete_batch_file, False),
            ("GET", rf"{_API}{_BATCH}", self._batch_files, False),
            ("DELETE", rf"{_API}{_BATCH}", self._drop_batch, False),
            ("GET", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*?)?/@children", self._children, False),
            ("GET", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)/@children", self._children, False),
            ("GET", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._get_doc, False),
            ("GET", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._get_doc, False),
            ("POST", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._create_doc, False),
            ("POST", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._create_doc, False),
            ("PUT", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._update_doc, False),
            ("PUT", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._update_doc, False),
            ("DELETE", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._delete_doc, False),
            ("DELETE", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._delete_doc, False),
            (
                "GET",
                r"/nxfile/(?P<repo>[^/]+)/(?P<uid>[^/]+)/(?P<xpath>.+)/(?P<filename>[^/]+)",
                self._download,
                False,
            ),
        ]
        return [
            Route(method, re.compile(pattern), handler, public)
            for method, pattern, handler, public in table
        ]

    def dispatch(self, request: Request) -> Response:
        try:
            route, params = self._match(request)
            if not route.public:
                request.user = self._authenticate(request.headers)
            request.params = params
            return route.handler(request)
        except NuxeoError as exc:
            return Response.error(exc.status, exc.message)
        except Exception as exc:  # a bug or S3 being down: report it rather than hang up
            self.log(f"internal error on {request.method} {request.path}: {exc!r}")
            return Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, f"Internal error: {exc}")

    def _match(self, request: Request) -> tuple[Route, dict[str, str]]:
        if request.path.startswith(CONTEXT + "/"):
            local = request.path[len(CONTEXT) :]
            for route in self._routes:
                if route.method != request.method:
                    continue
                match = route.pattern.fullmatch(local)
                if match:
                    groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    return route, groups
        raise not_found(f"Not found: {request.path}")

    def _authenticate(self, headers: Message) -> str:
        token = headers.get("X-Authentication-Token")
        if token is not None:
            user = self.store.token_user(token) if token else None
            if user:
                return user
            raise NuxeoError(HTTPStatus.UNAUTHORIZED, "Invalid authentication token")
        user = self._basic_user(headers.get("Authorization") or "")
        if user:
            return user
        raise NuxeoError(HTTPStatus.UNAUTHORIZED, "Authentication required")

    def _basic_user(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        good_user = hmac.compare_digest(user.encode(), self.user.encode())
        good_password = hmac.compare_digest(password.encode(), self._password.encode())
        return user if good_user and good_password else None

    # -- server and user -----------------------------------------------------------------
    def _running_status(self, request: Request) -> Response:
        return Response.text("Ok")

    def _cmis(self, request: Request) -> Response:
        root = self._doc_at("/")
        return Response.json(
            {
                REPOSITORY: {
                    "repositoryId": REPOSITORY,
                    "repositoryName": "Nuxeo Repository",
                    "repositoryDescription": "Nuxeo Repository",
                    "vendorName": "Nuxeo",
                    "productName": "Nuxeo",
                    "productVersion": PRODUCT_VERSION,
                    "rootFolderId": root.uid,
                    "cmisVersionSupported": "1.1",
                }
            }
        )

    def _me(self, request: Request) -> Response:
        groups = ["administrators"]
        return Response.json(
            {
                "entity-type": "user",
                "id": request.user,
                "properties": {
                    "username": request.user,
                    "firstName": "",
                    "lastName": "",
                    "email": "",
                    "company": "",
                    "groups": groups,
                    "tenantId": None,
                },
                "extendedGroups": [{"name": g, "label": g, "url": f"group/{g}"} for g in groups],
                "isAdministrator": True,
                "isAnonymous": False,
            }
        )

    def _auth_token(self, request: Request) -> Response:
        query = request.query
        app, device_id = query.get("applicationName"), query.get("deviceId")
        permission = query.get("permission")
        if not app or not device_id or not permission:
            raise bad_request("applicationName, deviceId and permission are required")
        if truthy(query.get("revoke")):
            if not self.store.revoke_token(request.user, app, device_id):
                raise bad_request(f"No token found for application {app} and device {device_id}")
            # Real Nuxeo answers 202 with a sentence; the client ignores the body on revoke.
            return Response.text(f"Token revoked for device {device_id}.", HTTPStatus.ACCEPTED)
        token = self.store.acquire_token(
            request.user, app, device_id, permission, query.get("deviceDescription")
        )
        # No trailing newline: the client would silently replace the token by "".
        return Response.text(token, HTTPStatus.CREATED)

    # -- upload handlers and batches -----------------------------------------------------
    def _handler_names(self) -> list[str]:
        # The real client only reads the first entry, so `s3` first makes it usable.
        return ["default", "s3"] if self.default_handler_first else ["s3", "default"]

    def _handlers(self, request: Request) -> Response:
        return Response.json({"handlers": [{"name": name} for name in self._handler_names()]})

    def _handler(self, request: Request) -> Response:
        name = request.params["handler"]
        if name not in self._handler_names():
            raise not_found(f"Unknown upload handler: {name}")
        return Response.json({"name": name})

    def _new_batch(self, request: Request) -> Response:
        handler = request.params["handler"]
        if handler not in self._handler_names():
            raise not_found(f"Batch Handler does not exist: {handler}")
        batch = self._create_batch(handler)
        return Response.json(self._batch_json(batch))

    def _new_legacy_batch(self, request: Request) -> Response:
        batch = self._create_batch("default")
        return Response.json({"batchId": batch.batch_id}, HTTPStatus.CREATED)

    def _create_batch(self, provider: str) -> BatchRecord:
        batch_id = f"batchId-{uuid.uuid4()}"
        base_key = f"{self.key_prefix}{batch_id}/" if provider == "s3" else ""
        batch = BatchRecord(batch_id, provider, base_key)
        self.store.add_batch(batch)
        return batch

    def _batch(self, request: Request) -> BatchRecord:
        batch_id = request.params["batch_id"]
        batch = self.store.batch(batch_id)
        if batch is None:
            raise not_found(f"Unable to find batch with id {batch_id}")
        return batch

    def _file_index(self, request: Request) -> int:
        raw = request.params["file_idx"]
        if not raw.isdigit():
            raise not_found(f"Unable to find file index {raw}")
        return int(raw)

    def _credentials(self, batch: BatchRecord) -> dict[str, Any]:
        # Like the real server's AssumeRole(roleSessionName=batchId): fresh on every call.
        creds = self.s3.mint_credentials(session_name=batch.batch_id, key_prefix=batch.base_key)
        return {
            "awsSecretKeyId": creds.access_key_id,
            "awsSecretAccessKey": creds.secret_access_key,
            "awsSessionToken": creds.session_token,
            "expiration": int(creds.expiration.timestamp() * 1000),
        }

    def _batch_json(self, batch: BatchRecord) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if batch.is_s3:
            extra = {
                **self._credentials(batch),
                "bucket": self.s3.bucket,
                "baseKey": batch.base_key,
                "endpoint": self.advertised_s3_endpoint or self.s3.endpoint,
                "usePathStyleAccess": True,
                "region": self.s3.region,
                "useS3Accelerate": False,
            }
        return {
            "batchId": batch.batch_id,
            "provider": batch.provider,
            "extraInfo": extra,
            "fileEntries": [entry.info() for entry in self.store.batch_files(batch.batch_id)],
        }

    def _batch_info(self, request: Request) -> Response:
        return Response.json(self._batch_json(self._batch(request)))

    def _refresh_token(self, request: Request) -> Response:
        batch = self._batch(request)
        if not batch.is_s3:
            raise bad_request(f"The {batch.provider} upload handler has no credentials to refresh")
        return Response.json(self._credentials(batch))

    def _batch_files(self, request: Request) -> Response:
        batch = self._batch(request)
        files = self.store.batch_files(batch.batch_id)
        if not files:
            return Response.empty()
        return Response.json([entry.info() for entry in files])

    def _batch_file(self, request: Request) -> Response:
        return Response.json(self._one_file(request).info())

    def _one_file(self, request: Request) -> BatchFile:
        batch = self._batch(request)
        idx = self._file_index(request)
        entry = self.store.batch_file(batch.batch_id, idx)
        if entry is None:
            raise not_found(f"Unable to find file {idx} in batch {batch.batch_id}")
        return entry

    def _drop_batch(self, request: Request) -> Response:
        # Uploaded objects stay in S3: documents may reference them.
        if not self.store.drop_batch(self._batch(request).batch_id):
            raise not_found(f"Unable to find batch with id {request.params['batch_id']}")
        return Response.empty()

    def _delete_batch_file(self, request: Request) -> Response:
        entry = self._one_file(request)
        if not self.store.delete_batch_file(entry.batch_id, entry.idx):
            raise not_found(f"Unable to find file {entry.idx} in batch {entry.batch_id}")
        return Response.empty()

    # -- /complete -----------------------------------------------------------------------
    def _complete(self, request: Request) -> Response:
        batch = self._batch(request)
        idx = self._file_index(request)
        if not batch.is_s3:
            # The default handler's completeUpload returns false, which Nuxeo maps to 409.
            raise NuxeoError(HTTPStatus.CONFLICT, "Upload handler does not support /complete")
        body = request.json_object()
        key, name = body.get("key"), body.get("name")
        if not isinstance(key, str) or not key or not isinstance(name, str) or not name:
            raise bad_request("'key' and 'name' are required")
        bucket = body.get("bucket")
        if bucket not in (None, "", self.s3.bucket):
            raise bad_request(f"Unknown bucket: {bucket}")
        # Like S3DirectBatchHandler, any key of the bucket is accepted: the temporary
        # credentials already confined the upload to the batch's prefix.
        head = self._head_object(key)
        etag = str(head.get("ETag", "")).strip('"')
        mime_type, encoding = split_content_type(head.get("ContentType"))
        if mime_type in (None, "binary/octet-stream"):
            mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        blob = StoredBlob(
            name, mime_type, encoding, self._md5_of(key, etag), int(head["ContentLength"]), key
        )
        if not self.store.put_batch_file(BatchFile(batch.batch_id, idx, etag, blob)):
            raise not_found(f"Unable to find batch with id {batch.batch_id}")
        return Response.json({"uploaded": "true", "batchId": batch.batch_id, "fileIdx": str(idx)})

    def _head_object(self, key: str) -> dict[str, Any]:
        try:
            return self._s3_admin.head_object(Bucket=self.s3.bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise not_found(f"Object not found in S3: {key}") from None
            raise

    def _md5_of(self, key: str, etag: str) -> str:
        """The ETag of a single PUT is the MD5; a multipart ETag is not, so hash the object."""
        if PLAIN_MD5.fullmatch(etag):
            return etag
        digest = hashlib.md5()
        body = self._s3_admin.get_object(Bucket=self.s3.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(STREAM_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()

    # -- batch operations ----------------------------------------------------------------
    def _execute(self, request: Request) -> Response:
        batch = self._batch(request)
        try:
            operation_id = request.params["operation"]
            operation = self._operations.get(operation_id)
            if operation is None:
                raise not_found(f"No operation with id {operation_id}")
            return operation(request, self._operation_input(request, batch))
        finally:
            # The real server registers the drop as a request clean-up: it happens even
            # when the operation fails.
            if not request.flag("X-Batch-No-Drop"):
                self.store.drop_batch(batch.batch_id)

    def _operation_input(self, request: Request, batch: BatchRecord) -> list[BatchFile]:
        if "file_idx" in request.params:
            return [self._one_file(request)]
        files = self.store.batch_files(batch.batch_id)
        if not files:
            raise bad_request(f"Batch {batch.batch_id} has no uploaded file")
        return files

    def _op_attach(self, request: Request, files: list[BatchFile]) -> Response:
        params = request.json_object().get("params") or {}
        target = params.get("document")
        if not isinstance(target, str) or not target:
            raise bad_request("Blob.Attach: the 'document' parameter is required")
        doc = self._doc_by_ref(target)
        self._require_file_schema(doc)
        xpath = params.get("xpath") or FILE_CONTENT
        blobs = [entry.blob for entry in files]
        if xpath == FILES_FILES:
            current = list(doc.properties.get(FILES_FILES) or [])
            value: Any = current + [{"file": blob.as_dict()} for blob in blobs]
        elif xpath == FILE_CONTENT:
            if len(blobs) != 1:
                raise bad_request(f"Cannot attach {len(blobs)} blobs to {xpath}")
            value = blobs[0].as_dict()
        else:
            raise bad_request(f"Unsupported xpath: {xpath}")
        self._write_doc(doc, {xpath: value})
        if request.flag("X-NXVoidOperation"):
            return Response.empty()
        # Blob.Attach outputs its input blob, which Nuxeo streams back.
        return self._blob_response(blobs[0])

    def _op_import(self, request: Request, files: list[BatchFile]) -> Response:
        body = request.json_object()
        context = body.get("context") or {}
        params = body.get("params") or {}
        parent_ref = context.get("currentDocument")
        if not isinstance(parent_ref, str) or not parent_ref:
            raise bad_request("FileManager.Import: context 'currentDocument' is required")
        parent = self._doc_by_ref(parent_ref)
        # `overwite` is the historical (misspelled) parameter name, `overwrite` the 11.2+ one.
        overwrite = truthy(params.get("overwrite")) or truthy(params.get("overwite"))
        docs = [self._import_blob(parent, entry.blob, overwrite) for entry in files]
        if request.flag("X-NXVoidOperation"):
            return Response.empty()
        if "file_idx" in request.params:
            return Response.json(self._doc_json(docs[0]))
        # A whole batch is a BlobList input, whose output is a document list.
        return Response.json(
            {"entity-type": "documents", "entries": [self._doc_json(doc) for doc in docs]}
        )

    def _import_blob(self, parent: DocRecord, blob: StoredBlob, overwrite: bool) -> DocRecord:
        self._require_folderish(parent)
        with self.store.transaction():
            if overwrite:
                for child in self.store.children(parent.uid):
                    if child.title == blob.name and child.type in FILE_TYPES:
                        return self._write_doc(child, {FILE_CONTENT: blob.as_dict()})
            properties = {"dc:title": blob.name, FILE_CONTENT: blob.as_dict()}
            return self._new_doc(parent, path_segment(blob.name), "File", properties)

    # -- documents -----------------------------------------------------------------------
    def _ensure_tree(self) -> None:
        with self.store.transaction():
            if self.store.doc_by_path("/") is not None:
                return
            root = DocRecord(str(uuid.uuid4()), None, "", "/", "Root", {}, 0, now_iso())
            self.store.save_doc(root)
            domain = self._new_doc(root, "default-domain", "Domain", {"dc:title": "Domain"})
            self._new_doc(domain, "workspaces", "WorkspaceRoot", {"dc:title": "Workspaces"})
            homes = self._new_doc(
                domain, "UserWorkspaces", "UserWorkspacesRoot", {"dc:title": "User Workspaces"}
            )
            self._new_doc(homes, self.user, "Workspace", {"dc:title": self.user})

    def _doc_at(self, path: str) -> DocRecord:
        doc = self.store.doc_by_path(path)
        if doc is None:
            raise not_found(f"{path}")
        return doc

    def _doc_by_ref(self, ref: str) -> DocRecord:
        """A path (starting with `/`) or a uid, as automation document parameters accept."""
        if ref.startswith("/"):
            return self._doc_at(_normalize_path(ref))
        doc = self.store.doc_by_uid(ref)
        if doc is None:
            raise not_found(ref)
        return doc

    def _routed_doc(self, request: Request) -> DocRecord:
        repo = request.params.get("repo")
        if repo not in (None, REPOSITORY):
            raise not_found(f"Repository not found: {repo}")
        if "uid" in request.params:
            return self._doc_by_ref(request.params["uid"])
        return self._doc_at(_normalize_path(request.params.get("doc_path") or "/"))

    def _get_doc(self, request: Request) -> Response:
        return Response.json(self._doc_json(self._routed_doc(request)))

    def _children(self, request: Request) -> Response:
        parent = self._routed_doc(request)
        entries = [self._doc_json(doc) for doc in self.store.children(parent.uid)]
        return Response.json(
            {
                "entity-type": "documents",
                "isPaginable": True,
                "resultsCount": len(entries),
                "pageSize": len(entries),
                "currentPageIndex": 0,
                "numberOfPages": 1,
                "entries": entries,
            }
        )

    def _create_doc(self, request: Request) -> Response:
        parent = self._routed_doc(request)
        self._require_folderish(parent)
        body = request.json_object()
        doc_type = body.get("type")
        if not isinstance(doc_type, str) or not doc_type:
            raise bad_request("The document 'type' is required")
        properties = self._incoming_properties(body, doc_type, current={})
        name = body.get("name") or path_segment(str(properties.get("dc:title") or doc_type))
        doc = self._new_doc(parent, str(name), doc_type, properties)
        return Response.json(self._doc_json(doc), HTTPStatus.CREATED)

    def _update_doc(self, request: Request) -> Response:
        doc = self._routed_doc(request)
        changes = self._incoming_properties(request.json_object(), doc.type, current=doc.properties)
        return Response.json(self._doc_json(self._write_doc(doc, changes)))

    def _delete_doc(self, request: Request) -> Response:
        doc = self._routed_doc(request)
        if doc.parent_uid is None:
            raise bad_request("The root document cannot be deleted")
        self.store.delete_doc(doc.uid)
        return Response.empty()

    def _require_folderish(self, doc: DocRecord) -> None:
        if not doc.folderish:
            raise bad_request(f"Cannot create a document in non-folderish {doc.path}")

    def _require_file_schema(self, doc: DocRecord) -> None:
        if doc.type not in FILE_TYPES:
            raise bad_request(f"Document {doc.path} of type {doc.type} cannot hold blobs")

    def _new_doc(
        self, parent: DocRecord, name: str, doc_type: str, properties: dict[str, Any]
    ) -> DocRecord:
        with self.store.transaction():
            # A name never contains "/": it is one segment of the path.
            name = self._free_name(parent, name.replace("/", "-"))
            stamp = now_iso()
            dublincore = {
                "dc:creator": self.user,
                "dc:created": stamp,
                "dc:contributors": [self.user],
            }
            doc = DocRecord(
                str(uuid.uuid4()),
                parent.uid,
                name,
                parent.child_path(name),
                doc_type,
                {**dublincore, **properties},
                0,
                stamp,
            )
            return self._write_doc(doc, {})

    def _free_name(self, parent: DocRecord, name: str) -> str:
        # On a collision Nuxeo appends "." and the current time in milliseconds.
        candidate, millis = name, int(time.time() * 1000)
        while self.store.doc_by_path(parent.child_path(candidate)) is not None:
            candidate = f"{name}.{millis}"
            millis += 1
        return candidate

    def _write_doc(self, doc: DocRecord, changes: dict[str, Any]) -> DocRecord:
        stamp = now_iso()
        properties = {
            **doc.properties,
            **changes,
            "dc:modified": stamp,
            "dc:lastContributor": self.user,
        }
        updated = DocRecord(
            doc.uid,
            doc.parent_uid,
            doc.name,
            doc.path,
            doc.type,
            properties,
            doc.change_token + 1,
            stamp,
        )
        self.store.save_doc(updated)
        return updated

    def _incoming_properties(
        self, body: dict[str, Any], doc_type: str, *, current: dict[str, Any]
    ) -> dict[str, Any]:
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise bad_request("'properties' must be an object")
        blob_properties = {FILE_CONTENT, FILES_FILES} & properties.keys()
        if blob_properties and doc_type not in FILE_TYPES:
            raise bad_request(f"Type {doc_type} has no property {', '.join(blob_properties)}")
        result = dict(properties)
        if FILE_CONTENT in properties:
            result[FILE_CONTENT] = self._incoming_blob(
                properties[FILE_CONTENT], _known_blobs(current)
            )
        if FILES_FILES in properties:
            result[FILES_FILES] = self._incoming_files(properties[FILES_FILES], current)
        return result

    def _incoming_files(self, value: Any, current: dict[str, Any]) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad_request(f"'{FILES_FILES}' must be a list")
        known = _known_blobs(current)
        items = []
        for item in value:
            blob_value = item.get("file") if isinstance(item, dict) else None
            items.append({"file": self._incoming_blob(blob_value, known)})
        return items

    def _incoming_blob(self, value: Any, known: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """Resolve a batch reference; keep a blob the client echoed back from a GET."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(f"Unsupported blob value: {value!r}")
        if "upload-batch" in value:
            return self._batch_blob(str(value["upload-batch"]), str(value.get("upload-fileId")))
        digest = value.get("digest")
        if digest in known:
            return known[digest]
        raise bad_request("A blob property needs an upload-batch reference")

    def _batch_blob(self, batch_id: str, file_id: str) -> dict[str, Any]:
        if self.store.batch(batch_id) is None:
            raise not_found(f"Unable to find batch with id {batch_id}")
        entry = self.store.batch_file(batch_id, int(file_id)) if file_id.isdigit() else None
        if entry is None:
            raise bad_request(f"File {file_id} of batch {batch_id} is not uploaded")
        return entry.blob.as_dict()

    # -- document JSON and blob download -------------------------------------------------
    def _doc_json(self, doc: DocRecord) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "dc:title": doc.title,
            "dc:description": None,
            "dc:creator": None,
            "dc:created": None,
            "dc:modified": None,
            "dc:lastContributor": None,
            "dc:contributors": [],
        }
        properties.update(doc.properties)
        if doc.type in FILE_TYPES:
            stored = doc.properties.get(FILE_CONTENT)
            properties[FILE_CONTENT] = self._blob_json(doc, FILE_CONTENT, stored)
            properties[FILES_FILES] = [
                {"file": self._blob_json(doc, f"{FILES_FILES}/{i}/file", item.get("file"))}
                for i, item in enumerate(doc.properties.get(FILES_FILES) or [])
            ]
        facets = ["Folderish"] if doc.folderish else ["Versionable", "Commentable", "Downloadable"]
        return {
            "entity-type": "document",
            "repository": REPOSITORY,
            "uid": doc.uid,
            "path": doc.path,
            "type": doc.type,
            "state": "project",
            "parentRef": doc.parent_uid,
            "isCheckedOut": True,
            "isVersion": False,
            "isProxy": False,
            "isTrashed": False,
            "changeToken": f"{doc.change_token}-0",
            "title": doc.title,
            "lastModified": doc.modified,
            "facets": facets,
            "contextParameters": {},
            "properties": properties,
        }

    def _blob_json(self, doc: DocRecord, xpath: str, stored: Any) -> dict[str, Any] | None:
        if not stored:
            return None
        blob = StoredBlob.from_dict(stored)
        return {
            "name": blob.name,
            "mime-type": blob.mime_type,
            "encoding": blob.encoding,
            "digestAlgorithm": "MD5",
            "digest": blob.digest,
            # Nuxeo sends the length as a string.
            "length": str(blob.length),
            "data": f"{self.base_url}/nxfile/{REPOSITORY}/{doc.uid}/{xpath}/{quote(blob.name)}",
        }

    def _download(self, request: Request) -> Response:
        doc = self._routed_doc(request)
        stored = _blob_at(doc.properties, request.params["xpath"])
        if stored is None:
            raise not_found(f"No blob at {request.params['xpath']} in {doc.path}")
        return self._blob_response(StoredBlob.from_dict(stored))

    def _blob_response(self, blob: StoredBlob) -> Response:
        try:
            answer = self._s3_admin.get_object(Bucket=self.s3.bucket, Key=blob.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise not_found(f"Blob content is gone: {blob.name}") from None
            raise
        content_type = blob.mime_type or "application/octet-stream"
        if blob.encoding:
            content_type += f";charset={blob.encoding}"
        disposition = f"attachment; filename*=UTF-8''{quote(blob.name)}"
        return Response(
            HTTPStatus.OK,
            answer["Body"].iter_chunks(STREAM_CHUNK),
            content_type,
            int(answer["ContentLength"]),
            {"Content-Disposition": disposition},
        )


def _normalize_path(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    return "/" + "/".join(parts)


def _known_blobs(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stored blobs of a document, by digest."""
    blobs = [properties.get(FILE_CONTENT)]
    blobs += [item.get("file") for item in properties.get(FILES_FILES) or []]
    return {blob["digest"]: blob for blob in blobs if blob}


def _blob_at(properties: dict[str, Any], xpath: str) -> dict[str, Any] | None:
    if xpath == FILE_CONTENT:
        return properties.get(FILE_CONTENT)
    match = re.fullmatch(rf"{FILES_FILES}/(\d+)/file", xpath)
    items = properties.get(FILES_FILES) or []
    if match and int(match.group(1)) < len(items):
        return items[int(match.group(1))].get("file")
    return None


# -- HTTP plumbing ---------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: NuxeoServer
    ) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

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
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
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
