"""Versions and the trash mark, as a Nuxeo server keeps them for a live document.

Versions: a versionable document (a File) starts at 0.0, checked out. An update with
`X-Versioning-Option: MINOR` (or `MAJOR`) checks it in as the next version (0.1, 0.2, 1.0...),
and its `versionLabel` says so; an update without the header checks it out again ("0.1+"). The
sandbox keeps the live document's label and numbers (the `uid` schema), not the frozen versions.

Trash: a trashed document has `ecm:isTrashed` among its stored properties (see `nuxeo_trash`).
"""

from __future__ import annotations

from typing import Any

from .nuxeo_http import Request, bad_request
from .nuxeo_store import DocRecord

TRASHED = "ecm:isTrashed"  # kept among the stored properties, never shown in them
CHECKED_IN = "ecm:isCheckedIn"
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
