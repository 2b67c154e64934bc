"""The Nuxeo calls behind `--existing`: a target folder's live children (one paged NXQL query),
a document read back, and a new version of a document (see `existing`).

`ExistingDocuments` is the part of `NuxeoBatchClient` that makes them, through its requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nuxeo.exceptions import HTTPError

from .existing import DocumentChanged, ExistingDocument
from .nuxeo_calls import nuxeo_call
from .nuxeo_folders import NuxeoFolders

if TYPE_CHECKING:
    from .nuxeo_batch import CreatedDocument

_LISTING_PAGE = 1000  # a stock server's largest page (`nuxeo.pageprovider.default-max-page-size`)


class ExistingDocuments(NuxeoFolders):
    """Mixed into `NuxeoBatchClient`, whose requests it sends (declared here)."""

    if TYPE_CHECKING:
        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

        @staticmethod
        def _created(answer: dict[str, Any]) -> CreatedDocument: ...

    @nuxeo_call("listing the target folder")
    def list_children(self, folder: str) -> list[ExistingDocument] | None:
        """The live (not trashed) children of `folder`, None when there is no such folder: one
        NXQL query, the path the client's `documents.query()` takes, paged by 1,000."""
        document = self._document(self.resolve_folder(folder))
        if document is None:
            return None
        uid = str(document["uid"]).replace("'", "")
        query = f"SELECT * FROM Document WHERE ecm:parentId = '{uid}' AND ecm:isTrashed = 0 ORDER BY ecm:name"
        children: list[ExistingDocument] = []
        page = 0
        while True:
            answer = self._request("GET", "api/v1/query/NXQL",
                                   params={"query": query, "pageSize": _LISTING_PAGE, "currentPageIndex": page},
                                   headers={"X-NXDocumentProperties": "dublincore,file"}).json()
            children.extend(_existing(entry) for entry in answer.get("entries") or [])
            if not answer.get("isNextPageAvailable"):
                return children
            page += 1

    @nuxeo_call("reading the document")
    def file_document(self, uid: str) -> CreatedDocument | None:
        try:
            return self._created(self._request("GET", f"api/v1/id/{uid}",
                                               headers={"X-NXDocumentProperties": "dublincore,file"}).json())
        except HTTPError as exc:
            if exc.status == 404:
                return None
            raise

    @nuxeo_call("adding a version to the document")
    def add_version(self, uid: str, *, batch_id: str, file_idx: int,
                    change_token: str | None) -> CreatedDocument:
        """Give document `uid` the batch's blob and check it in as its next minor version.

        Sent once (a PUT is retried by the HTTP layer, so `changeToken` guards it: a repeat,
        or any change made since the document was listed, is refused with a 409 instead of
        making a second version; the caller then looks at the document)."""
        body: dict[str, Any] = {
            "entity-type": "document",
            "properties": {"file:content": {"upload-batch": batch_id, "upload-fileId": str(file_idx)}},
        }
        if change_token:
            body["changeToken"] = change_token
        try:
            answer = self._request("PUT", f"api/v1/id/{uid}", data=body, headers={
                "X-Versioning-Option": "MINOR", "X-Batch-No-Drop": "true",
                "X-NXDocumentProperties": "dublincore,file",
            })
        except HTTPError as exc:
            if exc.status == 409:
                raise DocumentChanged("the document changed since it was listed") from exc
            raise
        return self._created(answer.json())


def _existing(entry: dict[str, Any]) -> ExistingDocument:
    properties = entry.get("properties") or {}
    blob = properties.get("file:content")
    blob = blob if isinstance(blob, dict) else {}
    return ExistingDocument(
        uid=str(entry.get("uid")),
        title=str(entry.get("title") or properties.get("dc:title") or ""),
        path=str(entry.get("path") or ""),
        type=str(entry.get("type") or ""),
        holds_files="file:content" in properties,
        length=int(blob["length"]) if blob.get("length") is not None else None,
        digest=str(blob["digest"]) if blob.get("digest") else None,
        digest_algorithm=str(blob["digestAlgorithm"]) if blob.get("digestAlgorithm") else None,
        folderish="Folderish" in (entry.get("facets") or []),
        change_token=str(entry["changeToken"]) if entry.get("changeToken") else None,
    )
