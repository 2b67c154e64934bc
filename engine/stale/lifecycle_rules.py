"""The bucket's lifecycle rules: whether an `AbortIncompleteMultipartUpload` rule removes stale
uploads by itself, and adding nxup's own rule next to the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.errors import s3_error_code

from .failures import describe_failure

ABORT_RULE_ID = "nxup-abort-incomplete-multipart-uploads"


@dataclass(frozen=True, slots=True)
class LifecycleStatus:
    rules: list[dict[str, Any]]
    abort_days: int | None  # the shortest enabled bucket-wide AbortIncompleteMultipartUpload rule

    @property
    def has_abort_rule(self) -> bool:
        return self.abort_days is not None

    def describe(self) -> str:
        if self.abort_days is not None:
            return f"lifecycle: incomplete multipart uploads are aborted {self.abort_days} day(s) after they start"
        partial = any(_abort_days(r) is not None for r in self.rules)
        if partial:
            return "lifecycle: an AbortIncompleteMultipartUpload rule covers only part of the bucket"
        return "lifecycle: no AbortIncompleteMultipartUpload rule — stale uploads stay until aborted"


def _abort_days(rule: dict[str, Any]) -> int | None:
    if rule.get("Status") != "Enabled":
        return None
    days = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
    return int(days) if days is not None else None


def _covers_bucket(rule: dict[str, Any]) -> bool:
    rule_filter = rule.get("Filter")
    if rule_filter is None:
        return not rule.get("Prefix")
    return set(rule_filter) <= {"Prefix"} and not rule_filter.get("Prefix")


def lifecycle_status(client: Any, bucket: str) -> LifecycleStatus:
    try:
        rules = list(client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules") or [])
    except (ClientError, BotoCoreError) as exc:
        if s3_error_code(exc) == "NoSuchLifecycleConfiguration":
            rules = []
        else:
            raise describe_failure(exc, operation="get_bucket_lifecycle_configuration", bucket=bucket) from exc
    days = [d for r in rules if _covers_bucket(r) and (d := _abort_days(r)) is not None]
    return LifecycleStatus(rules=rules, abort_days=min(days) if days else None)


def add_abort_rule(client: Any, bucket: str, days: int) -> LifecycleStatus:
    """Add (or update nxup's own) bucket-wide AbortIncompleteMultipartUpload rule, keeping
    every other rule as it is: PutBucketLifecycleConfiguration replaces the whole set."""
    if days < 1:
        raise ValueError("the rule needs at least 1 day")
    existing = lifecycle_status(client, bucket).rules
    rules = [r for r in existing if r.get("ID") != ABORT_RULE_ID]
    rules.append({
        "ID": ABORT_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    })
    try:
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    except (ClientError, BotoCoreError) as exc:
        raise describe_failure(exc, operation="put_bucket_lifecycle_configuration", bucket=bucket) from exc
    return lifecycle_status(client, bucket)
