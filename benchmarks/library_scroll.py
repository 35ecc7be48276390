"""Library view at 50,000 images: scroll, filter and sort against a 16.7 ms frame budget.

Builds the real :class:`LibraryView` around hand-made :class:`ProtectedImage` records (each with
its own SHA-256, so every visible tile gets its own thumbnail made by the real worker threads from
a handful of generated JPEGs), shows it at 1200x800 and drags the vertical scroll bar from top to
bottom in steps, processing events and forcing a repaint after each. Per step it times paint plus
event handling; a 1 ms timer records the longest gap between event-loop ticks over the whole run.
The same scroll over 500 images, in the same run, is the baseline. Goals: median step under one
frame (16.7 ms) and no step over 100 ms.

    .venv/bin/python benchmarks/library_scroll.py [--images 50000] [--steps 200]

Runs offscreen unless ``DISPLAY`` is set (then on the real platform plugin, e.g. under xvfb-run).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # offscreen's propagateSizeHints notes
DATA = Path(tempfile.mkdtemp(prefix="fpgui-scroll-"))
os.environ["FPGUI_DATA_DIR"] = str(DATA)  # settings and caches never touch the user's

from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fpgui.core.library import ProtectedImage  # noqa: E402
from fpgui.ui.library_view import LibraryView  # noqa: E402
from fpgui.ui.settings_dialog import SettingsStore  # noqa: E402
from fpgui.ui.tasks import ThreadTaskRunner  # noqa: E402
from fpgui.ui.thumbnails import ThumbnailCache  # noqa: E402

FRAME_MS = 1000 / 60
WORDS = ["harbour", "dunes", "market", "lighthouse", "orchard", "glacier", "bridge", "forest"]


def source_jpegs(folder: Path, count: int = 8) -> list[Path]:
    """``count`` small photo-like JPEGs (640x480) that the thumbnail workers really decode."""
    import numpy as np
    from PIL import Image

    paths = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:60, 0:80].astype(np.float32)
        small = (
            np.stack(
                [127 + 100 * np.sin(x / rng.uniform(5, 20) + rng.uniform(0, 6)) for _ in range(3)],
                -1,
            )
            * np.cos(y / rng.uniform(8, 30))[..., None]
        )
        image = Image.fromarray(np.clip(small + 127, 0, 255).astype(np.uint8))
        path = folder / f"source_{seed}.jpg"
        image.resize((640, 480), Image.Resampling.BICUBIC).save(path, quality=88)
        paths.append(path)
    return paths


def records(count: int, sources: list[Path]) -> list[ProtectedImage]:
    """``count`` images with their own names and keys; each path is a link to a real JPEG."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    folder = DATA / f"photos-{count}"
    folder.mkdir()
    out = []
    for i in range(count):
        path = folder / f"{WORDS[(i * 7) % 8]}_{i:05d}.jpg"
        path.symlink_to(sources[i % len(sources)])
        key = hashlib.sha256(f"image-{i}".encode()).hexdigest()
        out.append(
            ProtectedImage(
                id=i + 1,
                path=str(path),
                sha256=key,
                size=100_000,
                width=640,
                height=480,
                added_at=start + timedelta(seconds=37 * ((i * 7919) % count)),
                missing=False,
            )
        )
    return out


