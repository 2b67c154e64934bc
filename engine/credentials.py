"""Temporary S3 credentials of upload batches.

Every Nuxeo batch has its own STS credentials, limited to its key prefix and refreshed through
`POST /upload/{batchId}/refreshToken`. Creating a boto3 client per batch costs several
milliseconds of CPU, which would dominate uploads of many small files; so one S3 client serves
all batches, and the credentials used to sign a request are the ones the calling thread set
with `signing_with()` (botocore signs in the calling thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.credentials import (
    CredentialProvider,
    Credentials,
    ReadOnlyCredentials,
    RefreshableCredentials,
)

from .errors import CredentialsExpired
from .redaction import remember_secret

# botocore refreshes 15 (advisory) and 10 (mandatory) minutes before expiry by default;
# short-lived credentials need windows proportional to their lifetime.
_ADVISORY_S = 15 * 60
_MANDATORY_S = 10 * 60
_MIN_ADVISORY_S = 30
_MIN_MANDATORY_S = 10


@dataclass(frozen=True, slots=True)
class CredentialSet:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def __post_init__(self) -> None:
        # Masked in any log line from now on (botocore's debug log shows signing headers).
        for secret in (self.access_key_id, self.secret_access_key, self.session_token):
            remember_secret(secret)

    @classmethod
    def from_nuxeo(cls, info: dict[str, Any]) -> CredentialSet:
        """Parse the keys Nuxeo uses in extraInfo and in the refreshToken answer."""
        try:
            expiration_ms = int(info["expiration"])
            return cls(
                access_key_id=str(info["awsSecretKeyId"]),
                secret_access_key=str(info["awsSecretAccessKey"]),
                session_token=str(info.get("awsSessionToken") or ""),
                expiration=datetime.fromtimestamp(expiration_ms / 1000, tz=UTC),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CredentialsExpired("Nuxeo sent no usable S3 credentials for the batch") from exc

    def lifetime_s(self) -> float:
        return (self.expiration - datetime.now(UTC)).total_seconds()

    def as_botocore_metadata(self) -> dict[str, str]:
        return {
            "access_key": self.access_key_id,
            "secret_key": self.secret_access_key,
            "token": self.session_token,
            "expiry_time": self.expiration.isoformat(),
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BatchCredentials(RefreshableCredentials):  # type: ignore[misc]  # botocore is untyped
    """One batch's credentials; botocore refreshes them before they expire."""

    @classmethod
    def create(
        cls, initial: CredentialSet, refresh: Callable[[], CredentialSet]
    ) -> BatchCredentials:
        lifetime = max(initial.lifetime_s(), 1.0)
        return cls(
            access_key=initial.access_key_id,
            secret_key=initial.secret_access_key,
            token=initial.session_token,
            expiry_time=initial.expiration,
            refresh_using=lambda: refresh().as_botocore_metadata(),
            method="nuxeo-batch",
            time_fetcher=_utc_now,
            # Credentials handed out nearly expired (a resumed batch) must not leave the windows
            # at zero for the fresh ones that follow: a floor keeps refreshes ahead of expiry.
            advisory_timeout=min(_ADVISORY_S, max(int(lifetime * 0.25), _MIN_ADVISORY_S)),
            mandatory_timeout=min(_MANDATORY_S, max(int(lifetime * 0.1), _MIN_MANDATORY_S)),
        )

    def force_refresh(self) -> None:
        """Fetch new credentials now (after S3 rejected the current ones)."""
        with self._refresh_lock:
            self._protected_refresh(is_mandatory=True)


_current = threading.local()


@contextmanager
def signing_with(credentials: BatchCredentials) -> Iterator[None]:
    """Sign the S3 requests this thread makes inside the block with `credentials`."""
    previous = getattr(_current, "credentials", None)
    _current.credentials = credentials
    try:
        yield
    finally:
        _current.credentials = previous


class _ThreadCredentials(Credentials):  # type: ignore[misc]  # botocore is untyped
    """What the shared client signs with: the calling thread's batch credentials."""

    def __init__(self) -> None:
        super().__init__("unset", "unset", None)

    def _resolve(self) -> Credentials:
        credentials = getattr(_current, "credentials", None)
        if credentials is None:
            raise RuntimeError("an S3 request was made outside signing_with()")
        return credentials

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return self._resolve().get_frozen_credentials()


class ThreadCredentialProvider(CredentialProvider):  # type: ignore[misc]  # botocore is untyped
    METHOD = "nxup-batch"
    CANONICAL_NAME = "nxup-batch"

    def load(self) -> Credentials:
        return _ThreadCredentials()
