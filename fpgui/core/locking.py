"""An exclusive, inter-process write lock on a library folder.

``flock`` on POSIX, ``msvcrt.locking`` on Windows. The lock belongs to an open file description, so
two :class:`WriteLock` objects conflict even inside one process (the tests rely on it). The
kernel drops the lock when its holder dies, even by SIGKILL, so a crashed writer never leaves the
library locked. Who holds it (pid and operation) is written into the file for the busy message.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from fpgui.core.errors import LibraryBusyError

POLL_SECONDS = 0.05


class WriteLock:
    """Held while a process writes to a library; ``acquire`` waits up to ``timeout`` seconds."""

    def __init__(self, lock_file: Path, operation: str, timeout: float) -> None:
        self.lock_file = Path(lock_file)
        self.operation = operation
        self.timeout = timeout
        self._handle: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> None:
        if self._handle is not None:
            return
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = self.lock_file.open("a+b")
        deadline = time.monotonic() + max(0.0, self.timeout)
        while True:
            if _try_lock(handle):
                break
            if time.monotonic() >= deadline:
                holder = _read_holder(self.lock_file)
                handle.close()
                raise LibraryBusyError(
                    f"library is busy: another fpgui process{holder} is writing to "
                    f"{self.lock_file.parent}; try again when it has finished"
                )
            time.sleep(POLL_SECONDS)
        with contextlib.suppress(OSError):  # the note is only for the message above
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()} {self.operation}\n".encode())
            handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        _unlock(handle)
        handle.close()

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(lock_file: Path) -> str:
    try:
        pid, _, operation = lock_file.read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        return ""
    if not pid.isdigit():
        return ""
    return f" (pid {pid}, {operation})" if operation else f" (pid {pid})"


if sys.platform == "win32":
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
