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

import pathspec

from .errors import InputError, describe_os_error
from .planning import MAX_OBJECT_SIZE, FileTooLarge


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


@dataclass(frozen=True, slots=True)
class IgnoredPath:
    """A file (or a folder, with everything in it) left out by the patterns."""

    path: str
    reason: str


# Hidden and system files, as Nuxeo Drive ignores them (gitignore patterns; `Icon\r` is the
# macOS folder icon, its carriage return in a class so that it is not read as trailing space).
DEFAULT_EXCLUDES = (".*", "~$*", "*.tmp", "*.part", "*.crdownload", "Thumbs.db", "desktop.ini", "Icon[\r]",
                    "__MACOSX/")


class PathFilter:
    """Which files of a folder given to upload are sent: gitignore-style patterns (the
    `pathspec` library, as git reads them) on the path relative to that folder. A file is sent
    when no exclude matches it and, if includes are given, one include does; an excluded
    folder is not descended. The default ignore list applies inside folders only: a file named
    on the command line is sent unless an `--exclude` matches it."""

    def __init__(self, *, include: Iterable[str] = (), exclude: Iterable[str] = (),
                 default_excludes: bool = True) -> None:
        self._include = pathspec.GitIgnoreSpec.from_lines(list(include)) if include else None
        self._exclude = pathspec.GitIgnoreSpec.from_lines(list(exclude))
        self._defaults = pathspec.GitIgnoreSpec.from_lines(DEFAULT_EXCLUDES if default_excludes else ())

    def folder_left_out(self, relative: str) -> str | None:
        """Why the folder (its path relative to the folder given) is left out, or None."""
        shown = relative.rstrip("/") + "/"
        if self._exclude.match_file(shown):
            return "excluded by --exclude (with everything in it)"
        if self._defaults.match_file(shown):
            return "a hidden or system folder (with everything in it; --no-default-excludes sends it)"
        return None

    def file_left_out(self, relative: str, *, named: bool = False) -> str | None:
        """Why the file is left out, or None; `named`: given on the command line itself."""
        if self._exclude.match_file(relative):
            return "excluded by --exclude"
        if named:
            return None
        if self._defaults.match_file(relative):
            return "a hidden or system file (--no-default-excludes sends it)"
        if self._include is not None and not self._include.match_file(relative):
            return "matches no --include"
        return None


SEND_EVERYTHING = PathFilter(default_excludes=False)


# A name that is not valid UTF-8 reaches Python with its bad bytes as lone surrogates, which
# neither the state database nor Nuxeo (whose names are Unicode) can hold.
NOT_UTF8_FILE = "the file name is not valid UTF-8 (rename it to upload it)"
NOT_UTF8_FOLDER = "the folder name is not valid UTF-8: its files are skipped (rename it to upload them)"
NOT_UTF8_PATH = "the path is not valid UTF-8 (a folder above it has such a name; rename it)"


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        raise FileTooLarge(info.st_size)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied")
    return LocalFile(path=path, size=info.st_size, mtime_ns=info.st_mtime_ns, target=target)


def resolve(given: str) -> Path:
    """The absolute path of what the user named. `..` is resolved as the system does (through
    symbolic links), not by dropping the folder before it; the last component is kept as
    given, so a link to a file is uploaded under the link's name."""
    trimmed = given.rstrip("/") or "/"
    absolute = trimmed if os.path.isabs(trimmed) else os.path.join(os.getcwd(), trimmed)
    head, name = os.path.split(absolute)
    if name in ("", ".", ".."):
        return Path(os.path.realpath(absolute))
    return Path(os.path.realpath(head)) / name


Expanded = LocalFile | RejectedPath | IgnoredPath


def expand(paths: Iterable[str | os.PathLike[str]], target: str,
           patterns: PathFilter = SEND_EVERYTHING) -> Iterator[Expanded]:
    """Files to upload, in order; folders are walked and their tree is mirrored under target.

    Symbolic links to files are followed; links to folders are not descended (they could loop).
    A file named twice (the same path for the same folder) is uploaded once. What `patterns`
    leave out comes as `IgnoredPath`.
    """
    seen: set[tuple[Path, str]] = set()
    for given in paths:
        for item in _expand_one(os.fspath(given), target, patterns):
            if isinstance(item, LocalFile):
                if (item.path, item.target) in seen:
                    continue
                seen.add((item.path, item.target))
            yield item


def _expand_one(given: str, target: str, patterns: PathFilter) -> Iterator[Expanded]:
    if not given:
        yield RejectedPath(given, "an empty path")
        return
    try:
        info = os.stat(given)  # as the system resolves it: `missing/..` does not exist
    except OSError as exc:
        yield RejectedPath(given, describe_os_error(exc))
        return
    try:
        path = resolve(given)
    except OSError as exc:  # the working folder was removed
        yield RejectedPath(given, describe_os_error(exc))
        return
    if not is_utf8(str(path)):
        if is_utf8(path.name):
            yield RejectedPath(given, NOT_UTF8_PATH)
        else:
            yield RejectedPath(given, NOT_UTF8_FOLDER if stat.S_ISDIR(info.st_mode) else NOT_UTF8_FILE)
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _walk(path, target, patterns)
        return
    left_out = patterns.file_left_out(path.name, named=True)
    if left_out:
        yield IgnoredPath(given, left_out)
        return
    try:
        yield check_file(path, target)
    except InputError as exc:
        yield RejectedPath(given, str(exc))


def _walk(root: Path, target: str, patterns: PathFilter) -> Iterator[Expanded]:
    errors: list[OSError] = []
    for directory, dirnames, filenames in os.walk(root, onerror=errors.append):
        here = Path(directory)
        inside = PurePosixPath(*here.relative_to(root).parts)  # what patterns read
        relative = PurePosixPath(root.name) / inside
        folder_target = _join_target(target, relative)
        for name in sorted(filenames):
            path = here / name
            left_out = patterns.file_left_out(str(inside / name)) if is_utf8(name) else None
            if left_out:
                yield IgnoredPath(str(path), left_out)
                continue
            if not is_utf8(name):
                yield RejectedPath(str(path), NOT_UTF8_FILE)
                continue
            try:
                yield check_file(path, folder_target)
            except InputError as exc:
                yield RejectedPath(str(path), str(exc))
        descended = []
        for name in sorted(dirnames):
            if (here / name).is_symlink():
                yield RejectedPath(str(here / name), "a symbolic link to a folder (not followed)")
            elif not is_utf8(name):
                yield RejectedPath(str(here / name), NOT_UTF8_FOLDER)
            elif left_out := patterns.folder_left_out(str(inside / name)):
                yield IgnoredPath(str(here / name), left_out)
            else:
                descended.append(name)
        dirnames[:] = descended
    for error in errors:
        yield RejectedPath(str(error.filename or root), describe_os_error(error))


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
