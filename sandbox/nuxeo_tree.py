"""The sandbox Nuxeo server's document tree: the documents of a fresh repository, finding a
document by path or uid, and creating and updating documents, which the document endpoints and
the batch operations build on."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

from .nuxeo_http import Request, bad_request, not_found
from .nuxeo_store import DocRecord, now_iso
from .nuxeo_versions import initial_version

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

REPOSITORY = "default"
# Nuxeo's PathSegmentService truncates generated names to this length.
PATH_SEGMENT_MAX = 24
# Types carrying the `file` and `files` schemas.
FILE_TYPES = frozenset({"File", "Picture", "Video", "Audio", "Note"})
# Names made only of these characters are replaced by a random id, as Nuxeo does.
MEANINGLESS_NAME = re.compile(r"^[- .,;?!:/\\'\"]*$")


def path_segment(text: str) -> str:
    """A document name generated from a title, like Nuxeo's default PathSegmentService."""
    segment = text.strip()[:PATH_SEGMENT_MAX].replace("/", "-").replace("\\", "-")
    if MEANINGLESS_NAME.match(segment):
        return str(int(time.time() * 1000)) + secrets.token_hex(2)
    return segment


class DocumentTree:
    """The documents of the server's one repository."""

    def __init__(self, server: NuxeoServer) -> None:
        self._server = server

    def ensure(self) -> None:
        """Make the root, the domain, its workspaces and the user's home, unless there."""
        with self._server.store.transaction():
            if self._server.store.documents.by_path("/") is not None:
                return
            root = DocRecord(str(uuid.uuid4()), None, "", "/", "Root", {}, 0, now_iso())
            self._server.store.documents.save(root)
            domain = self.new_doc(root, "default-domain", "Domain", {"dc:title": "Domain"})
            self.new_doc(domain, "workspaces", "WorkspaceRoot", {"dc:title": "Workspaces"})
            homes = self.new_doc(
                domain, "UserWorkspaces", "UserWorkspacesRoot", {"dc:title": "User Workspaces"}
            )
            self.new_doc(homes, self._server.user, "Workspace", {"dc:title": self._server.user})

    def doc_at(self, path: str) -> DocRecord:
        doc = self._server.store.documents.by_path(path)
        if doc is None:
            raise not_found(f"{path}")
        return doc

    def doc_by_ref(self, ref: str) -> DocRecord:
        """A path (starting with `/`) or a uid, as automation document parameters accept."""
        if ref.startswith("/"):
            return self.doc_at(_normalize_path(ref))
        doc = self._server.store.documents.by_uid(ref)
        if doc is None:
            raise not_found(ref)
        return doc

    def routed_doc(self, request: Request) -> DocRecord:
        """The document a request's route names, by `repo` and `uid` or `doc_path`."""
        repo = request.params.get("repo")
        if repo not in (None, REPOSITORY):
            raise not_found(f"Repository not found: {repo}")
        if "uid" in request.params:
            return self.doc_by_ref(request.params["uid"])
        return self.doc_at(_normalize_path(request.params.get("doc_path") or "/"))

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
        while self._server.store.documents.by_path(parent.child_path(candidate)) is not None:
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
        self._server.store.documents.save(updated)
        return updated


def _normalize_path(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    return "/" + "/".join(parts)
