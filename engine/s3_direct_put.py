"""A small object's PUT, signed and sent without botocore's per-call machinery.

For a 64 KiB object botocore spends about 0.5 ms of CPU per call on work a plain PUT does not
need (parameter validation, serialization, endpoint rules, a dozen event hooks, response
parsing): as much as the rest of the file's upload. Below `DIRECT_PUT_BELOW`, nxup signs the
PUT with botocore's own SigV4 signer and sends it on the client's own HTTP session (its
connection pool, proxies, CA bundle and timeouts), to the URL botocore resolves for the bucket.

Only a 200 is taken from this path. Anything else (an error answer, expired credentials, a
dropped connection) gives None and the caller sends the object through botocore, whose retries
and error parsing decide: this path never judges an error. A pause, a cancel or a local file
problem raised by the body goes up as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import BotoCoreError, HTTPClientError

from .checksums import checksum_of
from .errors import Interrupted, NxupError
from .s3 import ChecksumAlgorithm, http_session_of
from .slices import FileSlice

# Larger bodies go through botocore: its per-call cost is small beside their sending, and it
# asks for `100 Continue` first, which spares sending a large body S3 would refuse.
DIRECT_PUT_BELOW = 1024 * 1024


def _checksum_headers(algorithm: ChecksumAlgorithm, data: bytes) -> dict[str, str] | None:
    """The headers botocore sends for the algorithm; None for one computed only by botocore."""
    if algorithm is ChecksumAlgorithm.NONE:
        return {}
    checksum = checksum_of(data, algorithm)
    if checksum is None:
        return None  # CRC32C needs botocore's CRT extension
    return {f"x-amz-checksum-{algorithm.value.lower()}": checksum, "x-amz-sdk-checksum-algorithm": algorithm.value}


class _NoBody:
    """The raw answer of a probe that was never sent."""

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield b""


class DirectPut:
    """Direct PUTs through one botocore client's HTTP session."""

    def __init__(self, client: Any, http_session: Any) -> None:
        self._client = client
        self._http_session = http_session
        self._config = client.meta.config
        self._region = client.meta.region_name
        self._lock = threading.Lock()
        self._bucket_urls: dict[str, str] = {}
        self._probing = threading.local()
        client.meta.events.register_first("before-send.s3.PutObject", self._catch_probe)

    @classmethod
    def for_client(cls, client: Any) -> DirectPut | None:
        """None when botocore's internals are not the ones this path knows."""
        http_session = http_session_of(client)
        if http_session is None or not callable(getattr(http_session, "send", None)):
            return None
        return cls(client, http_session)

    def object_url(self, bucket: str, key: str) -> str:
        """The object's URL as botocore addresses it (path or virtual host, custom endpoint,
        region, accelerate). Resolved once per bucket from a PUT of the key built by the client
        and caught before it leaves (were it ever sent, it would only write the very object
        about to be written); must be called where the client can sign
        (`credentials.signing_with`)."""
        quoted = quote(key, safe="/~")
        with self._lock:
            base = self._bucket_urls.get(bucket)
        if base is None:
            self._probing.url = None
            self._probing.active = True
            try:
                self._client.put_object(Bucket=bucket, Key=key, Body=b"")
            finally:
                self._probing.active = False
            parts = urlsplit(self._probing.url or "")
            if not parts.path.endswith("/" + quoted) or parts.query:
                raise ValueError(f"unexpected object URL form: {parts.scheme}://{parts.netloc}{parts.path}")
            base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(quoted)]}"
            with self._lock:
                self._bucket_urls[bucket] = base
        return base + quoted

    def _catch_probe(self, request: Any, **_: Any) -> AWSResponse | None:
        """The probe's request is answered here, never sent; every other request goes on."""
        if not getattr(self._probing, "active", False):
            return None
        self._probing.url = request.url
        return AWSResponse(request.url, 200, {}, _NoBody())

    def put(self, *, url: str, body: FileSlice, content_type: str, algorithm: ChecksumAlgorithm,
            credentials: Any) -> str | None:
        """Send `body` to `url`, signed with `credentials` (botocore's frozen credentials);
        the object's ETag, or None when it must go through botocore."""
        data = body.read()  # not a send: the body counts once the request is signed
        body.seek(0)
        checksums = _checksum_headers(algorithm, data)
        if checksums is None:
            return None
        request = AWSRequest(
            method="PUT",
            url=url,
            data=body,
            headers={"Content-Type": content_type, "Content-Length": str(len(body)), **checksums},
        )
        # The client's own settings decide the payload hash (`payload_signing_enabled`).
        request.context["client_config"] = self._config
        S3SigV4Auth(credentials, "s3", self._region).add_auth(request)
        body.signal_transferring()
        try:
            response = self._http_session.send(request.prepare())
        except HTTPClientError as exc:
            cause = exc.kwargs.get("error")
            if isinstance(cause, (Interrupted, NxupError)):
                raise cause from None
            return self._not_sent(body)
        except BotoCoreError:
            return self._not_sent(body)
        finally:
            body.signal_not_transferring()
        if response.status_code != 200 or not response.headers.get("ETag"):
            return self._not_sent(body)
        return str(response.headers["ETag"])

    @staticmethod
    def _not_sent(body: FileSlice) -> None:
        body.seek(0)


__all__ = ["DIRECT_PUT_BELOW", "DirectPut"]
