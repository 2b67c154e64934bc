"""Versions and the trash, as a Nuxeo server keeps them for a live document.

Versions: a versionable document (a File) starts at 0.0, checked out. An update with
`X-Versioning-Option: MINOR` (or `MAJOR`) checks it in as the next version (0.1, 0.2, 1.0...),
and its `versionLabel` says so; an update without the header checks it out again ("0.1+"). The
sandbox keeps the live document's label and numbers (the `uid` schema), not the frozen versions.

Trash: `POST .../@op/Document.Trash` marks the document trashed (`isTrashed`, and
`ecm:isTrashed = 1` in NXQL) and renames it so its name is free again, as the trash service does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .nuxeo_http import Request, Response, Route, bad_request, route
from .nuxeo_query import CHECKED_IN, TRASHED
from .nuxeo_store import DocRecord

if TYPE_CHECKING:
    from .nuxeo_documents import Documents
    from .nuxeo_server import NuxeoServer

VERSIONING_HEADER = "X-Versioning-Option"
MAJOR = "uid:major_version"
MINOR = "uid:minor_version"
_OPTIONS = ("NONE", "MINOR", "MAJOR")


def initial_version() -> dict[str, Any]:
    return {MAJOR: 0, MINOR: 0, CHECKED_IN: False}


def versioning_option(request: Request) -> str:
    option = (request.headers.get(VERSIONING_HEADER) or "NONE").strip().upper()
    if option not in _OPTIONS:
        raise bad_request(f"No enum constant VersioningOption.{option}")
    return option


def after_update(properties: dict[str, Any], option: str) -> dict[str, Any]:
    """The version properties once an update with `option` is saved."""
    major, minor = int(properties.get(MAJOR) or 0), int(properties.get(MINOR) or 0)
    if option == "MAJOR":
        return {MAJOR: major + 1, MINOR: 0, CHECKED_IN: True}
    if option == "MINOR":
        return {MAJOR: major, MINOR: minor + 1, CHECKED_IN: True}
    return {CHECKED_IN: False}


def version_label(properties: dict[str, Any]) -> str:
    major, minor = int(properties.get(MAJOR) or 0), int(properties.get(MINOR) or 0)
    modified_since = not properties.get(CHECKED_IN) and (major or minor)
    return f"{major}.{minor}" + ("+" if modified_since else "")


def is_trashed(doc: DocRecord) -> bool:
    return bool(doc.properties.get(TRASHED))


def shown_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """The properties a document's JSON shows: the system ones kept with them are not."""
    return {name: value for name, value in properties.items() if not name.startswith("ecm:")}


class Trash:
    """`Document.Trash` through the REST API's `@op` adapter."""

    def __init__(self, server: NuxeoServer, documents: Documents) -> None:
        self._server = server
        self._documents = documents

    def routes(self) -> list[Route]:
        prefix = r"/api/v1(?:/repo/[^/]+)?"
        return [
            route("POST", rf"{prefix}/id/(?P<uid>[^/]+)/@op/Document\.Trash", self._trash),
            route("POST", rf"{prefix}/path(?P<doc_path>/.*)/@op/Document\.Trash", self._trash),
        ]

    def _trash(self, request: Request) -> Response:
        ref = request.params.get("uid") or request.params.get("doc_path") or "/"
        doc = self._documents.doc_by_ref(ref)
        if doc.parent_uid is None:
            raise bad_request("The root document cannot be trashed")
        with self._server.store.transaction():
            if not is_trashed(doc):
                self._server.store.move_doc(doc, f"{doc.name}._{doc.uid}_.trashed")
                moved = self._server.store.doc_by_uid(doc.uid)
                assert moved is not None
                doc = self._documents.write_doc(moved, {TRASHED: True})
        return Response.json(self._documents.doc_json(doc))
