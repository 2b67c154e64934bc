"""Stale multipart uploads: find them, explain them, abort them.

A multipart upload that is neither completed nor aborted keeps its parts on S3, and they are
billed, forever unless a lifecycle rule (`AbortIncompleteMultipartUpload`) removes them. Two
ways in, over one scanner base (`scanner`):

- `AdminScanner` (`admin`): an S3 client with admin rights on the bucket lists every upload
  under a prefix, counts parts and aborts; `access` makes that client, `lifecycle_rules` reads
  and writes the bucket's rules.
- `TrackedScanner` (`tracked`): through Nuxeo only. Batch credentials cannot list the bucket, so
  only the uploads nxup itself recorded in its state database are seen; each is checked and
  aborted with its own batch's fresh credentials.

Both cross-check with the state database (`uploads`): which local file an upload belongs to and
whether `nxup resume` can still finish it. `cleanup.abort_obsolete` is the start-up clean-up of
nxup's own uploads (file gone, or left unresumed too long); it never touches anything else.
"""

from .access import S3AdminConfig, StaleSource
from .admin import AdminScanner, iter_upload_pages
from .cleanup import CleanupEntry, abort_obsolete, obsolete_reason
from .failures import StaleError, describe_failure
from .lifecycle_rules import ABORT_RULE_ID, LifecycleStatus, add_abort_rule, lifecycle_status
from .outcomes import AbortOutcome, AbortReport, AbortResult
from .scanner import Scanner
from .tracked import TrackedScanner
from .uploads import (
    DEFAULT_STALE_AFTER,
    SAFE_ABORT_AGE,
    Clock,
    StaleUpload,
    TrackedInfo,
    parse_age,
    total_bytes,
    utc_now,
)
from .wording import abort_question, report_line

__all__ = [
    "ABORT_RULE_ID",
    "DEFAULT_STALE_AFTER",
    "SAFE_ABORT_AGE",
    "AbortOutcome",
    "AbortReport",
    "AbortResult",
    "AdminScanner",
    "CleanupEntry",
    "Clock",
    "LifecycleStatus",
    "S3AdminConfig",
    "Scanner",
    "StaleError",
    "StaleSource",
    "StaleUpload",
    "TrackedInfo",
    "TrackedScanner",
    "abort_obsolete",
    "abort_question",
    "add_abort_rule",
    "describe_failure",
    "iter_upload_pages",
    "lifecycle_status",
    "obsolete_reason",
    "parse_age",
    "report_line",
    "total_bytes",
    "utc_now",
]
