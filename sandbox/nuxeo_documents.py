"""The sandbox Nuxeo server's document endpoints: the repository's description, reading a document
and its children, creating, updating (with optimistic locking and versions) and deleting one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .nuxeo_blobs import FILE_CONTENT, FILES_FILES, BatchBlobs, incoming_blob, incoming_files, known_blobs
from .nuxeo_document_json import change_token, document_json
from .nuxeo_http import API, NuxeoError, Request, Response, Route, bad_request, route
from .nuxeo_tree import FILE_TYPES, REPOSITORY, DocumentTree, path_segment
from .nuxeo_versions import after_update, is_trashed, versioning_option

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

PRODUCT_VERSION = "2023.0"

_DOC_PREFIX = rf"{API}(?:/repo/(?P<repo>[^/]+))?"


class Documents:
    """The document endpoints, over the server's `DocumentTree`."""

    def __init__(self, server: NuxeoServer, tree: DocumentTree) -> None:
        self._server = server
        self._tree = tree

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/json/cmis", self._cmis),
            route("GET", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*?)?/@children", self._children),
            route("GET", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)/@children", self._children),
            route("GET", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._get_doc),
            route("GET", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._get_doc),
            route("POST", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._create_doc),
            route("POST", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._create_doc),
            route("PUT", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._update_doc),
            route("PUT", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._update_doc),
            route("DELETE", rf"{_DOC_PREFIX}/path(?P<doc_path>/.*)?", self._delete_doc),
            route("DELETE", rf"{_DOC_PREFIX}/id/(?P<uid>[^/]+)", self._delete_doc),
        ]

    def _cmis(self, request: Request) -> Response:
        root = self._tree.doc_at("/")
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

    def _get_doc(self, request: Request) -> Response:
        return Response.json(document_json(self._tree.routed_doc(request), self._server.base_url))

    def _children(self, request: Request) -> Response:
        parent = self._tree.routed_doc(request)
        children = [doc for doc in self._server.store.documents.children(parent.uid) if not is_trashed(doc)]
        entries = [document_json(doc, self._server.base_url) for doc in children]
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
        parent = self._tree.routed_doc(request)
        self._tree.require_folderish(parent)
        body = request.json_object()
        doc_type = body.get("type")
        if not isinstance(doc_type, str) or not doc_type:
            raise bad_request("The document 'type' is required")
        with self._batch_blobs(request) as batches:
            properties = self._incoming_properties(body, doc_type, {}, batches)
            name = body.get("name") or path_segment(str(properties.get("dc:title") or doc_type))
            doc = self._tree.new_doc(parent, str(name), doc_type, properties)
        return Response.json(document_json(doc, self._server.base_url), HTTPStatus.CREATED)

    def _update_doc(self, request: Request) -> Response:
        doc = self._tree.routed_doc(request)
        option = versioning_option(request)
        body = request.json_object()
        token = body.get("changeToken")
        if token is not None and token != change_token(doc):
            # Optimistic locking: the document changed since the client read it.
            raise NuxeoError(HTTPStatus.CONFLICT, f"{doc.uid}, Invalid change token")
        with self._batch_blobs(request) as batches:
            changes = self._incoming_properties(body, doc.type, doc.properties, batches)
            if doc.type in FILE_TYPES:  # saved, then checked in as a version if asked
                changes.update(after_update(doc.properties, option))
            updated = self._tree.write_doc(doc, changes)
        return Response.json(document_json(updated, self._server.base_url))

    @contextlib.contextmanager
    def _batch_blobs(self, request: Request) -> Iterator[BatchBlobs]:
        """The request's batch references; the batches used are dropped when it ends, even on
        failure (a request clean-up in the real server), unless `X-Batch-No-Drop: true`."""
        batches = BatchBlobs(self._server)
        try:
            yield batches
        finally:
            if not request.flag("X-Batch-No-Drop"):
                for batch_id in batches.used:
                    self._server.store.batches.drop(batch_id)

    def _delete_doc(self, request: Request) -> Response:
        doc = self._tree.routed_doc(request)
        if doc.parent_uid is None:
            raise bad_request("The root document cannot be deleted")
        self._server.store.documents.delete(doc.uid)
        return Response.empty()

    def _incoming_properties(
        self, body: dict[str, Any], doc_type: str, current: dict[str, Any], batches: BatchBlobs
    ) -> dict[str, Any]:
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise bad_request("'properties' must be an object")
        blob_properties = {FILE_CONTENT, FILES_FILES} & properties.keys()
        if blob_properties and doc_type not in FILE_TYPES:
            raise bad_request(f"Type {doc_type} has no property {', '.join(blob_properties)}")
        result = dict(properties)
        known = known_blobs(current)
        if FILE_CONTENT in properties:
            blob = incoming_blob(properties[FILE_CONTENT], known, batches)
            if blob is None and properties[FILE_CONTENT] is not None:
                # A reference to a missing batch or file: the reader skips the null blob, so
                # the property keeps its value (none on a new document).
                del result[FILE_CONTENT]
            else:
                result[FILE_CONTENT] = blob
        if FILES_FILES in properties:
            result[FILES_FILES] = incoming_files(properties[FILES_FILES], known, batches)
        return result
