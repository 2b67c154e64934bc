"""Every multipart upload under a prefix of a bucket, through an S3 client with bucket-wide
rights (`s3:ListBucketMultipartUploads`, `s3:ListMultipartUploadParts`, `s3:AbortMultipartUpload`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.s3 import list_all_parts
from engine.state import StateStore, UploadRecord

from .failures import StaleError, describe_failure
from .scanner import PART_COUNT_WORKERS, Scanner
from .uploads import Clock, StaleUpload, TrackedInfo, records_by_upload_id, tracked_info, utc_now

PAGE_SIZE = 1000  # S3's own maximum per ListMultipartUploads page


def iter_upload_pages(client: Any, bucket: str, prefix: str = "", *,
                      page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
    """Every page of ListMultipartUploads under `prefix`.

    The markers sent back are exactly the ones the server returned: AWS returns both
    NextKeyMarker and NextUploadIdMarker, some S3-compatible servers (SeaweedFS) order by
    upload id and return only NextUploadIdMarker, and a guessed KeyMarker makes those skip
    uploads. A server whose markers do not advance ends the listing instead of looping.
    """
    markers: dict[str, str] = {}
    seen_markers: set[tuple[str, str]] = set()
    while True:
        try:
            answer = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, MaxUploads=page_size, **markers)
        except (ClientError, BotoCoreError) as exc:
            raise describe_failure(exc, operation="list_multipart_uploads", bucket=bucket) from exc
        yield list(answer.get("Uploads") or [])
        if not answer.get("IsTruncated"):
            return
        markers = {}
        if answer.get("NextKeyMarker"):
            markers["KeyMarker"] = str(answer["NextKeyMarker"])
        if answer.get("NextUploadIdMarker"):
            markers["UploadIdMarker"] = str(answer["NextUploadIdMarker"])
        position = (markers.get("KeyMarker", ""), markers.get("UploadIdMarker", ""))
        if not markers or position in seen_markers:
            raise StaleError("S3 returned a truncated listing without a usable next marker; the list is incomplete")
        seen_markers.add(position)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


class AdminScanner(Scanner):
    """Multipart uploads under a prefix of a bucket, through a client with bucket-wide rights."""

    def __init__(self, client: Any, bucket: str, store: StateStore | None = None, *,
                 now: Clock = utc_now, workers: int = PART_COUNT_WORKERS) -> None:
        super().__init__(store, now=now, workers=workers)
        self.client = client
        self.bucket = bucket

    def pages(self, prefix: str = "") -> Iterator[list[StaleUpload]]:
        """Uploads page by page, cross-checked with the state database."""
        records = records_by_upload_id(self.store)
        for page in iter_upload_pages(self.client, self.bucket, prefix):
            yield [
                StaleUpload(
                    key=str(entry["Key"]),
                    upload_id=str(entry["UploadId"]),
                    initiated=_as_utc(entry["Initiated"]),
                    tracked=self._tracked(records.get(str(entry["UploadId"]))),
                )
                for entry in page
            ]

    def _tracked(self, record: UploadRecord | None) -> TrackedInfo | None:
        return None if record is None or self.store is None else tracked_info(self.store, record)

    def _bucket(self, upload: StaleUpload) -> str:
        return self.bucket

    def _list_parts(self, upload: StaleUpload) -> list[dict[str, Any]]:
        return list_all_parts(self.client, bucket=self.bucket, key=upload.key, upload_id=upload.upload_id)

    def _abort_on_s3(self, upload: StaleUpload) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)
