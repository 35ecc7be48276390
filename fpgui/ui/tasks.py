"""The one way the UI runs background work: a callable on a QThreadPool, reported on the GUI thread.

A task is a plain function ``fn(control) -> result``. It polls ``control.cancelled`` to stop early,
calls ``control.progress(done, total, text)`` and ``control.partial(item)`` to report, and returns
its result or raises. The :class:`TaskHandle` delivers all of that on the GUI thread through
signals, so a view never touches a worker thread. Tests swap :class:`ThreadTaskRunner` for
:class:`SyncTaskRunner`, which runs the function at once in the caller's thread. Views call
:func:`run_task`, which connects their callbacks before the task can report.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot

T = TypeVar("T")

# Progress from a fast loop (one call per file) would flood the event queue, and every report
# costs the GUI thread a relayout of the progress row; ten reports a second is plenty for a bar.
PROGRESS_INTERVAL_S = 0.1


class TaskCancelled(Exception):
    """A task may raise this when it stops because it was cancelled and has nothing to return."""


class TaskControl:
    """What the running function sees: a cancel flag to poll and ways to report."""

    def __init__(self, emitter: _Emitter | None = None) -> None:
        self._cancel = threading.Event()
        self._emitter = emitter
        self._last_progress = 0.0
        self.on_progress: Callable[[int, int, str], None] | None = None  # synchronous runner
        self.on_partial: Callable[[object], None] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_cancelled(self) -> bool:
        """The same as :attr:`cancelled`, as a callable (the core's ``should_stop``)."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def progress(self, done: int, total: int, text: str = "", *, force: bool = False) -> None:
        """Report progress; throttled to one report per ``PROGRESS_INTERVAL_S`` unless forced."""
        now = time.monotonic()
        if not force and done < total and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        if self._emitter is not None:
            self._emitter.progress.emit(done, total, text)
        elif self.on_progress is not None:
            self.on_progress(done, total, text)

    def partial(self, item: object) -> None:
        """Hand one intermediate result (a batch row, a thumbnail) to the GUI thread."""
        if self._emitter is not None:
            self._emitter.partial.emit(item)
        elif self.on_partial is not None:
            self.on_partial(item)


class _Emitter(QObject):
    """Lives in the GUI thread; emitted from the worker, so connections to it are queued."""

    progress = Signal(int, int, str)
    partial = Signal(object)
    done = Signal(object)
    error = Signal(object, str)


class TaskHandle(QObject, Generic[T]):
    """A submitted task. Its signals are always emitted on the GUI thread.

    Exactly one of ``finished`` (the result; also after a cancel, when the function returned),
    ``failed`` (the exception and its formatted traceback) or ``cancelled`` (the function raised
    :class:`TaskCancelled`) is emitted, then ``ended``.
    """

    progress = Signal(int, int, str)
    partial = Signal(object)
    finished = Signal(object)
    failed = Signal(object, str)
    cancelled = Signal()
    ended = Signal()

    def __init__(self, name: str, control: TaskControl) -> None:
        super().__init__()
        self.name = name
        self.control = control
        self.is_running = True
        self.result: T | None = None
        self.error: BaseException | None = None

    def cancel(self) -> None:
        self.control.cancel()

    @property
    def was_cancelled(self) -> bool:
        return self.control.cancelled

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, text: str) -> None:
        if self.is_running:
            self.progress.emit(done, total, text)

    @Slot(object)
    def _on_partial(self, item: object) -> None:
        if self.is_running:
            self.partial.emit(item)

    @Slot(object)
    def _on_done(self, result: object) -> None:
        self.is_running = False
        self.result = result  # type: ignore[assignment]
        self.finished.emit(result)
        self.ended.emit()

    @Slot(object, str)
    def _on_error(self, error: object, formatted: str) -> None:
        self.is_running = False
        if isinstance(error, TaskCancelled):
            self.cancelled.emit()
        else:
            assert isinstance(error, BaseException)
            self.error = error
            self.failed.emit(error, formatted)
        self.ended.emit()


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[TaskControl], Any], control: TaskControl, out: _Emitter):
        super().__init__()
        self.setAutoDelete(True)
        self._fn = fn
        self._control = control
        self._out = out

    def run(self) -> None:
        try:
            result = self._fn(self._control)
        except BaseException as exc:  # noqa: BLE001 - every error goes to the GUI thread
            self._out.error.emit(exc, traceback.format_exc())
        else:
            self._out.done.emit(result)


Connect = Callable[[TaskHandle[Any]], None]


