"""`--dry-run`: what an upload would do with each file, and where, asked of Nuxeo read-only (the
login, the target folder, each folder's listing). No journal row, no batch, nothing sent to S3."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from .errors import NuxeoNotFound
from .existing import Action, ExistingPolicy, NameTaken, TargetListings
from .inputs import IgnoredPath, PathFilter, RejectedPath, expand
from .nuxeo_batch import NuxeoBatchClient
from .nuxeo_folders import FOLDERISH


class Outcome(StrEnum):
    UPLOAD = "upload"
    VERSION = "version"
    RENAME = "rename"
    SKIP = "skip"
    IGNORE = "ignore"
    FAIL = "fail"  # a taken name under `--existing fail`, or a path that cannot be uploaded


@dataclass(frozen=True, slots=True)
class PlannedFile:
    outcome: Outcome
    path: str
    size: int = 0
    destination: str = ""  # the document's path in Nuxeo
    reason: str = ""


def check_target(nuxeo: NuxeoBatchClient, target: str) -> str:
    """The target folder's path, checked as an upload checks it (`NuxeoNotFound` otherwise)."""
    target = "/" + target.strip("/") if target.strip("/") else "/"
    kind = nuxeo.folder_kind(target)
    if kind is None:
        nuxeo.check_rest_api()
        raise NuxeoNotFound(f"the target folder {target} does not exist on Nuxeo")
    if kind != FOLDERISH:
        raise NuxeoNotFound(f"the target {target} is a {kind} document, not a folder")
    return target


def plan(nuxeo: NuxeoBatchClient, paths: Iterable[str | os.PathLike[str]], target: str, *,
         existing: ExistingPolicy, patterns: PathFilter) -> Iterator[PlannedFile]:
    """Each file's outcome, in the order an upload would queue them."""
    target = check_target(nuxeo, target)
    listings = TargetListings(nuxeo.list_children)
    for item in expand(paths, target, patterns):
        if isinstance(item, IgnoredPath):
            yield PlannedFile(Outcome.IGNORE, item.path, reason=item.reason)
            continue
        if isinstance(item, RejectedPath):
            yield PlannedFile(Outcome.FAIL, item.path, reason=item.reason)
            continue
        path = str(item.path)
        try:
            decision = listings.decide_and_reserve(item.target, title=item.path.name, path=path, size=item.size,
                                                   policy=existing)
        except NameTaken as taken:
            yield PlannedFile(Outcome.FAIL, path, item.size, reason=str(taken))
            continue
        destination = f"{item.target.rstrip('/')}/{decision.title}"
        if decision.action is Action.SKIP:
            yield PlannedFile(Outcome.SKIP, path, item.size, destination, decision.reason)
        elif decision.action is Action.VERSION:
            assert decision.document is not None
            yield PlannedFile(Outcome.VERSION, path, item.size, decision.document.path or destination)
        elif decision.action is Action.RENAME:
            yield PlannedFile(Outcome.RENAME, path, item.size, destination)
        else:
            yield PlannedFile(Outcome.UPLOAD, path, item.size, destination)


__all__ = ["Outcome", "PlannedFile", "check_target", "plan"]
