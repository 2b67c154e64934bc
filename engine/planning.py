"""How a file is cut into S3 requests: one `put_object`, or the parts of a multipart upload.

Planning is pure arithmetic on the file size, done before anything is sent, so that a file S3
would refuse is rejected up front and a resumed upload can rebuild exactly the parts it started
with from the part size recorded in the state store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InputError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

# S3's multipart limits: every part but the last is at least 5 MiB, none above 5 GiB, at most
# 10,000 parts, and an object of at most 5 TiB.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TiB
# The largest body a single put_object accepts.
MAX_SINGLE_UPLOAD_SIZE = 5 * GiB

# Nuxeo Drive's defaults: files up to 20 MiB go in one request, larger ones in 20 MiB parts.
DEFAULT_SINGLE_UPLOAD_LIMIT = 20 * MiB
DEFAULT_PART_SIZE = 20 * MiB

# A part size grown to fit MAX_PARTS is rounded up to this, so recorded sizes stay readable.
_PART_SIZE_GRANULARITY = MiB


class FileTooLarge(InputError):
    """The file is larger than S3 can store as one object."""

    def __init__(self, size: int, limit: int = MAX_OBJECT_SIZE) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"file is {_format_size(size)} ({size:,} bytes), larger than the "
            f"{_format_size(limit)} ({limit:,} bytes) S3 accepts for one object"
        )


def _format_size(size: int) -> str:
    """A size in binary units for messages, e.g. `20 MiB` or `1.5 GiB`."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    value = float(size)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            break
        value /= 1024
    if unit == "bytes":
        return f"{size} {'byte' if size == 1 else 'bytes'}"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


@dataclass(frozen=True, slots=True)
class Part:
    """One request's slice of the file: the whole file for a single upload."""

    number: int  # 1-based S3 part number
    offset: int
    size: int

    @property
    def end(self) -> int:
        """The offset just past this part."""
        return self.offset + self.size


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """How a file of `file_size` bytes is sent.

    A single upload is one part covering the whole file (zero bytes for an empty file). A
    multipart upload has `part_count` parts of `part_size` bytes, the last one possibly shorter;
    `part_size` may exceed `file_size` when a small file goes multipart, and the one part is then
    the whole file.
    """

    file_size: int
    multipart: bool
    part_size: int  # == file_size for a single upload
    part_count: int  # 1 for a single upload, also for an empty file

    def __post_init__(self) -> None:
        # Plans are also rebuilt from stored rows; refuse one whose numbers disagree rather than
        # send parts that do not add up to the file.
        if self.file_size < 0:
            raise ValueError(f"file size must not be negative, got {self.file_size}")
        if self.multipart:
            if self.part_size <= 0:
                raise ValueError(f"part size must be positive, got {self.part_size}")
            expected = _ceil_div(self.file_size, self.part_size)
            if self.file_size == 0 or self.part_count != expected:
                raise ValueError(
                    f"{self.part_count} parts of {self.part_size} bytes do not cover "
                    f"{self.file_size} bytes"
                )
        elif self.part_size != self.file_size or self.part_count != 1:
            raise ValueError("a single upload has one part covering the whole file")

    def part(self, number: int) -> Part:
        """Part `number` (1-based), as S3 numbers them."""
        if not 1 <= number <= self.part_count:
            raise ValueError(f"part number {number} is outside 1..{self.part_count}")
        offset = (number - 1) * self.part_size
        return Part(number=number, offset=offset, size=min(self.part_size, self.file_size - offset))

    def parts(self) -> Iterator[Part]:
        """Every part, in order."""
        for number in range(1, self.part_count + 1):
            yield self.part(number)

    @property
    def last_part_size(self) -> int:
        return self.part(self.part_count).size


def plan_upload(
    file_size: int,
    *,
    single_upload_limit: int = DEFAULT_SINGLE_UPLOAD_LIMIT,
    part_size: int = DEFAULT_PART_SIZE,
) -> UploadPlan:
    """Plan a new upload.

    Files up to and including `single_upload_limit` bytes go in one put_object (as Nuxeo Drive
    does: only a strictly larger file goes multipart). Larger files are cut into `part_size`
    parts, the part size growing to the next whole MiB when the file would otherwise need more
    than MAX_PARTS parts.
    """
    _check_file_size(file_size)
    if not 0 <= single_upload_limit <= MAX_SINGLE_UPLOAD_SIZE:
        raise ValueError(
            f"single upload limit must be between 0 and {_format_size(MAX_SINGLE_UPLOAD_SIZE)}, "
            f"got {single_upload_limit:,} bytes"
        )
    _check_part_size(part_size)

    if file_size <= single_upload_limit:
        return UploadPlan(file_size=file_size, multipart=False, part_size=file_size, part_count=1)

    if _ceil_div(file_size, part_size) > MAX_PARTS:
        # Smallest whole-MiB size that fits; it stays below MAX_PART_SIZE because the file is at
        # most MAX_OBJECT_SIZE (5 TiB / 10,000 is about 525 MiB).
        needed = _ceil_div(file_size, MAX_PARTS)
        part_size = _ceil_div(needed, _PART_SIZE_GRANULARITY) * _PART_SIZE_GRANULARITY
    return UploadPlan(
        file_size=file_size,
        multipart=True,
        part_size=part_size,
        part_count=_ceil_div(file_size, part_size),
    )


def plan_resumed_upload(file_size: int, *, part_size: int) -> UploadPlan:
    """Rebuild the multipart plan of an interrupted upload from its recorded part size.

    The part size is kept as recorded, never grown: parts already on S3 were cut with it.
    """
    _check_file_size(file_size)
    if file_size == 0:
        raise ValueError("an empty file is never uploaded in parts")
    _check_part_size(part_size)
    part_count = _ceil_div(file_size, part_size)
    if part_count > MAX_PARTS:
        raise ValueError(
            f"a part size of {part_size:,} bytes cuts {file_size:,} bytes into {part_count:,} "
            f"parts, more than S3's {MAX_PARTS:,}"
        )
    return UploadPlan(
        file_size=file_size, multipart=True, part_size=part_size, part_count=part_count
    )


def _check_file_size(file_size: int) -> None:
    if file_size < 0:
        raise ValueError(f"file size must not be negative, got {file_size}")
    if file_size > MAX_OBJECT_SIZE:
        raise FileTooLarge(file_size)


def _check_part_size(part_size: int) -> None:
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part size must be between {_format_size(MIN_PART_SIZE)} and "
            f"{_format_size(MAX_PART_SIZE)}, got {part_size:,} bytes"
        )


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