class TaskRunner:
    """Runs task functions; the interface views depend on (see :func:`run_task`)."""

    def submit(
        self, name: str, fn: Callable[[TaskControl], T], connect: Connect | None = None
    ) -> TaskHandle[T]:
        """Start ``fn``; ``connect(handle)`` is called before it can report anything."""
        raise NotImplementedError

    def active(self) -> list[TaskHandle[Any]]:
        return []

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything running; wait up to ``timeout_ms``. True when all stopped."""
        return True


class ThreadTaskRunner(TaskRunner):
    """Runs each task on a QThreadPool thread; results arrive through queued signals."""

    def __init__(self, pool: QThreadPool | None = None, max_threads: int | None = None) -> None:
        self.pool = pool or QThreadPool()
        if max_threads is not None:
            self.pool.setMaxThreadCount(max_threads)
        self._active: dict[int, tuple[TaskHandle[Any], _Emitter]] = {}

    def submit(
        self, name: str, fn: Callable[[TaskControl], T], connect: Connect | None = None
    ) -> TaskHandle[T]:
        emitter = _Emitter()
        control = TaskControl(emitter)
        handle: TaskHandle[T] = TaskHandle(name, control)
        queued = Qt.ConnectionType.QueuedConnection
        emitter.progress.connect(handle._on_progress, queued)
        emitter.partial.connect(handle._on_partial, queued)
        emitter.done.connect(handle._on_done, queued)
        emitter.error.connect(handle._on_error, queued)
        key = id(handle)
        # The runner keeps handle and emitter alive until the task has ended, and lets go of
        # them only after ``ended``'s slots have returned: dropping the last reference inside
        # the handle's own slot deleted it mid-call, and a last reference dropped by the worker
        # thread deleted the emitter there; both crashed the GUI thread now and then.
        self._active[key] = (handle, emitter)
        handle.ended.connect(lambda: QTimer.singleShot(0, lambda: self._release(key)))
        if connect is not None:
            connect(handle)
        self.pool.start(_Runnable(fn, control, emitter))
        return handle

    def _release(self, key: int) -> None:
        entry = self._active.pop(key, None)
        if entry is not None:
            # Deleted here, on the GUI thread it belongs to, whoever holds the last reference.
            entry[1].deleteLater()

    def active(self) -> list[TaskHandle[Any]]:
        return [handle for handle, _ in self._active.values() if handle.is_running]

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        for handle in self.active():
            handle.cancel()
        return bool(self.pool.waitForDone(timeout_ms))


class SyncTaskRunner(TaskRunner):
    """Runs the function at once in the calling thread; every signal fires before submit returns.

    ``submitted`` lists the task names in order, for tests that assert what ran.
    """

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(
        self, name: str, fn: Callable[[TaskControl], T], connect: Connect | None = None
    ) -> TaskHandle[T]:
        control = TaskControl()
        handle: TaskHandle[T] = TaskHandle(name, control)
        control.on_progress = handle._on_progress
        control.on_partial = handle._on_partial
        self.submitted.append(name)
        if connect is not None:
            connect(handle)
        try:
            result = fn(control)
        except BaseException as exc:  # noqa: BLE001 - delivered like the threaded runner does
            handle._on_error(exc, traceback.format_exc())
        else:
            handle._on_done(result)
        return handle


def run_task(
    runner: TaskRunner,
    name: str,
    fn: Callable[[TaskControl], T],
    *,
    on_result: Callable[[T], None] | None = None,
    on_error: Callable[[BaseException, str], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    on_partial: Callable[[Any], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    on_ended: Callable[[], None] | None = None,
    on_started: Callable[[TaskHandle[Any]], None] | None = None,
) -> TaskHandle[T]:
    """Submit ``fn`` with callbacks, all called on the GUI thread. The call views make.

    ``on_started(handle)`` comes before ``fn`` can report anything: a view keeps the handle
    there (for Cancel), since with the synchronous runner ``fn`` has ended when this returns.
    """

    def connect(handle: TaskHandle[Any]) -> None:
        if on_started is not None:
            on_started(handle)
        if on_progress is not None:
            handle.progress.connect(on_progress)
        if on_partial is not None:
            handle.partial.connect(on_partial)
        if on_result is not None:
            handle.finished.connect(on_result)
        if on_error is not None:
            handle.failed.connect(on_error)
        if on_cancelled is not None:
            handle.cancelled.connect(on_cancelled)
        if on_ended is not None:
            handle.ended.connect(on_ended)

    return runner.submit(name, fn, connect)


def user_message(error: BaseException, doing: str = "") -> str:
    """A sentence a user can act on, for any error a task delivers; never a traceback.

    ``doing`` names the job ("adding images") for errors that do not say what failed.
    """
    import errno

    prefix = f"{doing[:1].upper()}{doing[1:]} failed: " if doing else ""
    name = type(error).__name__
    if name == "LibraryBusyError":
        text = str(error) or "the library is busy"
        return f"{text[:1].upper()}{text[1:]}."
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        if error.errno == errno.ENOSPC:
            return f"{prefix}the disk is full{where}. Free some space and try again."
        if error.errno in (errno.EACCES, errno.EPERM):
            return f"{prefix}permission denied{where}."
        if error.errno == errno.ENOENT:
            return f"{prefix}not found{where}."
        return f"{prefix}{error.strerror or error}{where}."
    if isinstance(error, MemoryError):
        return f"{prefix}not enough memory."
    from fpgui.core.errors import FpguiError  # light: no torch

    if isinstance(error, FpguiError):
        return f"{prefix}{error}"
    return f"{prefix}unexpected error ({name}: {error})."
