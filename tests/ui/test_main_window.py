"""The main window: opening the library in the background, status bar, menus, errors, state."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence
from pytestqt.qtbot import QtBot

from fpgui.core.library import Library
from fpgui.core.locking import WriteLock
from fpgui.ui.main_window import CHECK_TAB, LIBRARY_TAB, MainWindow
from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import SyncTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache


@pytest.fixture
def window_state(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)


def make_window(
    qtbot: QtBot,
    runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    library_dir: Path,
    model_dir: Path,
    window_state: QSettings,
) -> MainWindow:
    window = MainWindow(
        runner,
        thumbnails,
        store,
        library_dir,
        model_dir=model_dir,
        device="cpu",
        window_state=window_state,
    )
    qtbot.addWidget(window)
    window.show()
    window.start()
    return window


def test_opens_library_and_fills_status_bar(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    random_model_dir: Path,
    tmp_path: Path,
    window_state: QSettings,
) -> None:
    window = make_window(
        qtbot, sync_runner, thumbnails, store, tmp_path / "lib", random_model_dir, window_state
    )
    assert window.session is not None and window.session.problem is None
    assert window.model_label.text() == "Model: test-random 0"
    assert window.device_label.text().startswith("Device: CPU")
    assert window.size_label.text() == "Library: 0 images"
    assert window.tabs.currentIndex() == LIBRARY_TAB  # empty library: start by adding
    assert window.check_view.unavailable is None
    window.close()


def test_without_model_the_window_opens_and_says_why(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    tmp_path: Path,
    window_state: QSettings,
) -> None:
    empty = tmp_path / "no-model"
    empty.mkdir()
    window = make_window(
        qtbot, sync_runner, thumbnails, store, tmp_path / "lib", empty, window_state
    )
    assert window.banner.text().startswith(f"No fingerprint model found in {empty}")
    assert "No fingerprint model found" in window.check_view.drop_zone.title()
    assert window.model_label.text() == "Model: none"
    assert not window.library_view.add_folder_button.isEnabled()
    window.close()


def test_shortcuts_and_paste_to_check(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    random_model_dir: Path,
    tmp_path: Path,
    window_state: QSettings,
    photo_folder: Path,
) -> None:
    window = make_window(
        qtbot, sync_runner, thumbnails, store, tmp_path / "lib", random_model_dir, window_state
    )
    shortcuts = {
        window.open_action: "Ctrl+O",
        window.paste_action: "Ctrl+V",
        window.add_folder_action: "Ctrl+Shift+A",
        window.quit_action: "Ctrl+Q",
        window.help_action: "F1",
    }
    for action, keys in shortcuts.items():
        assert action.shortcut() == QKeySequence(keys), action.text()
    window.library_view.add_paths([str(photo_folder)])
    assert window.size_label.text() == "Library: 8 images"
    QGuiApplication.clipboard().setImage(QImage(str(photo_folder / "photo_6.jpg")))
    window.paste_action.trigger()
    assert window.tabs.currentIndex() == CHECK_TAB
    assert window.check_view.verdict.text().startswith("Copy of photo_6.jpg")
    window.close()


def test_busy_library_gives_a_message(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    random_model_dir: Path,
    tmp_path: Path,
    window_state: QSettings,
    photo_folder: Path,
) -> None:
    window = make_window(
        qtbot, sync_runner, thumbnails, store, tmp_path / "lib", random_model_dir, window_state
    )
    assert window.session is not None
    library: Library = window.session.library
    library.lock_timeout = 0.1
    other_process = WriteLock(tmp_path / "lib" / "write.lock", "adding images", 0.0)
    other_process.acquire()
    try:
        window.library_view.add_paths([str(photo_folder)])
    finally:
        other_process.release()
    message = window.library_view.banner.text()
    assert "busy" in message and "Traceback" not in message
    window.close()


def test_geometry_is_remembered(
    qtbot: QtBot,
    sync_runner: SyncTaskRunner,
    thumbnails: ThumbnailCache,
    store: SettingsStore,
    random_model_dir: Path,
    tmp_path: Path,
    window_state: QSettings,
) -> None:
    window = make_window(
        qtbot, sync_runner, thumbnails, store, tmp_path / "lib", random_model_dir, window_state
    )
    window.resize(760, 530)
    size = (window.width(), window.height())
    window.tabs.setCurrentIndex(CHECK_TAB)
    window.close()
    again = MainWindow(sync_runner, thumbnails, store, tmp_path / "lib", window_state=window_state)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == size
    assert again.tabs.currentIndex() == CHECK_TAB
