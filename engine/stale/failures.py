"""Failed S3 calls of the stale-upload scanners, each said in one line; access denied names the
IAM permission that is missing and the resource it is needed on."""

from __future__ import annotations

from engine.errors import EXPIRED_CREDENTIAL_CODES, NxupError, StorageError, s3_error_code, translate_s3_error

_DENIED_CODES = frozenset({"AccessDenied", "Forbidden", "403", "AllAccessDisabled"})
_GONE_CODES = frozenset({"NoSuchUpload", "404", "NoSuchKey"})
# Keys S3 does not take (unknown, expired, or a secret that does not match).
_REJECTED_CODES = EXPIRED_CREDENTIAL_CODES | {"SignatureDoesNotMatch"}
# Whose keys a scanner signs with, as a failure names them.
ADMIN_KEYS = "the admin keys"
BATCH_CREDENTIALS = "the batch credentials"

# The IAM action each call needs, and whether it applies to the bucket or to an object.
_PERMISSIONS: dict[str, tuple[str, bool]] = {
    "list_multipart_uploads": ("s3:ListBucketMultipartUploads", False),
    "list_parts": ("s3:ListMultipartUploadParts", True),
    "abort_multipart_upload": ("s3:AbortMultipartUpload", True),
    "get_bucket_lifecycle_configuration": ("s3:GetLifecycleConfiguration", False),
    "put_bucket_lifecycle_configuration": ("s3:PutLifecycleConfiguration", False),
}
_ACTIONS = {
    "list_multipart_uploads": "listing multipart uploads",
    "list_parts": "listing the parts of a multipart upload",
    "abort_multipart_upload": "aborting a multipart upload",
    "get_bucket_lifecycle_configuration": "reading the bucket's lifecycle rules",
    "put_bucket_lifecycle_configuration": "writing the bucket's lifecycle rules",
}


class StaleError(StorageError):
    """Listing or cleaning up multipart uploads failed; `str()` is one line naming the cause."""


def is_denied(exc: BaseException) -> bool:
    return s3_error_code(exc) in _DENIED_CODES


def is_gone(exc: BaseException) -> bool:
    """The upload is no longer open (completed or aborted meanwhile)."""
    return s3_error_code(exc) in _GONE_CODES


def describe_failure(exc: BaseException, *, operation: str, bucket: str, key: str | None = None,
                     keys: str = ADMIN_KEYS) -> NxupError:
    """One line for a failed S3 call; access denied names the missing permission, keys S3 does
    not take are named as whose they are (`keys`)."""
    if isinstance(exc, NxupError):
        return exc
    code = s3_error_code(exc)
    action = _ACTIONS.get(operation, operation.replace("_", " "))
    if code in _DENIED_CODES and operation in _PERMISSIONS:
        permission, on_object = _PERMISSIONS[operation]
        resource = f"arn:aws:s3:::{bucket}/{key}" if on_object and key else f"arn:aws:s3:::{bucket}"
        return StaleError(f"S3 denied {action}: the credentials need {permission} on {resource}", code=code)
    if code in _REJECTED_CODES:
        return StaleError(f"S3 rejected {keys} while {action} ({code})", code=code)
    if code == "NoSuchBucket":
        return StaleError(f"S3 has no bucket named {bucket}", code=code)
    translated = translate_s3_error(exc, action=action)
    return StaleError(str(translated), code=getattr(translated, "code", code))
