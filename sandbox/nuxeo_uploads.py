"""The sandbox Nuxeo server's upload side: upload handlers, batches with per-batch temporary S3
credentials and their files; `/complete` is in `nuxeo_complete`, the batch operations
(`Blob.Attach`, `FileManager.Import`) in `nuxeo_batch_operations`."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .nuxeo_batch_operations import BatchOperations
from .nuxeo_batch_paths import BATCH, FILE, batch_file_of, batch_of
from .nuxeo_complete import Completion
from .nuxeo_http import API, EmptyError, NuxeoError, Request, Response, Route, bad_request, not_found, route
from .nuxeo_store import DEFAULT_HANDLER, BatchRecord
from .nuxeo_tree import DocumentTree

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer


class Uploads:
    """The upload endpoints."""

    def __init__(self, server: NuxeoServer, tree: DocumentTree) -> None:
        self._server = server
        self._completion = Completion(server)
        self._operations = BatchOperations(server, tree)

    def routes(self) -> list[Route]:
        return [
            route("GET", rf"{API}/upload/handlers", self._handlers),
            route("GET", rf"{API}/upload/handlers/(?P<handler>[^/]+)", self._handler),
            route("POST", rf"{API}/upload/new/(?P<handler>[^/]+)", self._new_batch),
            route("POST", rf"{API}/upload/?", self._new_legacy_batch),
            route("GET", rf"{API}{BATCH}/info", self._batch_info),
            route("POST", rf"{API}{BATCH}/refreshToken", self._refresh_token),
            route("POST", rf"{API}{BATCH}/execute/(?P<operation>[^/]+)", self._operations.execute),
            route("POST", rf"{API}{FILE}/execute/(?P<operation>[^/]+)", self._operations.execute),
            route("POST", rf"{API}{FILE}/complete", self._completion.complete),
            route("GET", rf"{API}{FILE}", self._batch_file),
            route("DELETE", rf"{API}{FILE}", self._delete_batch_file),
            route("GET", rf"{API}{BATCH}", self._batch_files),
            route("DELETE", rf"{API}{BATCH}", self._drop_batch),
        ]

    def _handler_names(self) -> list[str]:
        # The real client only reads the first entry, so the S3 handler first makes it usable.
        names = [self._server.handler_name, DEFAULT_HANDLER]
        return names[::-1] if self._server.default_handler_first else names

    def _handlers(self, request: Request) -> Response:
        return Response.json({"handlers": [{"name": name} for name in self._handler_names()]})

    def _handler(self, request: Request) -> Response:
        name = request.params["handler"]
        if name not in self._handler_names():
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return Response.json({"name": name})

    def _new_batch(self, request: Request) -> Response:
        handler = request.params["handler"]
        if handler not in self._handler_names():
            raise not_found(f"Batch Handler does not exist: {handler}")
        batch = self._create_batch(handler)
        return Response.json(self._batch_json(batch))

    def _new_legacy_batch(self, request: Request) -> Response:
        batch = self._create_batch(DEFAULT_HANDLER)
        return Response.json({"batchId": batch.batch_id}, HTTPStatus.CREATED)

    def _create_batch(self, provider: str) -> BatchRecord:
        batch_id = f"batchId-{uuid.uuid4()}"
        base_key = self._server.key_prefix if provider != DEFAULT_HANDLER else ""
        batch = BatchRecord(batch_id, provider, base_key)
        self._server.store.batches.add(batch, now=self._server.clock())
        return batch

    def _credentials(self, batch: BatchRecord) -> dict[str, Any]:
        # Like the real server's AssumeRole(roleSessionName=batchId): fresh on every call.
        creds = self._server.s3.mint_credentials(
            session_name=batch.batch_id, key_prefix=batch.base_key, policy=self._server.policy
        )
        return {
            "awsSecretKeyId": creds.access_key_id,
            "awsSecretAccessKey": creds.secret_access_key,
            "awsSessionToken": creds.session_token,
            "expiration": int((creds.expiration.timestamp() + self._server.expiration_overstated_s) * 1000),
        }

    def _batch_json(self, batch: BatchRecord) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if batch.is_s3:
            extra = {
                **self._credentials(batch),
                "bucket": self._server.s3.bucket,
                "baseKey": batch.base_key,
                "endpoint": self._server.advertised_s3_endpoint or self._server.s3.endpoint,
                "usePathStyleAccess": True,
                "region": self._server.s3.region,
                "useS3Accelerate": False,
            }
        return {
            "batchId": batch.batch_id,
            "provider": batch.provider,
            "extraInfo": extra,
            "fileEntries": [
                entry.info() for entry in self._server.store.batches.files(batch.batch_id)
            ],
        }

    def _batch_info(self, request: Request) -> Response:
        return Response.json(self._batch_json(batch_of(self._server, request)))

    def _refresh_token(self, request: Request) -> Response:
        if not self._server.refresh_token:
            raise NuxeoError(HTTPStatus.NOT_IMPLEMENTED, "refreshToken is not supported")
        batch = batch_of(self._server, request)
        if not batch.is_s3:
            raise bad_request(f"The {batch.provider} upload handler has no credentials to refresh")
        return Response.json({"batchId": batch.batch_id, **self._credentials(batch)})

    def _batch_files(self, request: Request) -> Response:
        batch = batch_of(self._server, request)
        files = self._server.store.batches.files(batch.batch_id)
        if not files:
            return Response.empty()
        return Response.json([entry.info() for entry in files])

    def _batch_file(self, request: Request) -> Response:
        return Response.json(batch_file_of(self._server, request).info())

    def _drop_batch(self, request: Request) -> Response:
        # Uploaded objects stay in S3: documents may reference them.
        if not self._server.store.batches.drop(batch_of(self._server, request).batch_id):
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return Response.empty()

    def _delete_batch_file(self, request: Request) -> Response:
        entry = batch_file_of(self._server, request)
        if not self._server.store.batches.delete_file(entry.batch_id, entry.idx):
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return Response.empty()
