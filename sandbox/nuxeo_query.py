"""The sandbox Nuxeo server's NXQL search: `GET /api/v1/query/NXQL` (what the `nuxeo` client's
`documents.query()` calls) and `GET /api/v1/search/lang/NXQL/execute`, with Nuxeo's paging.

Only the queries a client asks of a folder are understood: `SELECT * FROM <type> WHERE` a
conjunction of comparisons (`=`, `!=`, `<>`) on `ecm:parentId`, `ecm:uuid`, `ecm:name`,
`ecm:primaryType`, `ecm:mixinType`, `ecm:isTrashed`, `ecm:isVersion`, `ecm:isProxy`,
`ecm:isCheckedIn` or a property such as `dc:title`, with an optional `ORDER BY` that is
read and ignored (children come in creation order). Anything else is a 400, as a query the
real parser rejects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .nuxeo_document_json import document_json
from .nuxeo_http import API, Request, Response, Route, bad_request, route
from .nuxeo_store import DocRecord
from .nuxeo_versions import CHECKED_IN, TRASHED

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

# Nuxeo's defaults: `nuxeo.pageprovider.default-page-size` and `...default-max-page-size`.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_SELECT = re.compile(r"\s*SELECT\s+\*\s+FROM\s+(?P<type>\w+)(?:\s+WHERE\s+(?P<where>.*?))?"
                     r"(?:\s+ORDER\s+BY\s+[\w:, ]+?)?\s*", re.IGNORECASE | re.DOTALL)
_COMPARISON = re.compile(r"\s*(?P<name>[\w:]+)\s*(?P<op>=|!=|<>)\s*"
                         r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+)\s*")
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Comparison:
    name: str
    equal: bool
    value: str | int

    def holds(self, doc: DocRecord) -> bool:
        actual = _value_of(doc, self.name)
        found = self.value in actual if self.name == "ecm:mixinType" else actual == self.value
        return found == self.equal


def _value_of(doc: DocRecord, name: str) -> Any:
    if name == "ecm:parentId":
        return doc.parent_uid
    if name == "ecm:uuid":
        return doc.uid
    if name == "ecm:name":
        return doc.name
    if name == "ecm:primaryType":
        return doc.type
    if name == "ecm:mixinType":
        return ["Folderish"] if doc.folderish else ["Versionable", "Commentable", "Downloadable"]
    if name in (TRASHED, CHECKED_IN):
        return int(bool(doc.properties.get(name)))
    if name in ("ecm:isVersion", "ecm:isProxy"):
        return 0  # the sandbox keeps live documents only
    if name == "dc:title":
        return doc.title
    if name.startswith("ecm:"):
        raise bad_request(f"Failed to execute query: unsupported NXQL property {name}")
    return doc.properties.get(name)


def parse(query: str) -> tuple[str, list[Comparison]]:
    """The document type and the conditions of a query, or a 400."""
    match = _SELECT.fullmatch(query)
    if match is None:
        raise bad_request(f"Failed to execute query: {query}, Syntax error: unsupported NXQL")
    conditions = []
    where = match.group("where")
    for text in _AND.split(where) if where else []:
        comparison = _COMPARISON.fullmatch(text)
        if comparison is None:
            raise bad_request(f"Failed to execute query: {query}, Syntax error near: {text.strip()}")
        raw = comparison.group("value")
        value: str | int = int(raw) if raw[0] not in "'\"" else re.sub(r"\\(.)", r"\1", raw[1:-1])
        conditions.append(Comparison(comparison.group("name"), comparison.group("op") == "=", value))
    return match.group("type"), conditions


class Queries:
    """The NXQL endpoints."""

    def __init__(self, server: NuxeoServer) -> None:
        self._server = server

    def routes(self) -> list[Route]:
        return [
            route("GET", rf"{API}(?:/repo/[^/]+)?/query/NXQL", self._query),
            route("GET", rf"{API}(?:/repo/[^/]+)?/search/lang/NXQL/execute", self._query),
        ]

    def _query(self, request: Request) -> Response:
        query = request.query.get("query")
        if not query:
            raise bad_request("Failed to execute query: no query given")
        doc_type, conditions = parse(query)
        page_size = _number(request.query, "pageSize", DEFAULT_PAGE_SIZE)
        page_size = MAX_PAGE_SIZE if page_size <= 0 else min(page_size, MAX_PAGE_SIZE)
        page = _number(request.query, "currentPageIndex", 0)
        found = [doc for doc in self._candidates(conditions) if _of_type(doc, doc_type)
                 and all(condition.holds(doc) for condition in conditions)]
        shown = found[page * page_size:(page + 1) * page_size]
        pages = max(1, -(-len(found) // page_size))
        return Response.json({
            "entity-type": "documents",
            "isPaginable": True,
            "resultsCount": len(found),
            "pageSize": page_size,
            "maxPageSize": MAX_PAGE_SIZE,
            "resultsCountLimit": -1,
            "currentPageSize": len(shown),
            "currentPageIndex": page,
            "currentPageOffset": page * page_size,
            "numberOfPages": pages,
            "isPreviousPageAvailable": page > 0,
            "isNextPageAvailable": page + 1 < pages,
            "isLastPageAvailable": page + 1 < pages,
            "isSortable": True,
            "hasError": False,
            "errorMessage": None,
            "totalSize": len(found),
            "pageIndex": page,
            "pageCount": pages,
            "entries": [document_json(doc, self._server.base_url) for doc in shown],
        })

    def _candidates(self, conditions: list[Comparison]) -> list[DocRecord]:
        parents = [c.value for c in conditions if c.name == "ecm:parentId" and c.equal]
        if parents:
            return self._server.store.documents.children(str(parents[0]))
        return self._server.store.documents.all()


def _of_type(doc: DocRecord, doc_type: str) -> bool:
    return doc_type == "Document" or doc.type == doc_type


def _number(query: dict[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise bad_request(f"{name} must be a number, not {text}") from None

