"""The sandbox Nuxeo server's upload side: upload handlers, batches with per-batch temporary S3
credentials, `/complete`, and the batch operations (`Blob.Attach`, `FileManager.Import`)."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
import uuid
from collections.abc import Callable
from email.message import Message
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .nuxeo_documents import (
    FILE_CONTENT,
    FILE_TYPES,
    FILES_FILES,
    STREAM_CHUNK,
    Documents,
    path_segment,
)
from .nuxeo_http import (
    API,
    EmptyError,
    NuxeoError,
    Request,
    Response,
    Route,
    bad_request,
    not_found,
    route,
    truthy,
)
from .nuxeo_store import DEFAULT_HANDLER, BatchFile, BatchRecord, DocRecord, StoredBlob

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")
GIB = 1024**3

_BATCH = r"/upload/(?P<batch_id>[^/]+)"
_FILE = rf"{_BATCH}/(?P<file_idx>[^/]+)"

Operation = Callable[[Request, list[BatchFile]], Response]


def split_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """("text/plain", "UTF-8") from "text/plain; charset=UTF-8"."""
    if not content_type:
        return None, None
    message = Message()
    message["Content-Type"] = content_type
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


class Uploads:
    """The upload endpoints; documents are read and written through `Documents`."""

    def __init__(self, server: NuxeoServer, documents: Documents) -> None:
        self._server = server
        self._documents = documents
        self._operations: dict[str, Operation] = {
            "Blob.Attach": self._op_attach,
            "FileManager.Import": self._op_import,
        }

    def routes(self) -> list[Route]:
        return [
            route("GET", rf"{API}/upload/handlers", self._handlers),
            route("GET", rf"{API}/upload/handlers/(?P<handler>[^/]+)", self._handler),
            route("POST", rf"{API}/upload/new/(?P<handler>[^/]+)", self._new_batch),
            route("POST", rf"{API}/upload/?", self._new_legacy_batch),
            route("GET", rf"{API}{_BATCH}/info", self._batch_info),
            route("POST", rf"{API}{_BATCH}/refreshToken", self._refresh_token),
            route("POST", rf"{API}{_BATCH}/execute/(?P<operation>[^/]+)", self._execute),
            route("POST", rf"{API}{_FILE}/execute/(?P<operation>[^/]+)", self._execute),
            route("POST", rf"{API}{_FILE}/complete", self._complete),
            route("GET", rf"{API}{_FILE}", self._batch_file),
            route("DELETE", rf"{API}{_FILE}", self._delete_batch_file),
            route("GET", rf"{API}{_BATCH}", self._batch_files),
            route("DELETE", rf"{API}{_BATCH}", self._drop_batch),
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
        self._server.store.add_batch(batch, now=self._server.clock())
        return batch

    def _batch(self, request: Request) -> BatchRecord:
        # Unknown, dropped and expired batches look the same: an empty 404.
        batch = self._server.batch(request.params["batch_id"])
        if batch is None:
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return batch

    def _file_index(self, request: Request) -> int:
        raw = request.params["file_idx"]
        if not raw.isdigit():
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return int(raw)

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
                entry.info() for entry in self._server.store.batch_files(batch.batch_id)
            ],
        }

    def _batch_info(self, request: Request) -> Response:
        return Response.json(self._batch_json(self._batch(request)))

    def _refresh_token(self, request: Request) -> Response:
        if not self._server.refresh_token:
            raise NuxeoError(HTTPStatus.NOT_IMPLEMENTED, "refreshToken is not supported")
        batch = self._batch(request)
        if not batch.is_s3:
            raise bad_request(f"The {batch.provider} upload handler has no credentials to refresh")
        return Response.json({"batchId": batch.batch_id, **self._credentials(batch)})

    def _batch_files(self, request: Request) -> Response:
        batch = self._batch(request)
        files = self._server.store.batch_files(batch.batch_id)
        if not files:
            return Response.empty()
        return Response.json([entry.info() for entry in files])

    def _batch_file(self, request: Request) -> Response:
        return Response.json(self._one_file(request).info())

    def _one_file(self, request: Request) -> BatchFile:
        batch = self._batch(request)
        idx = self._file_index(request)
        entry = self._server.store.batch_file(batch.batch_id, idx)
        if entry is None:
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return entry

    def _drop_batch(self, request: Request) -> Response:
        # Uploaded objects stay in S3: documents may reference them.
        if not self._server.store.drop_batch(self._batch(request).batch_id):
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return Response.empty()

    def _delete_batch_file(self, request: Request) -> Response:
        entry = self._one_file(request)
        if not self._server.store.delete_batch_file(entry.batch_id, entry.idx):
            raise EmptyError(HTTPStatus.NOT_FOUND)
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
        if bucket not in (None, "", self._server.s3.bucket):
            raise bad_request(f"Unknown bucket: {bucket}")
        # Like S3DirectBatchHandler, any key of the bucket is accepted, with the server's own
        # credentials.
        head = self._server.s3.head_object(key)
        if head is None:
            # The S3 client's exception is not mapped to a status: Nuxeo answers 500.
            raise NuxeoError(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        length = head.length
        etag = head.etag.strip('"')
        mime_type, encoding = split_content_type(head.content_type)
        if mime_type in (None, "binary/octet-stream"):
            mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        blob = StoredBlob(name, mime_type, encoding, self._md5_of(key, etag), length, key)
        # The real server copies the object to its blob store inside this request.
        time.sleep(length / GIB * self._server.complete_delay_s_per_gib)
        entry = BatchFile(batch.batch_id, idx, etag, blob)
        if not self._server.store.put_batch_file(entry, now=self._server.clock()):
            raise EmptyError(HTTPStatus.NOT_FOUND)
        return Response.json({"uploaded": "true", "batchId": batch.batch_id, "fileIdx": str(idx)})

    def _md5_of(self, key: str, etag: str) -> str:
        """The ETag of a single PUT is the MD5; a multipart ETag is not, so hash the object."""
        if PLAIN_MD5.fullmatch(etag):
            return etag
        digest = hashlib.md5()
        body = self._server.s3_admin.get_object(Bucket=self._server.s3.bucket, Key=key)["Body"]
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
                self._server.store.drop_batch(batch.batch_id)

    def _operation_input(self, request: Request, batch: BatchRecord) -> list[BatchFile]:
        if "file_idx" in request.params:
            return [self._one_file(request)]
        files = self._server.store.batch_files(batch.batch_id)
        if not files:
            raise bad_request(f"Batch {batch.batch_id} has no uploaded file")
        return files

    def _op_attach(self, request: Request, files: list[BatchFile]) -> Response:
        params = request.json_object().get("params") or {}
        target = params.get("document")
        if not isinstance(target, str) or not target:
            raise bad_request("Blob.Attach: the 'document' parameter is required")
        doc = self._documents.doc_by_ref(target)
        self._documents.require_file_schema(doc)
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
        self._documents.write_doc(doc, {xpath: value})
        if request.flag("X-NXVoidOperation"):
            return Response.empty()
        # Blob.Attach outputs its input blob, which Nuxeo streams back.
        return self._documents.blob_response(blobs[0])

    def _op_import(self, request: Request, files: list[BatchFile]) -> Response:
        body = request.json_object()
        context = body.get("context") or {}
        params = body.get("params") or {}
        parent_ref = context.get("currentDocument")
        if not isinstance(parent_ref, str) or not parent_ref:
            raise bad_request("FileManager.Import: context 'currentDocument' is required")
        parent = self._documents.doc_by_ref(parent_ref)
        # `overwite` is the historical (misspelled) parameter name, `overwrite` the 11.2+ one.
        overwrite = truthy(params.get("overwrite")) or truthy(params.get("overwite"))
        docs = [self._import_blob(parent, entry.blob, overwrite) for entry in files]
        if request.flag("X-NXVoidOperation"):
            return Response.empty()
        if "file_idx" in request.params:
            return Response.json(self._documents.doc_json(docs[0]))
        # A whole batch is a BlobList input, whose output is a document list.
        return Response.json(
            {"entity-type": "documents", "entries": [self._documents.doc_json(doc) for doc in docs]}
        )

    def _import_blob(self, parent: DocRecord, blob: StoredBlob, overwrite: bool) -> DocRecord:
        self._documents.require_folderish(parent)
        with self._server.store.transaction():
            if overwrite:
                for child in self._server.store.children(parent.uid):
                    if child.title == blob.name and child.type in FILE_TYPES:
                        return self._documents.write_doc(child, {FILE_CONTENT: blob.as_dict()})
            properties = {"dc:title": blob.name, FILE_CONTENT: blob.as_dict()}
            return self._documents.new_doc(parent, path_segment(blob.name), "File", properties)
