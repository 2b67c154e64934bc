"""The sandbox Nuxeo server's document tree: the REST document endpoints, the JSON a real server
answers with, and blob downloads from S3."""

from __future__ import annotations

import contextlib
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from .nuxeo_blobs import FILE_CONTENT, FILES_FILES, BatchBlobs, blob_at, incoming_blob, incoming_files, known_blobs
from .nuxeo_http import API, NuxeoError, Request, Response, Route, bad_request, not_found, route
from .nuxeo_store import DocRecord, StoredBlob, now_iso
from .nuxeo_versions import (
    after_update,
    initial_version,
    is_trashed,
    shown_properties,
    version_label,
    versioning_option,
)

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

REPOSITORY = "default"
PRODUCT_VERSION = "2023.0"
STREAM_CHUNK = 1024 * 1024
# Nuxeo's PathSegmentService truncates generated names to this length.
PATH_SEGMENT_MAX = 24
# Types carrying the `file` and `files` schemas.
FILE_TYPES = frozenset({"File", "Picture", "Video", "Audio", "Note"})
# Names made only of these characters are replaced by a random id, as Nuxeo does.
MEANINGLESS_NAME = re.compile(r"^[- .,;?!:/\\'\"]*$")

_DOC_PREFIX = rf"{API}(?:/repo/(?P<repo>[^/]+))?"


def path_segment(text: str) -> str:
    """A document name generated from a title, like Nuxeo's default PathSegmentService."""
    segment = text.strip()[:PATH_SEGMENT_MAX].replace("/", "-").replace("\\", "-")
    if MEANINGLESS_NAME.match(segment):
        return str(int(time.time() * 1000)) + secrets.token_hex(2)
    return segment


