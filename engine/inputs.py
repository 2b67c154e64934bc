"""Turning the paths a user gave into files to upload, and opening them safely.

Every problem is reported per path with a one-line cause; the other paths go on. Nothing here
ever opens a FIFO, socket or device (opening a FIFO for reading blocks until a writer comes).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import InputError, describe_os_error
from .planning import FileTooLarge, MAX_OBJECT_SIZE


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path  # absolute
    size: int
    mtime_ns: int
    target: str  # Nuxeo folder that receives it (local sub-folders are mirrored under the target)


@dataclass(frozen=True, slots=True)
class RejectedPath:
    path: str
    reason: str


def _kind(mode: int) -> str | None:
    """Why a file of this mode cannot be uploaded, or None if it is a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "not a regular file (a FIFO)"
    if stat.S_ISSOCK(mode):
        return "not a regular file (a socket)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "not a regular file (a device)"
    return "not a regular file"


def _join_target(target: str, relative: PurePosixPath) -> str:
    base = target.rstrip("/") or ""
    parts = [part for part in relative.parts if part not in ("", ".")]
    return "/".join([base, *parts]) if parts else (base or "/")


def check_file(path: Path, target: str) -> LocalFile:
    """Stat one file and say whether it can be uploaded."""
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from exc
    reason = _kind(info.st_mode)
    if reason:
        raise InputError(reason)
    if info.st_size > MAX_OBJECT_SIZE:
        raise InputError(str(FileTooLarge(info.st_size)))
    if not os.access(path, os.R_OK):
        raise InputError("permission denied")
    return LocalFile(path=path, size=info.st_size, mtime_ns=info.st_mtime_ns, target=target)


def expand(paths: Iterable[str | os.PathLike[str]], target: str) -> Iterator[LocalFile | RejectedPath]:
    """Files to upload, in order; folders are walked and their tree is mirrored under target.

    Symbolic links to files are followed; links to folders are not descended (they could loop).
    """
    for given in paths:
        path = Path(os.path.abspath(given))
        try:
            info = path.stat()
        except OSError as exc:
            yield RejectedPath(str(given), describe_os_error(exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(path, target)
            continue
        try:
            yield check_file(path, target)
        except InputError as exc:
            yield RejectedPath(str(given), str(exc))


def _walk(root: Path, target: str) -> Iterator[LocalFile | RejectedPath]:
    errors: list[OSError] = []
    for directory, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames.sort()
        here = Path(directory)
        relative = PurePosixPath(root.name) / PurePosixPath(*here.relative_to(root).parts)
        folder_target = _join_target(target, relative)
        for name in sorted(filenames):
            path = here / name
            try:
                yield check_file(path, folder_target)
            except InputError as exc:
                yield RejectedPath(str(path), str(exc))
        for name in dirnames:
            if (here / name).is_symlink():
                yield RejectedPath(str(here / name), "a symbolic link to a folder (not followed)")
    for exc in errors:
        yield RejectedPath(str(exc.filename or root), describe_os_error(exc))


def open_for_upload(local_path: str) -> tuple[int, os.stat_result]:
    """Open a file for reading without ever blocking on a FIFO, and check it is regular."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(local_path, flags)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from exc
    try:
        info = os.fstat(fd)
        reason = _kind(info.st_mode)
        if reason:
            raise InputError(reason)
    except BaseException:
        os.close(fd)
        raise
    return fd, info
