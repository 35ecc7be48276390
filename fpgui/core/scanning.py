"""Finding the image files under what the user named, and reading what the catalogue records.

Folders are walked recursively following symlinks, each real folder once (so symlink loops end);
inside folders only files with a supported image suffix are taken. Every failure becomes a reason
a person can act on, never an exception.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from fpgui.core.errors import FpguiError
from fpgui.core.images import image_info, is_supported_image

_HASH_CHUNK = 1 << 20

StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class ScanFailure:
    path: str
    reason: str


def normal_path(path: str | os.PathLike[str]) -> str:
    """Absolute, user-expanded, ``..``-free; symlinks are kept (they are how the user named it)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def scan_image_files(
    paths: Sequence[str | os.PathLike[str]], should_stop: StopCheck
) -> Iterator[str | ScanFailure]:
    """Image files under ``paths``: folders recursively (supported suffixes only, each real folder
    once, so symlink loops end), files as named. Yields each path once, in a stable order."""
    seen_files: set[str] = set()
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        top = normal_path(raw)
        if os.path.isdir(top):
            for found in _walk(top, seen_dirs, should_stop):
                if isinstance(found, ScanFailure) or found not in seen_files:
                    if isinstance(found, str):
                        seen_files.add(found)
                    yield found
        elif os.path.lexists(top):
            if top not in seen_files:
                seen_files.add(top)
                yield top
        else:
            yield ScanFailure(top, "file not found")
        if should_stop():
            return


def _walk(
    top: str, seen_dirs: set[tuple[int, int]], should_stop: StopCheck
) -> Iterator[str | ScanFailure]:
    stack = [top]
    while stack:
        if should_stop():
            return
        folder = stack.pop()
        try:
            info = os.stat(folder)
        except OSError as exc:
            yield ScanFailure(folder, f"cannot open folder: {exc.strerror or exc}")
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            continue  # a symlink loop, or a folder reached twice
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as entries:
                listing = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            yield ScanFailure(folder, f"cannot open folder: {exc.strerror or exc}")
            continue
        subfolders = []
        for entry in listing:
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(entry.path)
            elif is_supported_image(entry.name):
                yield entry.path
        stack.extend(reversed(subfolders))


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class HashedFile:
    sha256: str
    width: int
    height: int


def stat_file(path: str) -> FileState | str:
    """Size and mtime, or the reason the file cannot be read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            return "broken link: the file it points to does not exist"
        return "file not found (removed or moved while adding?)"
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    return FileState(info.st_size, info.st_mtime_ns)


def hash_and_measure(path: str) -> HashedFile | str:
    """SHA-256 of the bytes and the pixel size from the header, or the reason it failed."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return "file not found (removed or moved while adding?)"
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    try:
        info = image_info(path)
    except FpguiError as exc:
        return str(getattr(exc, "reason", exc))
    return HashedFile(digest.hexdigest(), info.width, info.height)


class RecordedFile(Protocol):
    """What the catalogue remembers of a file: enough to tell whether it changed."""

    @property
    def size(self) -> int: ...

    @property
    def mtime_ns(self) -> int: ...


def same_state(row: RecordedFile, state: FileState) -> bool:
    return row.size == state.size and row.mtime_ns == state.mtime_ns
