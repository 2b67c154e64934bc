"""The S3 side: one shared boto3 client per S3 location, and the few calls an upload makes.

The client is tuned for the client's own CPU, which on a small machine is taken from the S3
server: no SHA-256 of payloads (`payload_signing_enabled=False`; integrity comes from the
per-part checksum), bodies streamed from file slices, and botocore's standard retry mode
(exponential backoff with jitter on 5xx, SlowDown, throttling and dropped connections).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialResolver
from botocore.exceptions import HTTPClientError

from .credentials import ThreadCredentialProvider
from .errors import Interrupted, NxupError
from .slices import FileSlice

# urllib3 reads a streamed body 16 KiB at a time: a Python call, a pread and a send for every
# 16 KiB of a part. Larger blocks cut that CPU (about 0.1 s per GiB); they stay small enough for
# pause, cancel and the bandwidth cap, which act between blocks.
SEND_BLOCK_SIZE = 256 * 1024
# botocore asks for `100 Continue` before every streamed body: a round trip more, and an interim
# answer read one byte per system call. It pays off only where a refusal spares sending a large
# body; smaller bodies go without it.
EXPECT_CONTINUE_FROM = 1024 * 1024


class ChecksumAlgorithm(StrEnum):
    CRC32 = "CRC32"
    CRC32C = "CRC32C"
    SHA1 = "SHA1"
    SHA256 = "SHA256"
    NONE = "none"

    @property
    def response_key(self) -> str:
        return f"Checksum{self.value}"

    @property
    def available(self) -> bool:
        """botocore computes CRC32C only with its CRT extension (`botocore[crt]`)."""
        return self is not ChecksumAlgorithm.CRC32C or importlib.util.find_spec("awscrt") is not None


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where a batch's objects go, from the batch's extraInfo."""

    bucket: str
    region: str
    endpoint: str | None
    path_style: bool
    accelerate: bool

    @classmethod
    def from_extra_info(cls, info: dict[str, Any]) -> S3Location:
        return cls(
            bucket=str(info["bucket"]),
            region=str(info.get("region") or "us-east-1"),
            endpoint=info.get("endpoint") or None,
            path_style=bool(info.get("usePathStyleAccess", False)),
            accelerate=bool(info.get("useS3Accelerate", False)),
        )


@dataclass(frozen=True, slots=True)
class S3Tuning:
    max_connections: int = 16
    max_attempts: int = 5
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0


def _body_of(request: Any) -> FileSlice | None:
    # `data`, not `body`: AWSRequest.body prepares a copy of the whole request on each read.
    body = getattr(request, "data", None)
    raw = getattr(body, "_raw", body)  # botocore's aws-chunked wrapper keeps the slice as _raw
    return raw if isinstance(raw, FileSlice) else None


def _signal_not_transferring(request: Any, **_: Any) -> None:
    body = _body_of(request)
    if body is not None:
        body.signal_not_transferring()


def _signal_transferring(request: Any, **_: Any) -> None:
    body = _body_of(request)
    if body is not None:
        body.signal_transferring()


def _continue_only_for_large_bodies(params: dict[str, Any], **_: Any) -> None:
    headers = params.get("headers") or {}
    body = params.get("body")
    raw = getattr(body, "_raw", body)
    if "Expect" in headers and isinstance(raw, FileSlice) and len(raw) < EXPECT_CONTINUE_FROM:
        del headers["Expect"]


def _stop_retrying_when_interrupted(
    caught_exception: BaseException | None = None,
    request_dict: dict[str, Any] | None = None,
    response: tuple[Any, Any] | None = None,
    **_: Any,
) -> None:
    """botocore retries any error raised while sending; a pause, a cancel or a local file
    problem raised by the body must not be retried."""
    if caught_exception is None and response is not None and response[0].status_code < 300:
        return  # answered: nothing to retry (a part a pause let finish keeps its answer)
    if isinstance(caught_exception, HTTPClientError):
        cause = caught_exception.kwargs.get("error")
        if isinstance(cause, (Interrupted, NxupError)):
            raise cause
    body = (request_dict or {}).get("body")
    raw = getattr(body, "_raw", body)
    if isinstance(raw, FileSlice):
        raw.control.check()


