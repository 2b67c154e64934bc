"""Blobs in document properties: batch references resolved as the server's JSON reader does,
and the blobs a document already holds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .nuxeo_http import bad_request

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

FILE_CONTENT = "file:content"
FILES_FILES = "files:files"


class BatchBlobs:
    """Resolves `upload-batch` references as JSONBatchBlobDecoder does: a missing batch or file
    gives no blob (the document is saved without it), and every batch found is remembered."""

    def __init__(self, server: NuxeoServer) -> None:
        self._server = server
        self.used: set[str] = set()

    def blob(self, reference: dict[str, Any]) -> dict[str, Any] | None:
        file_id = reference.get("upload-fileId")
        if file_id is None:
            return None
        batch = self._server.batch(str(reference["upload-batch"]))
        if batch is None:
            return None
        self.used.add(batch.batch_id)
        index = str(file_id)
        if not index.isdigit():
            return None
        entry = self._server.store.batches.file(batch.batch_id, int(index))
        return entry.blob.as_dict() if entry else None


def incoming_files(
    value: Any, known: dict[str, dict[str, Any]], batches: BatchBlobs
) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"'{FILES_FILES}' must be a list")
    items = []
    for item in value:
        blob_value = item.get("file") if isinstance(item, dict) else None
        items.append({"file": incoming_blob(blob_value, known, batches)})
    return items


def incoming_blob(
    value: Any, known: dict[str, dict[str, Any]], batches: BatchBlobs
) -> dict[str, Any] | None:
    """Resolve a batch reference; keep a blob the client echoed back from a GET."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"Unsupported blob value: {value!r}")
    if "upload-batch" in value:
        return batches.blob(value)
    digest = value.get("digest")
    if digest in known:
        return known[digest]
    raise bad_request("A blob property needs an upload-batch reference")



def known_blobs(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stored blobs of a document, by digest."""
    blobs = [properties.get(FILE_CONTENT)]
    blobs += [item.get("file") for item in properties.get(FILES_FILES) or []]
    return {blob["digest"]: blob for blob in blobs if blob}


def blob_at(properties: dict[str, Any], xpath: str) -> dict[str, Any] | None:
    if xpath == FILE_CONTENT:
        return properties.get(FILE_CONTENT)
    match = re.fullmatch(rf"{FILES_FILES}/(\d+)/file", xpath)
    items = properties.get(FILES_FILES) or []
    if match and int(match.group(1)) < len(items):
        blob: dict[str, Any] | None = items[int(match.group(1))].get("file")
        return blob
    return None
