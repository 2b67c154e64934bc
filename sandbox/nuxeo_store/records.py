"""What the sandbox Nuxeo server keeps: documents, upload batches and their files, blobs, and
the answers kept under idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

# The handler that takes bytes through Nuxeo itself; every other handler is an S3 one.
DEFAULT_HANDLER = "default"

FOLDERISH_TYPES = frozenset(
    {
        "Root",
        "Domain",
        "WorkspaceRoot",
        "Workspace",
        "UserWorkspacesRoot",
        "Folder",
        "OrderedFolder",
        "SectionRoot",
        "Section",
        "TemplateRoot",
        "Collections",
    }
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class StoredBlob:
    """A blob as a document keeps it: the S3 object stays where it was uploaded."""

    name: str
    mime_type: str | None
    encoding: str | None
    digest: str
    length: int
    key: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mime-type": self.mime_type,
            "encoding": self.encoding,
            "digest": self.digest,
            "length": self.length,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredBlob:
        return cls(
            data["name"],
            data["mime-type"],
            data["encoding"],
            data["digest"],
            int(data["length"]),
            data["key"],
        )


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    provider: str  # the name of the handler that made it
    base_key: str

    @property
    def is_s3(self) -> bool:
        return self.provider != DEFAULT_HANDLER


@dataclass(frozen=True)
class BatchFile:
    batch_id: str
    idx: int
    etag: str
    blob: StoredBlob

    def info(self) -> dict[str, Any]:
        return {"name": self.blob.name, "size": self.blob.length, "uploadType": "normal"}


@dataclass(frozen=True)
class DocRecord:
    uid: str
    parent_uid: str | None
    name: str
    path: str
    type: str
    properties: dict[str, Any]  # blobs kept in their `StoredBlob.as_dict()` form
    change_token: int
    modified: str

    @property
    def folderish(self) -> bool:
        return self.type in FOLDERISH_TYPES

    @property
    def title(self) -> str:
        return self.properties.get("dc:title") or self.name

    def child_path(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"


@dataclass(frozen=True)
class StoredAnswer:
    """A response kept for replay under its idempotency key."""

    status: int
    headers: dict[str, str]
    body: bytes


class Claim(Enum):
    """The state of an idempotency key that has no stored answer."""

    NEW = "new"  # claimed now: run the request
    RUNNING = "running"  # another request with that key is running
