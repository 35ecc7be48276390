"""Fixtures for the UI tests: real widgets, offscreen, a random-weights model, a tiny library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from fpgui.ui.settings_dialog import SettingsStore
from fpgui.ui.tasks import SyncTaskRunner
from fpgui.ui.thumbnails import ThumbnailCache


@pytest.fixture
def sync_runner() -> SyncTaskRunner:
    return SyncTaskRunner()


@pytest.fixture
def store(isolated_data_dir: Path) -> SettingsStore:
    return SettingsStore()


@pytest.fixture
def thumbnails(qapp: object, tmp_path: Path) -> Iterator[ThumbnailCache]:
    cache = ThumbnailCache(tmp_path / "thumbs", size=64)
    yield cache
    cache.shutdown()


def drop(widget: QWidget, mime: QMimeData) -> None:
    """A real drag-enter and drop, as Qt delivers them from a file manager or a browser."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    copy = Qt.DropAction.CopyAction
    button, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos, copy, mime, button, modifiers)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the widget refused the drag"
    QApplication.sendEvent(widget, QDropEvent(pos, copy, mime, button, modifiers))


def file_mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime
