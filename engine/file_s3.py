"""The S3 calls of one file's upload.

Every call is signed with the file's batch credentials (which Nuxeo hands out for a limited
time) and is sent again with fresh ones when S3 says they expired. The transfer manager decides
when each call happens and records what it answers; this module only talks to S3.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .bandwidth import BandwidthLimiter
from .credentials import signing_with
from .errors import (
    AccessDenied,
    CredentialsError,
    CredentialsExpired,
    FileChanged,
    IntegrityError,
    Interrupted,
    ServerUnreachable,
    StorageError,
    translate_s3_error,
)
from .planning import MiB, Part
from .s3 import ChecksumAlgorithm, S3Clients, S3Location, checksum_args, list_all_parts
from .s3_direct_put import DIRECT_PUT_BELOW, DirectPut
from .slices import FileSlice, PartCounter
from .state import PartRecord
from .transfer import FileTransfer, content_type_for

_CREDENTIAL_RETRIES = 3
_PART_ATTEMPTS = 3


@dataclass(kw_only=True)
class FileS3:
    """Stateless and shared by every worker: all per-file state lives on the `FileTransfer`."""

    clients: S3Clients
    checksum: ChecksumAlgorithm
    limiter: BandwidthLimiter
    # Calls S3 refused for expired credentials and sent again with fresh ones.
    credentials_rejected: int = 0
    # Small objects sent by a direct PUT (`s3_direct_put`), and those that went through botocore
    # after the direct PUT was not accepted.
    direct_puts: int = 0
    direct_puts_declined: int = 0

    def __post_init__(self) -> None:
        self._count_lock = threading.Lock()
        self._direct: dict[S3Location, DirectPut | None] = {}

    def close(self) -> None:
        """Close idle keep-alive connections (they would hold the servers' graceful stop)."""
        with self._count_lock:
            self._direct = {}
        self.clients.close()

    # == multipart upload =====================================================================
    def create_multipart(self, transfer: FileTransfer) -> str:
        """Start the file's multipart upload; returns its upload id. Sent once: when its answer
        is lost S3 may have started one, which the caller must account for before asking again."""
        record = transfer.record
        answer = self._call(
            transfer, action="starting the multipart upload", method="create_multipart_upload",
            retried=False, Bucket=record.bucket, Key=record.object_key,
            ContentType=content_type_for(transfer.name), **checksum_args(self.algorithm(transfer)),
        )
        return str(answer["UploadId"])

    def abort_uploads_of_key(self, transfer: FileTransfer) -> bool:
        """Abort every multipart upload S3 holds for the file's object key (the key is the
        file's own: any upload under it is one nxup started). False when the credentials may
        not list them (a stock Nuxeo's may not)."""
        record = transfer.record
        try:
            answer = self._call(transfer, action="listing multipart uploads", method="list_multipart_uploads",
                                Bucket=record.bucket, Prefix=record.object_key)
            for upload in answer.get("Uploads", []):
                if upload["Key"] == record.object_key:
                    self._call(transfer, action="aborting a multipart upload", method="abort_multipart_upload",
                               Bucket=record.bucket, Key=record.object_key, UploadId=upload["UploadId"])
        except AccessDenied:
            return False
        return True

    def listed_parts(self, transfer: FileTransfer) -> list[PartRecord] | None:
        """The parts S3 lists for the file's upload, or None when the credentials may not list
        them (a stock Nuxeo's may not: the journal is then the only record). Raises
        `UploadGone` when S3 no longer knows the upload id."""
        try:
            listed = self._list_parts(transfer)
        except AccessDenied:
            return None
        return [
            PartRecord(
                number=int(part["PartNumber"]), etag=part["ETag"], size=int(part["Size"]),
                checksum=self._checksum_in(part, self.algorithm(transfer)),
            )
            for part in listed
        ]

    def send_part(self, transfer: FileTransfer, *, part: Part, counter: PartCounter) -> PartRecord:
        """Send one part from the file's open descriptor, counted in `counter` as it goes."""
        assert transfer.fd is not None
        body = FileSlice(
            transfer.fd, offset=part.offset, size=part.size, counter=counter,
            control=transfer.control, limiter=self.limiter,
        )
        record = transfer.record
        answer = self._with_attempts(
            transfer,
            lambda: self._call(
                transfer, action=f"uploading part {part.number}", method="upload_part",
                Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id,
                PartNumber=part.number, Body=body, ContentLength=part.size,
                **checksum_args(self.algorithm(transfer)),
            ),
            body=body,
        )
        checksum = self._checksum_in(answer, self.algorithm(transfer))
        return PartRecord(number=part.number, etag=answer["ETag"], size=part.size, checksum=checksum)

    def complete_multipart(self, transfer: FileTransfer) -> str:
        """Join the file's acknowledged parts into the object; returns its ETag."""
        record = transfer.record
        algorithm = self.algorithm(transfer)
        parts = []
        for number in sorted(transfer.done):
            part = transfer.done[number]
            entry: dict[str, Any] = {"ETag": part.etag, "PartNumber": number}
            if part.checksum and algorithm is not ChecksumAlgorithm.NONE:
                entry[algorithm.response_key] = part.checksum
            parts.append(entry)
        answer = self._call(
            transfer, action="completing the multipart upload", method="complete_multipart_upload",
            Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id,
            MultipartUpload={"Parts": parts},
        )
        return str(answer["ETag"])

    def abort_multipart(self, transfer: FileTransfer) -> None:
        """Abort the file's multipart upload, so S3 drops the parts it holds (and stops
        billing them). Raises `UploadGone` when it is already gone, `AccessDenied` when the
        credentials may not abort (a stock Nuxeo's may not)."""
        record = transfer.record
        if transfer.credentials is None:
            raise CredentialsError("no credentials to abort the multipart upload")
        self._call(
            transfer, action="aborting the multipart upload", method="abort_multipart_upload",
            Bucket=record.bucket, Key=record.object_key, UploadId=record.upload_id,
        )

    # == whole object =========================================================================
    def put_object(self, transfer: FileTransfer, *, counter: PartCounter) -> str:
        """Send a file small enough for a single request; returns the object's ETag."""
        assert transfer.plan is not None and transfer.fd is not None
        record = transfer.record
        body = FileSlice(
            transfer.fd, offset=0, size=transfer.plan.file_size, counter=counter,
            control=transfer.control, limiter=self.limiter,
        )
        if len(body) < DIRECT_PUT_BELOW:
            etag = self._direct_put(transfer, body)
            if etag is not None:
                return etag
        answer = self._with_attempts(
            transfer,
            lambda: self._call(
                transfer, action="uploading", method="put_object",
                Bucket=record.bucket, Key=record.object_key, Body=body,
                ContentLength=transfer.plan.file_size if transfer.plan else 0,
                ContentType=content_type_for(transfer.name),
                **checksum_args(self.algorithm(transfer)),
            ),
            body=body,
        )
        return str(answer["ETag"])

    def _direct_put(self, transfer: FileTransfer, body: FileSlice) -> str | None:
        """The object sent by a direct PUT; None when it must go through botocore (which then
        decides any error)."""
        assert transfer.batch is not None and transfer.credentials is not None
        location = transfer.batch.location
        client = self._client(transfer)
        with self._count_lock:
            if location not in self._direct:
                self._direct[location] = DirectPut.for_client(client)
            direct = self._direct[location]
        if direct is None:
            return None
        record = transfer.record
        try:
            with signing_with(transfer.credentials):
                url = direct.object_url(record.bucket or "", record.object_key or "")
                credentials = transfer.credentials.get_frozen_credentials()
        except (Interrupted, FileChanged):
            raise
        except Exception:  # botocore decides, and words, whatever went wrong
            return None
        etag = direct.put(
            url=url, body=body, content_type=content_type_for(transfer.name),
            algorithm=self.algorithm(transfer), credentials=credentials,
        )
        with self._count_lock:
            if etag is None:
                self.direct_puts_declined += 1
            else:
                self.direct_puts += 1
        return etag

    def verify_etag(self, transfer: FileTransfer, *, etag: str) -> None:
        """Check S3's ETag against the MD5 of the local file (per part for a multipart upload),
        which catches corruption the per-part checksums cannot, at the cost of reading the file
        again."""
        assert transfer.plan is not None and transfer.fd is not None
        digests = []
        for part in transfer.plan.parts():
            digest = hashlib.md5(usedforsecurity=False)
            offset, end = part.offset, part.offset + part.size
            while offset < end:
                block = os.pread(transfer.fd, min(8 * MiB, end - offset), offset)
                if not block:
                    raise FileChanged("the file became shorter while it was being uploaded")
                digest.update(block)
                offset += len(block)
            digests.append(digest.digest())
        if transfer.plan.multipart:
            expected = f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"
        else:
            expected = digests[0].hex()
        if etag.strip('"') != expected:
            raise IntegrityError(f"the ETag S3 returned ({etag.strip(chr(34))}) does not match the file ({expected})")

    def algorithm(self, transfer: FileTransfer) -> ChecksumAlgorithm:
        """The file's checksum algorithm: the one its upload was started with (journaled; a
        multipart upload keeps it to the end), else this run's."""
        journaled = transfer.record.checksum_algorithm
        return ChecksumAlgorithm(journaled) if journaled else self.checksum

    @staticmethod
    def _checksum_in(answer: dict[str, Any], algorithm: ChecksumAlgorithm) -> str | None:
        return None if algorithm is ChecksumAlgorithm.NONE else answer.get(algorithm.response_key)

    # == signing and retries ==================================================================
    def _client(self, transfer: FileTransfer, *, retried: bool = True) -> Any:
        assert transfer.batch is not None
        return self.clients.client(transfer.batch.location, retried=retried)

    def _call(self, transfer: FileTransfer, *, action: str, method: str, retried: bool = True, **kwargs: Any) -> Any:
        """One S3 call signed with the file's batch credentials (`retried`: see `S3Clients`)."""
        client = self._client(transfer, retried=retried)
        body = kwargs.get("Body")
        return self._signed(transfer, action, lambda: getattr(client, method)(**kwargs),
                            rewind=None if body is None else lambda: body.seek(0))

    def _list_parts(self, transfer: FileTransfer) -> list[dict[str, Any]]:
        """Every part S3 holds for the file's upload (all pages)."""
        record = transfer.record
        client = self._client(transfer)
        parts: list[dict[str, Any]] = self._signed(transfer, "listing uploaded parts", lambda: list_all_parts(
            client, bucket=record.bucket or "", key=record.object_key or "", upload_id=record.upload_id or ""))
        return parts

    def _signed(self, transfer: FileTransfer, action: str, call: Callable[[], Any], *,
                rewind: Callable[[], Any] | None = None) -> Any:
        """Run `call` signed with the file's batch credentials; when S3 says they expired,
        refresh them and run it again (rewinding the body first). Errors come out translated."""
        credentials = transfer.credentials
        assert credentials is not None
        for attempt in range(_CREDENTIAL_RETRIES + 1):
            try:
                with signing_with(credentials):
                    return call()
            except Interrupted:
                raise
            except Exception as exc:
                error = translate_s3_error(exc, action=action)
                if isinstance(error, CredentialsExpired) and attempt < _CREDENTIAL_RETRIES:
                    with self._count_lock:
                        self.credentials_rejected += 1
                    credentials.force_refresh()
                    if rewind is not None:
                        rewind()
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    def _with_attempts(self, transfer: FileTransfer, call: Callable[[], Any], *, body: FileSlice) -> Any:
        """A few more tries on top of botocore's own retries, for drops that outlast them."""
        delay = 1.0
        for attempt in range(1, _PART_ATTEMPTS + 1):
            try:
                return call()
            except (StorageError, ServerUnreachable) as error:
                # ServerUnreachable: Nuxeo did not answer a credential refresh.
                if not error.retryable or attempt == _PART_ATTEMPTS:
                    raise
                if transfer.control.wait(delay):
                    raise Interrupted(transfer.control.reason or "") from error
                delay *= 2
                body.seek(0)
        raise AssertionError("unreachable")


__all__ = ["FileS3"]
