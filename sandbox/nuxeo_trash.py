"""`Document.Trash` through the REST API's `@op` adapter: it marks the document trashed
(`isTrashed`, and `ecm:isTrashed = 1` in NXQL) and renames it so its name is free again, as the
trash service does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .nuxeo_document_json import document_json
from .nuxeo_http import Request, Response, Route, bad_request, route
from .nuxeo_tree import DocumentTree
from .nuxeo_versions import TRASHED, is_trashed

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer


class Trash:
    """The trash endpoints, for a document named by uid or by path."""

    def __init__(self, server: NuxeoServer, tree: DocumentTree) -> None:
        self._server = server
        self._tree = tree

    def routes(self) -> list[Route]:
        prefix = r"/api/v1(?:/repo/[^/]+)?"
        return [
            route("POST", rf"{prefix}/id/(?P<uid>[^/]+)/@op/Document\.Trash", self._trash),
            route("POST", rf"{prefix}/path(?P<doc_path>/.*)/@op/Document\.Trash", self._trash),
        ]

    def _trash(self, request: Request) -> Response:
        ref = request.params.get("uid") or request.params.get("doc_path") or "/"
        doc = self._tree.doc_by_ref(ref)
        if doc.parent_uid is None:
            raise bad_request("The root document cannot be trashed")
        with self._server.store.transaction():
            if not is_trashed(doc):
                self._server.store.documents.rename(doc, f"{doc.name}._{doc.uid}_.trashed")
                moved = self._server.store.documents.by_uid(doc.uid)
                assert moved is not None
                doc = self._tree.write_doc(moved, {TRASHED: True})
        return Response.json(document_json(doc, self._server.base_url))