class GapMeter:
    """Longest time between ticks of a 1 ms timer: how long the GUI thread was unavailable."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.last = 0.0
        self.longest = 0.0
        self.timer = QTimer()
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.clock.start()
        self.last = 0.0
        self.longest = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def stop(self) -> float:
        self._tick()
        self.timer.stop()
        return self.longest


def summary(label: str, times_ms: list[float]) -> str:
    ordered = sorted(times_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    return (
        f"{label:<34} n={len(ordered):<4} median {median:7.2f} ms ({median / FRAME_MS:5.2f} "
        f"frames)  p95 {p95:7.2f} ms ({p95 / FRAME_MS:5.2f})  max {ordered[-1]:7.2f} ms "
        f"({ordered[-1] / FRAME_MS:5.2f})"
    )


def settle(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


def scroll(app: QApplication, view: LibraryView, steps: int) -> tuple[list[float], float]:
    """Per-step times (ms) of a top-to-bottom scroll, and the longest event-loop gap (ms)."""
    bar = view.grid.verticalScrollBar()
    bar.setValue(0)
    settle(app, 0.2)
    gaps = GapMeter()
    gaps.start()
    times = []
    top = bar.maximum()
    for step in range(1, steps + 1):
        started = time.perf_counter()
        bar.setValue(round(top * step / steps))
        app.processEvents()
        view.grid.viewport().repaint()
        app.processEvents()
        times.append((time.perf_counter() - started) * 1000)
    return times, gaps.stop()


def timed(app: QApplication, action: object) -> float:
    assert callable(action)
    started = time.perf_counter()
    action()
    app.processEvents()
    return (time.perf_counter() - started) * 1000


def run(app: QApplication, count: int, steps: int, sources: list[Path]) -> dict[str, object]:
    thumbnails = ThumbnailCache(DATA / f"thumbnails-{count}")
    view = LibraryView(ThreadTaskRunner(), thumbnails, SettingsStore(path=DATA / "settings.json"))
    view.resize(1200, 800)
    view.show()
    settle(app, 0.3)
    images = records(count, sources)
    load_ms = timed(app, lambda: view._show_images(images))  # what the background read delivers
    settle(app, 0.5)
    result: dict[str, object] = {"load": load_ms}
    result["scroll"], result["scroll_gap"] = scroll(app, view, steps)
    # Second pass: the same scroll with thumbnails made (memory cache holds the last 2,000).
    settle(app, 1.0)
    result["scroll_again"], result["scroll_again_gap"] = scroll(app, view, steps)

    gaps = GapMeter()
    gaps.start()
    keystrokes = []
    view.filter_edit.setFocus()
    for char in "orchard_1":
        keystrokes.append(timed(app, lambda c=char: QTest.keyClicks(view.filter_edit, c)))
    result["shown_after_filter"] = view.model.rowCount()
    keystrokes.append(timed(app, view.filter_edit.clear))
    result["filter"] = keystrokes
    sorts = [timed(app, lambda i=i: view.sort_combo.setCurrentIndex(i)) for i in (1, 2, 0)]
    result["sort"] = sorts
    result["filter_sort_gap"] = gaps.stop()
    view.close()
    thumbnails.shutdown()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--baseline", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    sources = source_jpegs(DATA)
    print(f"platform {app.platformName()}, frame budget {FRAME_MS:.1f} ms, {args.steps} steps")
    for count in (args.baseline, args.images):
        r = run(app, count, args.steps, sources)
        print(f"\n{count:,} images: model load (filter+sort+reset) {r['load']:.1f} ms")
        print(summary("  scroll, thumbnails being made", r["scroll"]))  # type: ignore[arg-type]
        print(f"  {'':<32} longest event-loop gap {r['scroll_gap']:.1f} ms")
        print(summary("  scroll again, thumbnails cached", r["scroll_again"]))  # type: ignore[arg-type]
        print(f"  {'':<32} longest event-loop gap {r['scroll_again_gap']:.1f} ms")
        print(summary("  filter, per keystroke", r["filter"]))  # type: ignore[arg-type]
        print(f"  {'':<32} ('orchard_1' leaves {r['shown_after_filter']:,} shown)")
        print(summary("  sort change", r["sort"]))  # type: ignore[arg-type]
        print(f"  {'':<32} longest event-loop gap (filter+sort) {r['filter_sort_gap']:.1f} ms")
        steps = r["scroll"]
        assert isinstance(steps, list)
        ok = statistics.median(steps) < FRAME_MS and max(steps) < 100
        verdict = "met" if ok else "MISSED"
        print(f"  scroll goal (median < {FRAME_MS:.1f} ms, max < 100 ms): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
