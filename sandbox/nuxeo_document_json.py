"""Documents as the REST API shows them in JSON, their blobs as links to download them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .nuxeo_blobs import FILE_CONTENT, FILES_FILES
from .nuxeo_store import DocRecord, StoredBlob
from .nuxeo_tree import FILE_TYPES, REPOSITORY
from .nuxeo_versions import is_trashed, shown_properties, version_label


def document_json(doc: DocRecord, base_url: str) -> dict[str, Any]:
    """The `document` entity; `base_url` is the server's, for the blobs' `data` links."""
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
        properties[FILE_CONTENT] = _blob_json(doc, FILE_CONTENT, stored, base_url)
        properties[FILES_FILES] = [
            {"file": _blob_json(doc, f"{FILES_FILES}/{i}/file", item.get("file"), base_url)}
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
        "changeToken": change_token(doc),
        "title": doc.title,
        "lastModified": doc.modified,
        "facets": facets,
        **versioned,
        "contextParameters": {},
        "properties": properties,
    }


def change_token(doc: DocRecord) -> str:
    return f"{doc.change_token}-0"


def _blob_json(doc: DocRecord, xpath: str, stored: Any, base_url: str) -> dict[str, Any] | None:
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
        "data": f"{base_url}/nxfile/{REPOSITORY}/{doc.uid}/{xpath}/{quote(blob.name)}",
    }
