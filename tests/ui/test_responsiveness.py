"""Adding a folder must not freeze the window: the event loop keeps ticking while it runs."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from fpgui.core.library import Library
from fpgui.ui.library_view import LibraryView
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import ThreadTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache
from tests.conftest import make_photo

IMAGES = 200
TICK_MS = 5
GOAL_S = 0.100
LIMIT_S = 0.250  # above the goal: the limit leaves room for a loaded CI machine


def longest_gap(ticks: list[float]) -> float:
    return max(b - a for a, b in zip(ticks, ticks[1:], strict=False))


def test_adding_200_images_keeps_the_event_loop_ticking(
    qtbot: QtBot,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    library: Library,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(IMAGES):
        make_photo(1000 + i, size=(80, 60)).save(folder / f"img_{i:04d}.jpg", quality=85)
    runner = ThreadTaskRunner(max_threads=2)
    view = LibraryView(runner, thumbnails, store)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    view.set_library(library)
    qtbot.waitUntil(lambda: view.count_label.text() == "0 protected images", timeout=10000)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    # An idle baseline: on a machine busy with other processes even an idle loop misses ticks,
    # and that is not the GUI's doing; the limit below allows for it.
    qtbot.wait(1000)
    baseline = longest_gap(ticks)
    ticks.clear()
    view.add_paths([str(folder)])
    assert view.is_busy
    qtbot.waitUntil(lambda: not view.is_busy, timeout=180_000)
    # Keep measuring while the grid fills and its thumbnails are made.
    qtbot.waitUntil(lambda: view.model.total == IMAGES, timeout=30_000)
    qtbot.wait(1500)
    timer.stop()

    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    longest = max(gaps)
    print(
        f"\nadd {IMAGES} images: {len(ticks)} ticks, longest event-loop gap "
        f"{longest * 1000:.0f} ms (goal {GOAL_S * 1000:.0f} ms; idle baseline "
        f"{baseline * 1000:.0f} ms), "
        f"median {sorted(gaps)[len(gaps) // 2] * 1000:.1f} ms"
    )
    assert library.count() == IMAGES
    limit = LIMIT_S + baseline
    assert longest < limit, f"the GUI thread was blocked for {longest * 1000:.0f} ms"
    runner.shutdown()
