"""What to do with a file whose name is taken in its target folder (`--existing`).

A name is taken when the folder has a live (not trashed) child titled like the file. Each
target folder's children are listed once per run (one paged query, see `NuxeoBatchClient.
list_children`) and every file is decided here, locally. The file's own digest is computed only
when a document of the same title has the same length: same length and same digest (in the
server's `digestAlgorithm`) is "the same bytes".

- `version` (the default): same bytes → skipped; else the document gets the file as a new
  version, no new document.
- `skip`: an existing name is never touched → skipped.
- `rename`: a new document titled with a free name, "a (2).txt".
- `fail`: the file fails ("exists in /t (different bytes)"), unless the bytes are the same.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import ConflictError, InputError, describe_os_error
from .inputs import open_for_upload


class ExistingPolicy(StrEnum):
    VERSION = "version"
    SKIP = "skip"
    RENAME = "rename"
    FAIL = "fail"


class Action(StrEnum):
    """What was decided for a file; journaled before any request it leads to."""

    CREATE = "create"
    VERSION = "version"  # the existing document `version_of` gets the file's blob
    RENAME = "rename"  # a new document under a free title (the record's `doc_name`)
    SKIP = "skip"


class NameTaken(ConflictError):
    """The file's name is taken and its policy says to fail."""

    retryable = False


class DocumentChanged(ConflictError):
    """The document to version changed since it was listed (its changeToken no longer matches)."""


@dataclass(frozen=True, slots=True)
class ExistingDocument:
    uid: str
    title: str
    path: str
    type: str
    holds_files: bool  # it has the `file` schema (a File, a Picture...), so it can take a version
    length: int | None = None
    digest: str | None = None
    digest_algorithm: str | None = None
    folderish: bool = False
    change_token: str | None = None  # guards the version against a repeat or a change since

    @property
    def named_after_title(self) -> bool:
        return self.path.rsplit("/", 1)[-1] == self.title


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    title: str  # of the document to create, or of the one that exists
    document: ExistingDocument | None = None  # the one that gets a version, or holds the same bytes
    reason: str = ""  # why a file is skipped


@dataclass(slots=True)
class FolderListing:
    """The live children of one target folder, by title, with the titles this run takes."""

    folder: str
    by_title: dict[str, list[ExistingDocument]] = field(default_factory=dict)
    reserved: set[str] = field(default_factory=set)  # titles files of this run will create

    @classmethod
    def of(cls, folder: str, children: list[ExistingDocument]) -> FolderListing:
        listing = cls(folder)
        for child in children:
            listing.by_title.setdefault(child.title, []).append(child)
        return listing

    def taken(self, title: str) -> bool:
        return title in self.by_title or title in self.reserved

    def folder_titled(self, title: str) -> ExistingDocument | None:
        return next((d for d in self.by_title.get(title, []) if d.folderish), None)

    def free_title(self, title: str) -> str:
        """"a (2).txt", "a (3).txt"...: the first title neither the folder nor this run has."""
        stem, extension = os.path.splitext(title)
        number = 2
        while self.taken(f"{stem} ({number}){extension}"):
            number += 1
        return f"{stem} ({number}){extension}"


def digest_of_file(path: str, algorithm: str) -> str | None:
    """The file's digest in the server's algorithm ("MD5", "SHA-256"...), None for an
    algorithm hashlib does not know."""
    name = algorithm.replace("-", "").lower()
    if name not in hashlib.algorithms_available:
        return None
    fd, _ = open_for_upload(path)
    try:
        with os.fdopen(fd, "rb") as handle:
            return hashlib.file_digest(handle, name).hexdigest()
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from exc


