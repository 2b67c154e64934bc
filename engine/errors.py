"""Engine exceptions, grouped by cause, and the one place where botocore's and the `nuxeo`
client's exceptions are translated into them, so callers show a cause, not a traceback."""

from __future__ import annotations

import errno
import socket
import ssl

import requests
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from nuxeo import exceptions as nx


class NxupError(Exception):
    """Base class: `str(error)` is one line a user can read. Every error is under one cause
    group below (the CLI shows one line for any of them); `ServerError` and `StorageError` say
    which server answered, across causes.

    `retryable`: sending the same request again may succeed. `code`: the server's error code,
    when it gave one.
    """

    retryable: bool = True

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


# == causes ====================================================================================
class TransientError(NxupError):
    """The network or a server failed for now: the same upload may succeed later (`nxup resume`)."""


class CredentialsError(NxupError):
    """The user name, password or token, or the S3 keys, were refused or may not do this."""

    retryable = False


class NotFoundError(NxupError):
    """What was asked for is not there: a folder, a batch, a multipart upload."""

    retryable = False


class ConflictError(NxupError):
    """The server holds something in the way: a name taken, the same request still running."""

    retryable = False


class LocalFileError(NxupError):
    """The local file cannot be uploaded as given, or changed while it was."""

    retryable = False


class LocalStateError(NxupError):
    """The state database cannot be used or written."""

    retryable = False


CAUSES: tuple[type[NxupError], ...] = (
    TransientError, CredentialsError, NotFoundError, ConflictError, LocalFileError, LocalStateError,
)


# == which server answered ======================================================================
class ServerError(NxupError):
    """The Nuxeo server refused or failed a request (see the cause group for why)."""


class StorageError(NxupError):
    """S3 refused or failed a request (see the cause group for why)."""


# == local file =================================================================================
class InputError(LocalFileError):
    """The local file cannot be uploaded as given (missing, unreadable, not a regular file...)."""


class FileChanged(LocalFileError):
    """The local file changed since its upload started: it starts over."""

    retryable = True


# == Nuxeo ======================================================================================
class ServerFailed(ServerError, TransientError):
    """Nuxeo failed a request (5xx) or answered what nxup cannot read."""


class ServerUnreachable(ServerError, TransientError):
    """No answer from the Nuxeo server: refused, timed out, or the connection dropped."""


class ServerUnsupported(ServerError, ConflictError):
    """The Nuxeo server lacks what nxup needs (an S3 upload handler)."""


class RequestStillRunning(ServerError, ConflictError):
    """The same request (same Idempotency-Key) still runs on the server: asked again later,
    it gets that request's answer."""

    retryable = True


class AuthenticationError(ServerError, CredentialsError):
    pass


class NuxeoNotFound(ServerError, NotFoundError):
    """Nuxeo has no such document or folder (404)."""


class BatchGone(ServerError, NotFoundError):
    """The upload batch no longer exists on the server (expired or dropped): a new one takes over."""

    retryable = True


# == S3 =========================================================================================
class StorageFailed(StorageError, TransientError):
    """S3 failed a request."""


class StorageUnreachable(StorageError, TransientError):
    """The connection to S3 was refused, timed out or dropped."""


class CredentialsExpired(StorageError, CredentialsError):
    """S3 rejected the batch's temporary credentials: refresh them and retry."""

    retryable = True


class AccessDenied(StorageError, CredentialsError):
    """S3 refused the call to these credentials. A stock Nuxeo's batch credentials allow
    `s3:PutObject` only: listing parts, aborting and reading objects are refused, by design."""


class UploadGone(StorageError, NotFoundError):
    """The multipart upload no longer exists on S3: sending again cannot help; a new round
    starts a new one."""


class IntegrityError(StorageError, TransientError):
    """What S3 stored does not match what was sent (damaged on the way, or S3 lacks parts it
    acknowledged): not sent again as is, but the upload may succeed on a new round."""

    retryable = False


# == journal ====================================================================================
class StateError(LocalStateError):
    """The state database cannot be used or written (written by a newer nxup, not a database,
    locked by another program, disk full...). `str()` names the file and what to do."""


class Interrupted(Exception):
    """Raised inside a body read when the file was paused or cancelled: stops the send at once.

    Not an NxupError: it is a control signal, never shown to the user as a failure.
    """


# S3 answers that mean "these temporary credentials are no longer good". SeaweedFS says
# InvalidAccessKeyId once an STS session expires; AWS says ExpiredToken.
EXPIRED_CREDENTIAL_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "TokenRefreshRequired",
     "InvalidToken", "RequestExpired"}
)


