"""A local Nuxeo-compatible HTTP server for the sandbox.

It answers the subset of the Nuxeo REST API that the real `nuxeo` Python client (7.1.0) and nxup
use for S3 direct upload — batches with per-batch temporary S3 credentials, `/complete`,
`refreshToken`, batch operations (`Blob.Attach`, `FileManager.Import`) and documents — with the
paths, status codes and JSON shapes a real server produces (see docs/nuxeo-s3-contract.md and
docs/nuxeo-client-calls.md). State lives in SQLite so that a persistent sandbox survives restarts.

Only the standard library serves HTTP; S3 work goes through an `S3Backend` (SeaweedS3).

By default it behaves like a stock server (see `AccessPolicy` for the credentials' rights);
the other settings below are switches, most of them changeable while it runs.

This module assembles the server from `nuxeo_http` (HTTP serving and routing), `nuxeo_store/`
(SQLite state, a module per table), `nuxeo_auth` (users and tokens), `nuxeo_idempotency`
(Idempotency-Key), `nuxeo_uploads` (handlers and batches; `/complete` in `nuxeo_complete`, the
batch operations in `nuxeo_batch_operations`), `nuxeo_tree` (the document tree),
`nuxeo_documents` (the document endpoints, their JSON in `nuxeo_document_json`),
`nuxeo_downloads` (blobs from S3), `nuxeo_query` (NXQL search), `nuxeo_versions` (versions) and
`nuxeo_trash` (the trash).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, Self

from .nuxeo_auth import Authentication
from .nuxeo_documents import Documents
from .nuxeo_downloads import Downloads
from .nuxeo_http import CONTEXT, HttpServer, Request, Response, Router, route
from .nuxeo_idempotency import IdempotentRequests
from .nuxeo_query import Queries
from .nuxeo_store import BatchRecord, Store, now_iso
from .nuxeo_trash import Trash
from .nuxeo_tree import DocumentTree
from .nuxeo_uploads import Uploads
from .s3 import AccessPolicy, ObjectHead, TemporaryCredentials

__all__ = ["BATCH_TTL_S", "NuxeoServer", "S3Backend"]

DB_NAME = "nuxeo.db"
LOG_NAME = "nuxeo.log"
# The S3 transient store's `firstLevelTTL` on recent servers (72 h; 2 h on 10.10).
BATCH_TTL_S = 72 * 3600.0


class S3Backend(Protocol):
    """What the server needs from the S3 side (implemented by `SeaweedS3`)."""

    bucket: str
    region: str

    @property
    def endpoint(self) -> str: ...

    def admin_client(self) -> Any: ...

    def head_object(self, key: str) -> ObjectHead | None: ...

    def mint_credentials(
        self, *, session_name: str, key_prefix: str, policy: AccessPolicy
    ) -> TemporaryCredentials: ...


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
        policy: AccessPolicy | str = AccessPolicy.STOCK,
        handler_name: str = "s3",
        batch_ttl_s: float = BATCH_TTL_S,
        refresh_token: bool = True,
        complete_delay_s_per_gib: float = 0.0,
    ) -> None:
        self.s3 = s3
        self.data_dir = Path(data_dir)
        self.user = user
        self._port = port
        # The one `baseKey` of every batch; the server appends the "/" when it is missing.
        self.key_prefix = key_prefix.rstrip("/") + "/" if key_prefix else ""
        self.default_handler_first = default_handler_first
        self.policy = AccessPolicy(policy)
        self.handler_name = handler_name
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._s3_admin: Any = None
        self._log_lock = threading.Lock()
        # The settings below may be changed while the server runs.
        # The S3 endpoint handed to clients, like a real server's `endpoint` setting; tests
        # point it at a proxy to cut connections. None means the S3 server's own.
        self.advertised_s3_endpoint: str | None = None
        # How long a batch lives after its creation or its last /complete.
        self.batch_ttl_s = batch_ttl_s
        # False plays a server older than 11.1, which has no refreshToken endpoint.
        self.refresh_token = refresh_token
        # The time /complete takes per GiB, as a real server copies the object inside it.
        self.complete_delay_s_per_gib = complete_delay_s_per_gib
        # When set, /complete of a multipart upload waits until it is set (at most a minute):
        # a copy on the server that lasts exactly as long as a test needs.
        self.multipart_complete_gate: threading.Event | None = None
        # Seconds added to the `expiration` handed out with credentials: S3 then rejects
        # credentials a client still believes valid (clock skew, a revoked role).
        self.expiration_overstated_s = 0.0
        # The clock batch lifetimes are counted on (epoch seconds).
        self.clock: Callable[[], float] = time.time
        # Told of every request served: its method, path, and when its handling began and
        # ended (monotonic seconds); the benchmark times the server's calls with it.
        self.request_observers: list[Callable[[str, str, float, float], None]] = []
        self._tree = DocumentTree(self)
        authentication = Authentication(self, password)
        self._router = Router(
            [
                route("GET", r"/runningstatus", self._running_status, public=True),
                *authentication.routes(),
                *Uploads(self, self._tree).routes(),
                *Queries(self).routes(),
                *Trash(self, self._tree).routes(),  # before the document routes it refines
                *Documents(self, self._tree).routes(),
                *Downloads(self, self._tree).routes(),
            ],
            authenticate=authentication.authenticate,
            log=self.log,
            around=IdempotentRequests(lambda: self.store, lambda: self.clock()),
        )

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

    @property
    def s3_admin(self) -> Any:
        """The server's own S3 client, with the operator's keys."""
        if self._s3_admin is None:
            raise RuntimeError("the Nuxeo server is not running")
        return self._s3_admin

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._store = Store(self.data_dir / DB_NAME)
        self._s3_admin = self.s3.admin_client()
        self._tree.ensure()
        self._httpd = HttpServer(("127.0.0.1", self._port), self)
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

    # -- batches -------------------------------------------------------------------------
    def batch(self, batch_id: str) -> BatchRecord | None:
        """The batch, if it exists and has not outlived `batch_ttl_s`."""
        return self.store.batches.get(batch_id, touched_after=self.clock() - self.batch_ttl_s)

    def expire_batch(self, batch_id: str) -> bool:
        """End a batch's life now, as its TTL would: every batch endpoint then answers 404."""
        return self.store.batches.drop(batch_id)

    # -- dispatch ------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        if not self.request_observers:
            return self._router.dispatch(request)
        begin = time.monotonic()
        try:
            return self._router.dispatch(request)
        finally:
            end = time.monotonic()
            for observer in list(self.request_observers):
                observer(request.method, request.path, begin, end)

    def _running_status(self, request: Request) -> Response:
        return Response.text("Ok")
