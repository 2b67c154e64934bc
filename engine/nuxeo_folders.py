"""The Nuxeo calls on folders: what is at a path, the target's sub-folders made (or found under
another name) as local folders are mirrored, and the real path each local folder went to.

`NuxeoFolders` is the part of `NuxeoBatchClient` that makes them, through its requests.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nuxeo.exceptions import HTTPError

from .nuxeo_calls import nuxeo_call as _nuxeo_call

if TYPE_CHECKING:
    from .nuxeo_batch import ServerConnection

FOLDERISH = "folderish"  # what `folder_kind` answers for a folder
# The namespace of folder creations' Idempotency-Keys (see `_create_folder`).
_FOLDER_KEYS = uuid.UUID("6f1c54a2-3d59-4c0e-9f1b-0b8f5d2a7e11")


class NuxeoFolders:
    """Mixed into `NuxeoBatchClient` (through `ExistingDocuments`), whose session and folder
    caches it uses (declared here)."""

    connection: ServerConnection
    _folders: dict[str, str]  # local folder (logical path) -> the real path it went to
    _folder_types: dict[str, str]  # by real path, as seen when looked up or made
    _folder_lock: threading.Lock

    if TYPE_CHECKING:
        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def _post(self, path: str, *, key: str | None = None, headers: dict[str, str] | None = None,
                  attempts: int = ..., **kwargs: Any) -> Any: ...

    @staticmethod
    def _doc_path(path: str) -> str:
        return quote(path if path.startswith("/") else "/" + path)

    def _document(self, path: str) -> dict[str, Any] | None:
        """The document at `path`, None if there is none."""
        try:
            return dict(self._request("GET", f"api/v1/path{self._doc_path(path)}").json())
        except HTTPError as exc:
            if exc.status == 404:
                return None
            raise

    @_nuxeo_call("looking up the target folder")
    def folder_kind(self, path: str) -> str | None:
        """`FOLDERISH` for a folder, the document's type for another document, None when
        nothing is there."""
        document = self._document(path)
        if document is None:
            return None
        kind = str(document.get("type"))
        self._folder_types[path] = kind
        folderish = "Folderish" in (document.get("facets") or []) or kind in (
            "Folder", "Workspace", "WorkspaceRoot", "Domain", "Root", "OrderedFolder"
        )
        return FOLDERISH if folderish else kind

    def folder_exists(self, path: str) -> bool:
        return self.folder_kind(path) == FOLDERISH

    @_nuxeo_call("creating a folder")
    def ensure_folder(self, parent: str, name: str) -> str:
        """The path of folder `name` under `parent`, created if missing (mirrors local folders)."""
        logical = parent.rstrip("/") + "/" + name
        with self._folder_lock:
            known = self._folders.get(logical)
            if known:
                return known
            real_parent = self._folders.get(parent, parent)
            candidate = real_parent.rstrip("/") + "/" + name
            existing = self._document(candidate)
            path = str(existing["path"]) if existing is not None else self._create_folder(real_parent, name)
            self._folders[logical] = path
            return path

    def _create_folder(self, parent: str, name: str) -> str:
        """Create folder `name` in `parent`. The Idempotency-Key is the same for the same folder
        from any nxup process: a creation that reaches the server late (its sender died, and a
        resume created the folder meanwhile) gets the first answer, not a second folder."""
        # A WorkspaceRoot (/default-domain/workspaces) holds Workspaces, not Folders.
        parent_type = self._folder_types.get(parent)
        if parent_type is None:
            parent_type = str((self._document(parent) or {}).get("type"))
        body = {"entity-type": "document", "name": name, "properties": {"dc:title": name},
                "type": "Workspace" if parent_type == "WorkspaceRoot" else "Folder"}
        key = str(uuid.uuid5(_FOLDER_KEYS, f"{self.connection.url}\n{parent}\n{name}"))
        created = self._post(f"api/v1/path{self._doc_path(parent)}", key=key, data=body).json()
        path = str(created["path"])
        if self._document(path) is None:
            # The answer replayed a creation whose folder was removed since: make it anew.
            created = self._post(f"api/v1/path{self._doc_path(parent)}", key=str(uuid.uuid4()), data=body).json()
            path = str(created["path"])
        self._folder_types[path] = str(created.get("type"))
        return path

    def resolve_folder(self, logical: str) -> str:
        return self._folders.get(logical, logical)

    def use_folder(self, logical: str, real: str) -> None:
        """Mirror the local folder `logical` into the existing folder at `real` (same title,
        another name)."""
        with self._folder_lock:
            self._folders.setdefault(logical, real)


__all__ = ["FOLDERISH", "NuxeoFolders"]