def s3_error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def translate_s3_error(exc: BaseException, *, action: str) -> NxupError:
    """Turn a botocore exception into a one-line engine error."""
    if isinstance(exc, NxupError):
        return exc
    code = s3_error_code(exc)
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or code
        if code in EXPIRED_CREDENTIAL_CODES:
            return CredentialsExpired(f"S3 rejected the upload credentials while {action} ({code})", code=code)
        if code in ("NoSuchUpload",):
            return UploadGone(f"the multipart upload no longer exists on S3 ({action})", code=code)
        if code in ("AccessDenied", "Forbidden", "403"):
            return AccessDenied(f"S3 denied access while {action}: {message}", code=code)
        if code in ("InvalidPart", "BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"):
            return IntegrityError(f"S3 reported corrupt data while {action}: {message}", code=code)
        return StorageFailed(f"S3 error while {action}: {code}: {message}", code=code)
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, HTTPClientError)):
        return StorageUnreachable(f"lost the connection to S3 while {action}")
    if isinstance(exc, BotoCoreError):
        return StorageFailed(f"S3 client error while {action}: {exc}")
    return StorageFailed(f"unexpected error while {action}: {exc}")


def _server_message(exc: nx.HTTPError) -> str:
    # Not every HTTPError of the client carries a message (OngoingRequestError has none).
    message = getattr(exc, "message", None)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    message = str(message or "").strip().splitlines()[0] if message else ""
    return message[:200]


def translate_nuxeo_error(exc: BaseException, *, action: str) -> NxupError:
    """Turn a `nuxeo` client or requests exception into a one-line engine error."""
    if isinstance(exc, NxupError):
        return exc
    if isinstance(exc, nx.Unauthorized):
        return AuthenticationError("Nuxeo rejected the user name or password (401)")
    if isinstance(exc, nx.Forbidden):
        return AuthenticationError(f"Nuxeo refused {action}: permission denied (403)")
    if isinstance(exc, nx.OngoingRequestError):
        # 409 for an Idempotency-Key whose first request still runs: repeated later, it gets
        # that request's answer.
        return RequestStillRunning(f"Nuxeo is still running the same request sent earlier while {action} (409); "
                                   "`nxup resume` asks again")
    if isinstance(exc, nx.HTTPError):
        status = getattr(exc, "status", None)
        detail = _server_message(exc)
        suffix = f": {detail}" if detail else ""
        if status == 404:
            return NuxeoNotFound(f"Nuxeo found nothing while {action} (404){suffix}")
        return ServerFailed(f"Nuxeo failed while {action} ({status}){suffix}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ServerUnreachable(f"cannot reach the Nuxeo server while {action}{connection_cause(exc)}")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return ServerUnreachable(f"lost the connection to the Nuxeo server while {action}")
    if isinstance(exc, requests.exceptions.Timeout):
        return ServerUnreachable(f"the Nuxeo server timed out while {action}")
    if isinstance(exc, (ValueError, KeyError)):
        return ServerFailed(f"Nuxeo sent an unexpected answer while {action}")
    if isinstance(exc, nx.NuxeoError):
        return ServerFailed(f"Nuxeo client error while {action}: {exc}")
    return ServerFailed(f"unexpected error while {action}: {exc}")


def connection_cause(exc: BaseException) -> str:
    """Why a connection failed, in a few words (": the host name is unknown"), from the chain of
    causes under a requests or urllib3 error; "" when none is recognised."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, socket.gaierror):
            return ": the host name is unknown (check the URL)"
        if isinstance(error, ConnectionRefusedError):
            return ": the connection was refused (nothing listens at that host and port)"
        if isinstance(error, (TimeoutError, socket.timeout)):
            return ": the connection timed out"
        if isinstance(error, ssl.SSLCertVerificationError):
            return ": its TLS certificate is not trusted (REQUESTS_CA_BUNDLE names a CA bundle)"
        if isinstance(error, ssl.SSLError):
            return f": TLS failed ({error.reason or error})"
        text = str(error)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return ": the host name is unknown (check the URL)"
        if "Connection refused" in text:
            return ": the connection was refused (nothing listens at that host and port)"
        pending.extend(e for e in (error.__cause__, error.__context__, *getattr(error, "args", ()))
                       if isinstance(e, BaseException))
        reason = getattr(error, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return ""


def describe_os_error(exc: OSError) -> str:
    """A short cause for a local file error, without the path (the caller names the file)."""
    reasons = {
        errno.ENOENT: "no such file or directory",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ELOOP: "too many levels of symbolic links (a symlink loop)",
        errno.EISDIR: "is a directory",
        errno.ENAMETOOLONG: "file name too long",
        errno.EIO: "input/output error while reading",
    }
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))


__all__ = [
    "AccessDenied",
    "AuthenticationError",
    "BatchGone",
    "CAUSES",
    "ConflictError",
    "CredentialsError",
    "CredentialsExpired",
    "FileChanged",
    "InputError",
    "IntegrityError",
    "Interrupted",
    "LocalFileError",
    "LocalStateError",
    "NotFoundError",
    "NuxeoNotFound",
    "NxupError",
    "RequestStillRunning",
    "ServerError",
    "ServerFailed",
    "ServerUnreachable",
    "ServerUnsupported",
    "StateError",
    "StorageError",
    "StorageFailed",
    "StorageUnreachable",
    "TransientError",
    "UploadGone",
    "connection_cause",
    "describe_os_error",
    "s3_error_code",
    "translate_nuxeo_error",
    "translate_s3_error",
]
