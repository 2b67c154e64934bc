"""Batch operations: `POST /upload/{batchId}[/{fileIdx}]/execute/{operation}` runs an automation
operation on the batch's files (`Blob.Attach`, `FileManager.Import`), then drops the batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .nuxeo_batch_paths import batch_file_of, batch_of
from .nuxeo_blobs import FILE_CONTENT, FILES_FILES
from .nuxeo_document_json import document_json
from .nuxeo_downloads import blob_response
from .nuxeo_http import Request, Response, bad_request, not_found, truthy
from .nuxeo_store import BatchFile, BatchRecord, DocRecord, StoredBlob
from .nuxeo_tree import FILE_TYPES, DocumentTree, path_segment

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

Operation = Callable[[Request, list[BatchFile]], Response]


class BatchOperations:
    """The `execute` endpoint; documents are read and written through the `DocumentTree`."""

    def __init__(self, server: NuxeoServer, tree: DocumentTree) -> None:
        self._server = server
        self._tree = tree
        self._operations: dict[str, Operation] = {
            "Blob.Attach": self._op_attach,
            "FileManager.Import": self._op_import,
        }

    def execute(self, request: Request) -> Response:
        batch = batch_of(self._server, request)
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
                self._server.store.batches.drop(batch.batch_id)

    def _operation_input(self, request: Request, batch: BatchRecord) -> list[BatchFile]:
        if "file_idx" in request.params:
            return [batch_file_of(self._server, request)]
        files = self._server.store.batches.files(batch.batch_id)
        if not files:
            raise bad_request(f"Batch {batch.batch_id} has no uploaded file")
        return files

    def _op_attach(self, request: Request, files: list[BatchFile]) -> Response:
        params = request.json_object().get("params") or {}
        target = params.get("document")
        if not isinstance(target, str) or not target:
            raise bad_request("Blob.Attach: the 'document' parameter is required")
        doc = self._tree.doc_by_ref(target)
        self._tree.require_file_schema(doc)
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
        self._tree.write_doc(doc, {xpath: value})
        if request.flag("X-NXVoidOperation"):
            return Response.empty()
        # Blob.Attach outputs its input blob, which Nuxeo streams back.
        return blob_response(self._server, blobs[0])

    def _op_import(self, request: Request, files: list[BatchFile]) -> Response:
        body = request.json_object()
        context = body.get("context") or {}
        params = body.get("params") or {}
        parent_ref = context.get("currentDocument")
        if not isinstance(parent_ref, str) or not parent_ref:
            raise bad_request("FileManager.Import: context 'currentDocument' is required")
        parent = self._tree.doc_by_ref(parent_ref)
        # `overwite` is the historical (misspelled) parameter name, `overwrite` the 11.2+ one.
        overwrite = truthy(params.get("overwrite")) or truthy(params.get("overwite"))
        docs = [self._import_blob(parent, entry.blob, overwrite) for entry in files]
        if request.flag("X-NXVoidOperation"):
            return Response.empty()
        if "file_idx" in request.params:
            return Response.json(document_json(docs[0], self._server.base_url))
        # A whole batch is a BlobList input, whose output is a document list.
        entries = [document_json(doc, self._server.base_url) for doc in docs]
        return Response.json({"entity-type": "documents", "entries": entries})

    def _import_blob(self, parent: DocRecord, blob: StoredBlob, overwrite: bool) -> DocRecord:
        self._tree.require_folderish(parent)
        with self._server.store.transaction():
            if overwrite:
                for child in self._server.store.documents.children(parent.uid):
                    if child.title == blob.name and child.type in FILE_TYPES:
                        return self._tree.write_doc(child, {FILE_CONTENT: blob.as_dict()})
            properties = {"dc:title": blob.name, FILE_CONTENT: blob.as_dict()}
            return self._tree.new_doc(parent, path_segment(blob.name), "File", properties)
