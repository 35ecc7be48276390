"""Starting the desktop application: ``fpgui`` and ``fpgui gui --library DIR`` call :func:`run_gui`.

The window is shown before torch is imported; the library and the model load in a task.
``FPGUI_STARTUP_REPORT=1`` prints when the window was first painted and when the model was ready
(seconds since the process started), and ``FPGUI_EXIT_WHEN_READY=1`` quits then: the startup
benchmark (``benchmarks/startup.py``) uses both.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from fpgui.ui.main_window import MainWindow
from fpgui.ui.resources import app_icon
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import ThreadTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache, default_thumbnail_dir, prune_disk_cache


def _process_age() -> float:
    """Seconds since this process started (Linux: from /proc; elsewhere: since import)."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED_AT


_IMPORTED_AT = time.monotonic()


class _FirstPaint(QObject):
    """Reports the first paint of the window (the moment the user sees it)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.done = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if not self.done and event.type() == QEvent.Type.Paint:
            self.done = True
            print(f"fpgui-startup: window {_process_age():.3f}", flush=True)
        return False


def create_application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(sys.argv)
    app.setApplicationName("fpgui")
    app.setOrganizationName("fpgui")
    app.setApplicationDisplayName("fpgui")
    app.setDesktopFileName("fpgui")
    app.setWindowIcon(app_icon())
    return app


def run_gui(library_dir: Path, device: str | None, model_dir: Path | None = None) -> int:
    """Show the main window on ``library_dir``; returns the exit status when it closes."""
    app = create_application()
    store = SettingsStore()
    if device is None:
        device = store.settings.device_or_none
    runner = ThreadTaskRunner()
    thumbnails = ThumbnailCache()
    window = MainWindow(runner, thumbnails, store, library_dir, model_dir=model_dir, device=device)
    report = os.environ.get("FPGUI_STARTUP_REPORT") == "1"
    if report:
        _FirstPaint(window)

        def ready(_session: object) -> None:
            print(f"fpgui-startup: model {_process_age():.3f}", flush=True)
            if os.environ.get("FPGUI_EXIT_WHEN_READY") == "1":
                QTimer.singleShot(0, window.close)

        def failed(*_args: object) -> None:
            print(f"fpgui-startup: failed {_process_age():.3f}", flush=True)
            if os.environ.get("FPGUI_EXIT_WHEN_READY") == "1":
                QTimer.singleShot(0, window.close)

        window.session_ready.connect(ready)
        window.session_failed.connect(failed)
    window.show()
    # Start loading once the event loop runs, so the first paint is not held up.
    QTimer.singleShot(0, window.start)
    limit = store.settings.thumbnail_cache_mb * 1024 * 1024
    runner.submit("prune thumbnails", lambda _c: prune_disk_cache(default_thumbnail_dir(), limit))
    return int(app.exec())


def main() -> int:
    """``python -m fpgui.ui.app [LIBRARY_DIR]``: the window without the command line's imports."""
    from fpgui.core.paths import default_library_dir

    library = Path(sys.argv[1]) if len(sys.argv) > 1 else default_library_dir()
    return run_gui(library, None)


if __name__ == "__main__":
    sys.exit(main())
