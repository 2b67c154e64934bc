"""Checksums of file slices computed locally, the way S3 computes them.

Used when S3 holds a part the journal does not know (it was acknowledged as the process died):
S3-compatible servers list such parts without their checksum, and CompleteMultipartUpload of an
upload created with a checksum algorithm needs every part's. Reading the slice again gives both
its MD5 (to prove S3 holds these very bytes: a part's ETag is the MD5 of its body) and the
checksum S3 expects.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from dataclasses import dataclass

from .errors import FileChanged
from .s3 import ChecksumAlgorithm

_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SliceDigest:
    md5_hex: str
    checksum: str | None  # base64, as S3 writes it; None when the algorithm is not computable here


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, block: bytes) -> None:
        self.value = zlib.crc32(block, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _checksum_hasher(algorithm: ChecksumAlgorithm) -> object | None:
    if algorithm is ChecksumAlgorithm.CRC32:
        return _Crc32()
    if algorithm is ChecksumAlgorithm.SHA1:
        return hashlib.sha1(usedforsecurity=False)
    if algorithm is ChecksumAlgorithm.SHA256:
        return hashlib.sha256()
    return None  # CRC32C needs a native library; NONE needs nothing


def can_compute(algorithm: ChecksumAlgorithm) -> bool:
    return algorithm is ChecksumAlgorithm.NONE or _checksum_hasher(algorithm) is not None


def checksum_of(data: bytes, algorithm: ChecksumAlgorithm) -> str | None:
    """The S3 checksum of `data` (base64), None when the algorithm is not computable here (or is
    NONE)."""
    hasher = _checksum_hasher(algorithm)
    if hasher is None:
        return None
    hasher.update(data)  # type: ignore[attr-defined]
    return base64.b64encode(hasher.digest()).decode()  # type: ignore[attr-defined]


def digest_slice(fd: int, *, offset: int, size: int, algorithm: ChecksumAlgorithm) -> SliceDigest:
    """MD5 and S3 checksum of `size` bytes at `offset` of an open file."""
    md5 = hashlib.md5(usedforsecurity=False)
    other = _checksum_hasher(algorithm)
    position, end = offset, offset + size
    while position < end:
        block = os.pread(fd, min(_BLOCK, end - position), position)
        if not block:
            raise FileChanged("the file became shorter while it was being uploaded")
        md5.update(block)
        if other is not None:
            other.update(block)  # type: ignore[attr-defined]
        position += len(block)
    checksum = base64.b64encode(other.digest()).decode() if other is not None else None  # type: ignore[attr-defined]
    return SliceDigest(md5_hex=md5.hexdigest(), checksum=checksum)


__all__ = ["SliceDigest", "can_compute", "checksum_of", "digest_slice"]