def decide(listing: FolderListing, *, title: str, path: str, size: int, policy: ExistingPolicy,
           digest: Callable[[str, str], str | None] = digest_of_file) -> Decision:
    """What to do with the file at `path` (`size` bytes) going to `listing.folder` as `title`.
    Raises `NameTaken` when the policy is `fail` and the bytes differ. The caller reserves the
    title it goes on with (`reserve`)."""
    holders = listing.by_title.get(title, [])
    where = f"{listing.folder.rstrip('/')}/{title}"
    if not holders and title not in listing.reserved:
        return Decision(Action.CREATE, title)
    if not holders:  # another file of this run goes there
        if policy is ExistingPolicy.RENAME:
            return Decision(Action.RENAME, listing.free_title(title))
        if policy is ExistingPolicy.SKIP:
            return Decision(Action.SKIP, title, reason=f"another file of this upload goes to {where}")
        raise NameTaken(f"another file of this upload goes to {where}")
    if policy is ExistingPolicy.SKIP:
        return Decision(Action.SKIP, title, holders[0], reason=f"exists in {holders[0].path or where}")
    if policy is ExistingPolicy.RENAME:
        return Decision(Action.RENAME, listing.free_title(title))
    same = _same_bytes(holders, path=path, size=size, digest=digest)
    if same is not None:
        return Decision(Action.SKIP, title, same, reason=f"same bytes in {same.path or where}")
    if policy is ExistingPolicy.FAIL:
        return _fail(f"exists in {listing.folder} (different bytes)")
    target = next((d for d in holders if d.named_after_title), holders[0])
    if not target.holds_files:
        return _fail(f"exists in {listing.folder} as a {target.type} document, which holds no file")
    return Decision(Action.VERSION, title, target)


def _fail(reason: str) -> Decision:
    raise NameTaken(reason)


def _same_bytes(holders: list[ExistingDocument], *, path: str, size: int,
                digest: Callable[[str, str], str | None]) -> ExistingDocument | None:
    computed: dict[str, str | None] = {}
    for holder in holders:
        if holder.length != size or not holder.digest:
            continue
        algorithm = holder.digest_algorithm or "MD5"
        if algorithm not in computed:
            computed[algorithm] = digest(path, algorithm)
        if computed[algorithm] == holder.digest:
            return holder
    return None


class TargetListings:
    """Each target folder's listing, made once per run (concurrent asks for the same folder
    wait for the one listing), and the titles this run's files take in it."""

    def __init__(self, list_children: Callable[[str], list[ExistingDocument] | None]) -> None:
        self._list_children = list_children  # None: the folder does not exist (yet)
        self._lock = threading.Lock()
        self._listings: dict[str, FolderListing] = {}
        self._folder_locks: dict[str, threading.Lock] = {}

    def of(self, folder: str) -> FolderListing:
        with self._lock:
            listing = self._listings.get(folder)
            if listing is not None:
                return listing
            folder_lock = self._folder_locks.setdefault(folder, threading.Lock())
        with folder_lock:
            with self._lock:
                listing = self._listings.get(folder)
            if listing is None:
                listing = FolderListing.of(folder, self._list_children(folder) or [])
                with self._lock:
                    self._listings[folder] = listing
        return listing

    def decide_and_reserve(self, folder: str, *, title: str, path: str, size: int,
                           policy: ExistingPolicy) -> Decision:
        """`decide`, then the title a new document takes is reserved for this run (one file's
        decision at a time per folder, so two files never pick the same free title)."""
        listing = self.of(folder)
        # The file is read (when a document of its title has its length) before the folder's
        # lock is taken: one large file must not hold the other files of its folder.
        digests: dict[str, str | None] = {}
        if policy in (ExistingPolicy.VERSION, ExistingPolicy.FAIL):
            for holder in listing.by_title.get(title, []):
                algorithm = holder.digest_algorithm or "MD5"
                if holder.length == size and holder.digest and algorithm not in digests:
                    digests[algorithm] = digest_of_file(path, algorithm)
        with self._lock:
            folder_lock = self._folder_locks.setdefault(folder, threading.Lock())
        with folder_lock:
            decision = decide(listing, title=title, path=path, size=size, policy=policy,
                              digest=lambda _path, algorithm: digests.get(algorithm))
            if decision.action in (Action.CREATE, Action.RENAME):
                listing.reserved.add(decision.title)
        return decision


__all__ = [
    "Action",
    "Decision",
    "DocumentChanged",
    "ExistingDocument",
    "ExistingPolicy",
    "FolderListing",
    "NameTaken",
    "TargetListings",
    "decide",
    "digest_of_file",
]
