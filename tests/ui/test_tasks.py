"""The task helper: results, errors, progress and cancel arrive on the GUI thread."""

from __future__ import annotations

import threading
import time

import pytest
from pytestqt.qtbot import QtBot

from fpgui.core.errors import LibraryBusyError
from fpgui.ui.tasks import (
    SyncTaskRunner,
    TaskCancelled,
    TaskControl,
    ThreadTaskRunner,
    run_task,
    user_message,
)


def test_result_and_progress_arrive_on_the_gui_thread(qtbot: QtBot) -> None:
    runner = ThreadTaskRunner(max_threads=1)
    gui_thread = threading.get_ident()
    seen: dict[str, object] = {"progress": [], "threads": set()}

    def work(control: TaskControl) -> int:
        assert threading.get_ident() != gui_thread
        for i in range(3):
            control.progress(i + 1, 3, f"step {i}", force=True)
        return 42

    def on_progress(done: int, total: int, text: str) -> None:
        seen["progress"].append(done)  # type: ignore[attr-defined]
        seen["threads"].add(threading.get_ident())  # type: ignore[attr-defined]

    def on_result(value: int) -> None:
        seen["result"] = value
        seen["threads"].add(threading.get_ident())  # type: ignore[attr-defined]

    handle = run_task(runner, "answer", work, on_result=on_result, on_progress=on_progress)
    qtbot.waitUntil(lambda: not handle.is_running, timeout=5000)
    assert seen["result"] == 42
    assert seen["progress"] == [1, 2, 3]
    assert seen["threads"] == {gui_thread}


def test_errors_are_delivered_not_raised(qtbot: QtBot) -> None:
    runner = ThreadTaskRunner(max_threads=1)
    errors: list[str] = []

    def work(control: TaskControl) -> None:
        raise LibraryBusyError("library is busy: another fpgui process is writing to /lib")

    handle = run_task(
        runner, "fail", work, on_error=lambda exc, tb: errors.append(user_message(exc))
    )
    qtbot.waitUntil(lambda: not handle.is_running, timeout=5000)
    assert errors == ["Library is busy: another fpgui process is writing to /lib."]
    assert "Traceback" not in errors[0]


def test_cancel_is_a_flag_the_task_polls(qtbot: QtBot) -> None:
    runner = ThreadTaskRunner(max_threads=1)
    started = threading.Event()
    outcome: list[str] = []

    def work(control: TaskControl) -> str:
        started.set()
        while not control.cancelled:
            time.sleep(0.01)
        raise TaskCancelled

    handle = run_task(runner, "loop", work, on_cancelled=lambda: outcome.append("cancelled"))
    assert started.wait(5)
    handle.cancel()
    qtbot.waitUntil(lambda: outcome == ["cancelled"], timeout=5000)
    assert runner.active() == []


def test_ended_tasks_are_released_on_the_gui_thread_after_their_slots(qtbot: QtBot) -> None:
    """Many short tasks (thumbnails) once crashed the GUI thread now and then: a handle was
    deleted inside its own slot, or its emitter by the worker thread that dropped the last
    reference. The runner now lets go of both after ``ended``, on the GUI thread."""
    runner = ThreadTaskRunner(max_threads=2)
    gui_thread = threading.get_ident()
    emitters_deleted_on: list[int] = []
    ended: list[int] = []
    handles = []
    for i in range(40):
        handle = run_task(runner, "short", lambda control, i=i: i)
        emitter = runner._active[id(handle)][1]
        emitter.destroyed.connect(lambda *_: emitters_deleted_on.append(threading.get_ident()))
        # While ``ended`` is delivered, the runner still holds the task.
        handle.ended.connect(lambda h=handle: ended.append(int(id(h) in runner._active)))
        handles.append(handle)
    qtbot.waitUntil(lambda: len(emitters_deleted_on) == 40, timeout=10000)
    assert set(emitters_deleted_on) == {gui_thread}
    assert ended == [1] * 40
    assert runner._active == {} and runner.active() == []
    assert sorted(h.result for h in handles) == list(range(40))


def test_sync_runner_runs_at_once_with_callbacks_connected() -> None:
    runner = SyncTaskRunner()
    got: list[object] = []

    def work(control: TaskControl) -> str:
        control.partial("row")
        control.progress(1, 1, "done")
        return "ok"

    run_task(runner, "sync", work, on_partial=got.append, on_result=got.append)
    assert got == ["row", "ok"]
    assert runner.submitted == ["sync"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(28, "No space left on device", "/lib/catalogue.sqlite"), "the disk is full"),
        (PermissionError(13, "Permission denied", "/photos"), "permission denied"),
        (RuntimeError("boom"), "unexpected error (RuntimeError: boom)"),
    ],
)
def test_user_messages_are_sentences(error: BaseException, expected: str) -> None:
    assert expected in user_message(error, "adding images")