class Documents:
    """The document endpoints, and the document operations batch operations build on."""

    def __init__(self, server: NuxeoServer) -> None:
        self._server = server

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
            route(
                "GET",
                r"/nxfile/(?P<repo>[^/]+)/(?P<uid>[^/]+)/(?P<xpath>.+)/(?P<filename>[^/]+)",
                self._download,
            ),
        ]

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

    def ensure_tree(self) -> None:
        with self._server.store.transaction():
            if self._server.store.doc_by_path("/") is not None:
                return
            root = DocRecord(str(uuid.uuid4()), None, "", "/", "Root", {}, 0, now_iso())
            self._server.store.save_doc(root)
            domain = self.new_doc(root, "default-domain", "Domain", {"dc:title": "Domain"})
            self.new_doc(domain, "workspaces", "WorkspaceRoot", {"dc:title": "Workspaces"})
            homes = self.new_doc(
                domain, "UserWorkspaces", "UserWorkspacesRoot", {"dc:title": "User Workspaces"}
            )
            self.new_doc(homes, self._server.user, "Workspace", {"dc:title": self._server.user})

    def _doc_at(self, path: str) -> DocRecord:
        doc = self._server.store.doc_by_path(path)
        if doc is None:
            raise not_found(f"{path}")
        return doc

    def doc_by_ref(self, ref: str) -> DocRecord:
        """A path (starting with `/`) or a uid, as automation document parameters accept."""
        if ref.startswith("/"):
            return self._doc_at(_normalize_path(ref))
        doc = self._server.store.doc_by_uid(ref)
        if doc is None:
            raise not_found(ref)
        return doc

    def _routed_doc(self, request: Request) -> DocRecord:
        repo = request.params.get("repo")
        if repo not in (None, REPOSITORY):
            raise not_found(f"Repository not found: {repo}")
        if "uid" in request.params:
            return self.doc_by_ref(request.params["uid"])
        return self._doc_at(_normalize_path(request.params.get("doc_path") or "/"))

    def _get_doc(self, request: Request) -> Response:
        return Response.json(self.doc_json(self._routed_doc(request)))

    def _children(self, request: Request) -> Response:
        parent = self._routed_doc(request)
        children = [doc for doc in self._server.store.children(parent.uid) if not is_trashed(doc)]
        entries = [self.doc_json(doc) for doc in children]
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
        self.require_folderish(parent)
        body = request.json_object()
        doc_type = body.get("type")
        if not isinstance(doc_type, str) or not doc_type:
            raise bad_request("The document 'type' is required")
        with self._batch_blobs(request) as batches:
            properties = self._incoming_properties(body, doc_type, {}, batches)
            name = body.get("name") or path_segment(str(properties.get("dc:title") or doc_type))
            doc = self.new_doc(parent, str(name), doc_type, properties)
        return Response.json(self.doc_json(doc), HTTPStatus.CREATED)

    def _update_doc(self, request: Request) -> Response:
        doc = self._routed_doc(request)
        option = versioning_option(request)
        body = request.json_object()
        token = body.get("changeToken")
        if token is not None and token != self.change_token(doc):
            # Optimistic locking: the document changed since the client read it.
            raise NuxeoError(HTTPStatus.CONFLICT, f"{doc.uid}, Invalid change token")
        with self._batch_blobs(request) as batches:
            changes = self._incoming_properties(body, doc.type, doc.properties, batches)
            if doc.type in FILE_TYPES:  # saved, then checked in as a version if asked
                changes.update(after_update(doc.properties, option))
            updated = self.write_doc(doc, changes)
        return Response.json(self.doc_json(updated))

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
                    self._server.store.drop_batch(batch_id)

    def _delete_doc(self, request: Request) -> Response:
        doc = self._routed_doc(request)
        if doc.parent_uid is None:
            raise bad_request("The root document cannot be deleted")
        self._server.store.delete_doc(doc.uid)
        return Response.empty()

    def require_folderish(self, doc: DocRecord) -> None:
        if not doc.folderish:
            raise bad_request(f"Cannot create a document in non-folderish {doc.path}")

    def require_file_schema(self, doc: DocRecord) -> None:
        if doc.type not in FILE_TYPES:
            raise bad_request(f"Document {doc.path} of type {doc.type} cannot hold blobs")

    def new_doc(
        self, parent: DocRecord, name: str, doc_type: str, properties: dict[str, Any]
    ) -> DocRecord:
        with self._server.store.transaction():
            # A name never contains "/": it is one segment of the path.
            name = self._free_name(parent, name.replace("/", "-"))
            stamp = now_iso()
            dublincore = {
                "dc:creator": self._server.user,
                "dc:created": stamp,
                "dc:contributors": [self._server.user],
            }
            doc = DocRecord(
                str(uuid.uuid4()),
                parent.uid,
                name,
                parent.child_path(name),
                doc_type,
                {**dublincore, **(initial_version() if doc_type in FILE_TYPES else {}), **properties},
                0,
                stamp,
            )
            return self.write_doc(doc, {})

    def _free_name(self, parent: DocRecord, name: str) -> str:
        # On a collision Nuxeo appends "." and the current time in milliseconds.
        candidate, millis = name, int(time.time() * 1000)
        while self._server.store.doc_by_path(parent.child_path(candidate)) is not None:
            candidate = f"{name}.{millis}"
            millis += 1
        return candidate

    def write_doc(self, doc: DocRecord, changes: dict[str, Any]) -> DocRecord:
        stamp = now_iso()
        properties = {
            **doc.properties,
            **changes,
            "dc:modified": stamp,
            "dc:lastContributor": self._server.user,
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
        self._server.store.save_doc(updated)
        return updated

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

    # -- document JSON and blob download -------------------------------------------------
    def doc_json(self, doc: DocRecord) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "dc:title": doc.title,
            "dc:description": None,
            "dc:creator": None,
            "dc:created": None,
            "dc:modified": None,
            "dc:lastContributor": None,
            "dc:contributors": [],
        }
        properties.update(shown_properties(doc.properties))
        if doc.type in FILE_TYPES:
            stored = doc.properties.get(FILE_CONTENT)
            properties[FILE_CONTENT] = self._blob_json(doc, FILE_CONTENT, stored)
            properties[FILES_FILES] = [
                {"file": self._blob_json(doc, f"{FILES_FILES}/{i}/file", item.get("file"))}
                for i, item in enumerate(doc.properties.get(FILES_FILES) or [])
            ]
        facets = ["Folderish"] if doc.folderish else ["Versionable", "Commentable", "Downloadable"]
        versioned = {"versionLabel": version_label(doc.properties)} if doc.type in FILE_TYPES else {}
        return {
            "entity-type": "document",
            "repository": REPOSITORY,
            "uid": doc.uid,
            "path": doc.path,
            "type": doc.type,
            "state": "project",
            "parentRef": doc.parent_uid,
            "isCheckedOut": not (versioned and doc.properties.get("ecm:isCheckedIn")),
            "isVersion": False,
            "isProxy": False,
            "isTrashed": is_trashed(doc),
            "changeToken": self.change_token(doc),
            "title": doc.title,
            "lastModified": doc.modified,
            "facets": facets,
            **versioned,
            "contextParameters": {},
            "properties": properties,
        }

    @staticmethod
    def change_token(doc: DocRecord) -> str:
        return f"{doc.change_token}-0"

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
            "data": f"{self._server.base_url}/nxfile/{REPOSITORY}/{doc.uid}/{xpath}/{quote(blob.name)}",
        }

    def _download(self, request: Request) -> Response:
        doc = self._routed_doc(request)
        stored = blob_at(doc.properties, request.params["xpath"])
        if stored is None:
            raise not_found(f"No blob at {request.params['xpath']} in {doc.path}")
        return self.blob_response(StoredBlob.from_dict(stored))

    def blob_response(self, blob: StoredBlob) -> Response:
        try:
            answer = self._server.s3_admin.get_object(Bucket=self._server.s3.bucket, Key=blob.key)
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


# -- HTTP plumbing ---------------------------------------------------------------------------
