"""Blob downloads, streamed from S3: `GET /nxfile/...`, and the blob `Blob.Attach` answers with."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import quote

from botocore.exceptions import ClientError

from .nuxeo_blobs import blob_at
from .nuxeo_http import Request, Response, Route, not_found, route
from .nuxeo_store import StoredBlob
from .nuxeo_tree import DocumentTree

if TYPE_CHECKING:
    from .nuxeo_server import NuxeoServer

STREAM_CHUNK = 1024 * 1024


class Downloads:
    """The download endpoint of the blobs documents hold."""

    def __init__(self, server: NuxeoServer, tree: DocumentTree) -> None:
        self._server = server
        self._tree = tree

    def routes(self) -> list[Route]:
        return [
            route(
                "GET",
                r"/nxfile/(?P<repo>[^/]+)/(?P<uid>[^/]+)/(?P<xpath>.+)/(?P<filename>[^/]+)",
                self._download,
            ),
        ]

    def _download(self, request: Request) -> Response:
        doc = self._tree.routed_doc(request)
        stored = blob_at(doc.properties, request.params["xpath"])
        if stored is None:
            raise not_found(f"No blob at {request.params['xpath']} in {doc.path}")
        return blob_response(self._server, StoredBlob.from_dict(stored))


def blob_response(server: NuxeoServer, blob: StoredBlob) -> Response:
    try:
        answer = server.s3_admin.get_object(Bucket=server.s3.bucket, Key=blob.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            raise not_found(f"Blob content is gone: {blob.name}") from None
        raise
    content_type = blob.mime_type or "application/octet-stream"
    if blob.encoding:
        content_type += f";charset={blob.encoding}"
    disposition = f"attachment; filename*=UTF-8''{quote(blob.name)}"
    return Response(
        HTTPStatus.OK,
        answer["Body"].iter_chunks(STREAM_CHUNK),
        content_type,
        int(answer["ContentLength"]),
        {"Content-Disposition": disposition},
    )
