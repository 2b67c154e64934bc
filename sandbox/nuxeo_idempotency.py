"""Idempotent POSTs, as Nuxeo's `NuxeoIdempotentFilter` (since 11.5) runs them.

A POST carrying `Idempotency-Key: K` runs once. Its answer is stored (in the server's SQLite
store, for a day) unless it is an error, so a repeat with K gets the stored status, headers and
body back instead of running again; while the first is still running a repeat gets an empty 409.
Every such answer carries the `Idempotency-Key` header back.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from .nuxeo_http import Handler, Request, Response
from .nuxeo_store import Claim, Store, StoredAnswer

HEADER = "Idempotency-Key"
TTL_S = 24 * 3600.0
# The filter keeps answers up to this size; a larger one is sent but not stored, and its key
# stays marked as running until the TTL ends, as in the server.
MAX_STORED_BYTES = 5 * 1024 * 1024


class IdempotentRequests:
    def __init__(self, store: Callable[[], Store], clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    def __call__(self, request: Request, handler: Handler) -> Response:
        key = request.headers.get(HEADER)
        # The filter skips the methods that are idempotent already; POST is the one other here.
        if key is None or request.method != "POST":
            return handler(request)
        claim = self._store().idempotency_keys.claim(key, now=self._clock(), ttl_s=TTL_S)
        if claim is Claim.RUNNING:
            return Response(HTTPStatus.CONFLICT, headers={HEADER: key})
        if isinstance(claim, StoredAnswer):
            return _replay(claim, key)
        return self._run_once(request, handler, key)

    def _run_once(self, request: Request, handler: Handler, key: str) -> Response:
        try:
            response = _materialized(handler(request))
        except BaseException:
            self._store().idempotency_keys.release(key)
            raise
        assert isinstance(response.body, bytes)
        if response.status >= HTTPStatus.BAD_REQUEST:
            self._store().idempotency_keys.release(key)  # an error may be retried with the same key
        elif len(response.body) <= MAX_STORED_BYTES:
            answer = StoredAnswer(response.status, _headers_of(response), response.body)
            self._store().idempotency_keys.keep_answer(key, answer, expires=self._clock() + TTL_S)
        response.headers[HEADER] = key
        return response


def _materialized(response: Response) -> Response:
    """The response with its body in memory, as the filter copies it before storing it."""
    if isinstance(response.body, bytes):
        return response
    body = b"".join(response.body)
    return Response(response.status, body, response.content_type, len(body), response.headers)


def _headers_of(response: Response) -> dict[str, str]:
    headers = dict(response.headers)
    if response.content_type:
        headers["Content-Type"] = response.content_type
    return headers


def _replay(answer: StoredAnswer, key: str) -> Response:
    headers = dict(answer.headers)
    content_type = headers.pop("Content-Type", None)
    return Response(answer.status, answer.body, content_type, headers={**headers, HEADER: key})