class S3Clients:
    """One thread-safe client per S3 location, shared by every batch and worker."""

    def __init__(self, tuning: S3Tuning) -> None:
        self.tuning = tuning
        self._lock = threading.Lock()
        self._clients: dict[tuple[S3Location, bool], Any] = {}
        self._session = botocore.session.Session()
        self._session.register_component(
            "credential_provider", CredentialResolver(providers=[ThreadCredentialProvider()])
        )

    def client(self, location: S3Location, *, retried: bool = True) -> Any:
        """The client for `location`. With `retried=False`, botocore sends each call once: for a
        call that S3 may have acted on before its answer was lost (starting a multipart upload),
        where sending it again blindly would start a second one."""
        with self._lock:
            client = self._clients.get((location, retried))
            if client is None:
                client = self._create(location, retried=retried)
                self._clients[(location, retried)] = client
            return client

    def close(self) -> None:
        """Close every client's connections (a server waiting for them to go idle can stop)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _create(self, location: S3Location, *, retried: bool) -> Any:
        tuning = self.tuning
        config = Config(
            region_name=location.region,
            max_pool_connections=tuning.max_connections,
            # botocore's `max_attempts` counts retries; `total_max_attempts` counts the first too.
            retries={"mode": "standard", "total_max_attempts": tuning.max_attempts + 1 if retried else 1},
            connect_timeout=tuning.connect_timeout_s,
            read_timeout=tuning.read_timeout_s,
            # Checksums only where a call names its algorithm: each file keeps the algorithm its
            # upload was started with, whatever this run's default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={
                "addressing_style": "path" if location.path_style else "auto",
                "use_accelerate_endpoint": location.accelerate,
                "payload_signing_enabled": False,
            },
        )
        client = self._session.create_client(
            "s3", region_name=location.region, endpoint_url=location.endpoint, config=config
        )
        _send_in_large_blocks(client)
        events = client.meta.events
        events.register_last("before-call.s3", _continue_only_for_large_bodies, unique_id="nxup-expect-large")
        events.register_first("request-created.s3", _signal_not_transferring, unique_id="nxup-not-sending")
        events.register_last("request-created.s3", _signal_transferring, unique_id="nxup-sending")
        events.register_first("needs-retry.s3", _stop_retrying_when_interrupted, unique_id="nxup-no-retry")
        return client


def _send_in_large_blocks(client: Any) -> None:
    """Have the client's connections read bodies in `SEND_BLOCK_SIZE` blocks. botocore has no
    setting for it: its urllib3 pool manager takes it as a connection argument, before the
    first connection is made (when botocore's internals differ, the default stays)."""
    pool_kw = getattr(getattr(http_session_of(client), "_manager", None), "connection_pool_kw", None)
    if isinstance(pool_kw, dict):
        pool_kw["blocksize"] = SEND_BLOCK_SIZE


def http_session_of(client: Any) -> Any:
    """The botocore client's HTTP session (its urllib3 pools, proxies, CA bundle, timeouts), or
    None when botocore's internals are not the known ones."""
    return getattr(getattr(client, "_endpoint", None), "http_session", None)


def checksum_args(checksum: ChecksumAlgorithm) -> dict[str, Any]:
    return {} if checksum is ChecksumAlgorithm.NONE else {"ChecksumAlgorithm": checksum.value}


def list_all_parts(client: Any, *, bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
    """Every part S3 holds for a multipart upload (pages through 1,000 at a time)."""
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        answer = client.list_parts(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker, MaxParts=1000
        )
        parts.extend(answer.get("Parts", []))
        if not answer.get("IsTruncated"):
            return parts
        next_marker = int(answer.get("NextPartNumberMarker") or 0)
        if next_marker <= marker:
            return parts
        marker = next_marker
